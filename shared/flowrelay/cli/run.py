"""``flowrelay run``: a request for a run of a registered flow, on the stack's bus."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from flowrelay.cli import render
from flowrelay.cli.options import (
    Seconds,
    param_option,
    parse_params,
    read_json_option,
    requested_by,
)
from flowrelay.cli.runs import watch_run
from flowrelay.cli.stack import (
    aws_client,
    current,
    open_store,
    reports_errors,
)
from flowrelay.core.runs import run_id_for

if TYPE_CHECKING:
    from flowrelay.control.store import Store
    from flowrelay.core.events import FlowRunRequested
    from flowrelay.core.run_configs import RunConfig


@click.command("run")
@click.argument("flow")
@param_option
@click.option(
    "--params-file",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Parameters from a JSON object in this file ('-': stdin); --param values win.",
)
@click.option(
    "--label",
    "-l",
    "labels",
    multiple=True,
    help="Run with these labels instead of the flow's; repeatable.",
)
@click.option("--version", "flow_version", type=click.IntRange(min=1), help="Flow version.")
@click.option(
    "--run-config",
    "run_config_text",
    metavar="JSON|@FILE",
    help="Run with this run config instead of the registered one (see `flowrelay schema "
    "run-config`).",
)
@click.option(
    "--env",
    "env_pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="An environment variable for this run, over the run config's; repeatable. Stored on "
    "the run: not for secrets.",
)
@click.option(
    "--run-timeout",
    type=Seconds(0.0),
    metavar="SECONDS",
    help="Stop the run and make it TimedOut after this long running (default: the flow's).",
)
@click.option("--idempotency-key", help="Requests with the same key make one run.")
@click.option("--flow-run-id", help="The run's id (default: from the key, else a new uuid).")
@click.option(
    "--no-check",
    is_flag=True,
    help="Send the request without reading the stack's table first (the flow, its parameters "
    "and a reused key are then checked by dispatch, and a bad request fails its run; with "
    "--watch, a reused key is still checked).",
)
@click.option("--watch", "-w", is_flag=True, help="Follow the run until it ends.")
@click.option(
    "--timeout",
    type=Seconds(0.0, or_equal=True),
    default=120.0,
    show_default=True,
    help="With --watch: seconds to wait for the run to appear.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the request (or, with --watch, the run)."
)
@reports_errors
def run(
    flow: str,
    params: tuple[str, ...],
    params_file: Path | None,
    labels: tuple[str, ...],
    flow_version: int | None,
    run_config_text: str | None,
    env_pairs: tuple[str, ...],
    run_timeout: float | None,
    idempotency_key: str | None,
    flow_run_id: str | None,
    no_check: bool,
    watch: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Ask the stack to run the registered FLOW; prints the run id.

    \b
    First checks the request against the flow's registration (the flow and version exist, the
    parameters fit) and, for a reused --idempotency-key or --flow-run-id, against the run it
    names: a repeat prints that run, a request asking for other values is refused (exit 2).

    \b
    With --watch, follows the run's states until it ends: exit 0 when it succeeds, 1 when it
    ends any other way or does not appear within --timeout; Ctrl-C stops watching (exit 130)
    and leaves the run alone.

    \b
    Examples:
      flowrelay run etl --param rows=100 --idempotency-key nightly-2026-11-23 --watch
      flowrelay run etl --params-file params.json --env LOG_LEVEL=DEBUG --run-timeout 3600
    """
    from flowrelay.aws.bus import Publisher

    parameters = {**_params_from_file(params_file), **parse_params(params)}
    env = parse_env(env_pairs)
    run_config = _parse_run_config(run_config_text) if run_config_text is not None else None
    if run_config is not None and env:
        run_config, env = _with_env(run_config, env), {}  # the given config takes them now
    elif env and no_check:
        render.fail(
            "--env adds to the registered run config, which --no-check does not read: give "
            "--run-config too, or leave out --no-check",
            2,
        )
    if flow_run_id is None and idempotency_key is None:
        flow_run_id = str(uuid.uuid4())
    fields: dict[str, Any] = {
        "flow": flow,
        "version": flow_version,
        "parameters": parameters,
        "labels": list(labels) if labels else None,
        "run_config": run_config,
        "idempotency_key": idempotency_key,
        "flow_run_id": flow_run_id,
        "requested_by": requested_by(),
        "timeout_seconds": run_timeout,
    }
    request = _request(**fields)  # what the request itself gets wrong, before any lookup
    names = current()
    store = None if no_check else open_store(names)
    if store is not None:
        run_config = _checked_against_registration(
            store, flow, flow_version, parameters, run_config, env
        )
    if env:
        request = _request(**{**fields, "run_config": run_config})
    run_id = request.flow_run_id or run_id_for(str(request.idempotency_key))
    # Watching reads the run anyway: a key already used for other values is refused here too,
    # rather than the old run watched as if it were this one.
    watched = store or (open_store(names) if watch else None)
    repeat = watched is not None and _is_a_repeat(watched, request, run_id)
    if not repeat:
        Publisher(aws_client("events"), names.bus_name).publish(request)
    if not watch:
        if as_json:
            render.echo_json(
                {
                    "flow_run_id": run_id,
                    "sent": not repeat,
                    **request.model_dump(mode="json", exclude_none=True),
                }
            )
        else:
            click.echo(run_id)
        return
    if not as_json:
        click.echo(run_id)
    sys.exit(watch_run(watched or open_store(names), run_id, timeout, as_json))


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("A=1", "B=x=y")`` -> ``{"A": "1", "B": "x=y"}``: values are text, as a process's
    environment is."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--env")
        env[name] = value
    return env


def _params_from_file(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    value = read_json_option(path, "--params-file")
    if not isinstance(value, dict):
        raise click.BadParameter(
            f"{path} holds a JSON {type(value).__name__}, not an object of parameter values",
            param_hint="--params-file",
        )
    return value


def _parse_run_config(text: str) -> RunConfig:
    from flowrelay.core.events import describe
    from flowrelay.core.run_configs import parse_run_config

    value = read_json_option(Path(text[1:]), "--run-config") if text.startswith("@") else None
    if value is None:
        from flowrelay.core import jsonvalues

        try:
            value = jsonvalues.loads(text, whole="--run-config")
        except ValueError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--run-config") from None
    if not isinstance(value, dict) or "type" not in value:
        raise click.BadParameter(
            'a run config is a JSON object naming its type: {"type": "ECSRun", ...} (UniversalRun, '
            "LocalRun, DockerRun, KubernetesRun or ECSRun; flowrelay schema run-config)",
            param_hint="--run-config",
        )
    try:
        return parse_run_config(value)
    except ValidationError as exc:
        raise click.BadParameter(describe(exc), param_hint="--run-config") from None


def _checked_against_registration(
    store: Store,
    flow: str,
    version: int | None,
    parameters: dict[str, Any],
    run_config: RunConfig | None,
    env: dict[str, str],
) -> RunConfig | None:
    """Refuse (exit 2) what dispatch would fail the run for: an unregistered flow or version,
    parameters that do not fit. Returns the run config to send: ``--env`` on top of the given
    one, else of the registered one."""
    from flowrelay.core.registration import ParameterError, not_registered
    from flowrelay.core.run_configs import UniversalRun

    registration = store.flows.get(flow, version)
    if registration is None:
        latest = store.flows.get(flow) if version is not None else None
        hint = (
            f" (its latest version is {latest.version})"
            if latest is not None
            else " (flowrelay register FILE registers it)"
        )
        render.fail(not_registered(flow, version) + hint, 2)
    try:
        registration.check_run_parameters(parameters)
    except ParameterError as exc:
        render.fail(str(exc), 2)
    from flowrelay.cli.stack import launchable_kinds
    from flowrelay.core.routing import unlaunchable

    never = unlaunchable(run_config or registration.run_config, launchable_kinds())
    if never is not None:
        render.fail(f"this run could never be launched: {never}", 2)
    if not env:
        return run_config
    return _with_env(run_config or registration.run_config or UniversalRun(), env)


def _with_env(config: RunConfig, env: dict[str, str]) -> RunConfig:
    """``config`` with ``env`` over its own variables, validated as any run config is (exit 2
    naming a variable a run config may not set)."""
    from flowrelay.core.events import describe
    from flowrelay.core.run_configs import parse_run_config

    try:
        return parse_run_config({**config.model_dump(), "env": {**(config.env or {}), **env}})
    except ValidationError as exc:
        raise click.BadParameter(describe(exc), param_hint="--env") from None


def _request(**fields: Any) -> FlowRunRequested:
    from flowrelay.core.events import FlowRunRequested

    try:
        return FlowRunRequested(**fields)
    except ValidationError as exc:
        # Named as the options are: --flow-run-id, not flow_run_id.
        problems = []
        for item in exc.errors(include_url=False):
            where = ".".join(str(part) for part in item["loc"]).replace("_", "-")
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        render.fail("; ".join(problems), 2)


def _is_a_repeat(store: Store, request: FlowRunRequested, run_id: str) -> bool:
    """Whether the run this request names exists already and was asked for with the same
    values (then nothing new is sent); exit 2 naming the run and the differences when it was
    asked for with others."""
    if request.flow_run_id is None and request.idempotency_key is None:
        return False
    existing = store.runs.get(run_id)
    if existing is None:
        return False
    differences = request.differences(existing)
    key = (
        f"--idempotency-key {request.idempotency_key!r}"
        if request.idempotency_key is not None and request.flow_run_id is None
        else f"--flow-run-id {run_id!r}"
    )
    if differences:
        render.fail(
            f"run {run_id} ({existing.state.value}) was requested with this {key} and other "
            f"values: {'; '.join(differences)}; use a new key to run with these",
            2,
        )
    render.stderr.print(
        f"[dim]run {run_id} was already requested with these values "
        f"({existing.state.value}): nothing new sent[/]",
        highlight=False,
    )
    return True
