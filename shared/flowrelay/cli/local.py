"""Commands that run flows in this process: ``run-local``, ``demo``, ``schema``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from flowrelay.cli import output
from flowrelay.core.interrupts import Terminated, raise_on_sigterm
from flowrelay.sdk.engine import ParameterError
from flowrelay.sdk.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor
from flowrelay.sdk.storage import FlowLoadError, Local

EXECUTORS: dict[str, Callable[[], Executor]] = {
    "local": LocalExecutor,
    "threads": lambda: LocalDaskExecutor(scheduler="threads"),
    "processes": lambda: LocalDaskExecutor(scheduler="processes"),
    "dask": DaskExecutor,
}


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("n=3", "name=ada")`` -> ``{"n": 3, "name": "ada"}``; values are JSON when they parse
    as JSON, else strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


def fail_usage(message: str) -> None:
    output.fail(message, 2)


param_option = click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter value (JSON or text); repeatable.",
)
"""The ``--param NAME=VALUE`` option of every command that starts a run (see ``parse_params``)."""


@click.command("run-local")
@click.argument("location", metavar="FILE[:ATTR]")
@param_option
@click.option(
    "--executor", "-e", type=click.Choice(sorted(EXECUTORS)), help="Override the flow's executor."
)
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON on stdout.")
@click.option("--quiet", "-q", is_flag=True, help="No live task lines on stderr.")
def run_local(
    location: str, params: tuple[str, ...], executor: str | None, as_json: bool, quiet: bool
) -> None:
    """Run the flow in FILE (the attribute ATTR, or its only Flow) here and now.

    \b
    Exit code 0 when the run succeeds, 1 when it fails, 2 when the flow cannot be loaded or the
    parameters do not fit it.

    \b
    Example:
      flowrelay run-local flows/etl.py:flow --param rows=100 --executor threads
    """
    parameters = parse_params(params)
    try:
        flow = Local(location).load()
    except FlowLoadError as exc:
        fail_usage(str(exc))
        return
    chosen: Executor | None = EXECUTORS[executor]() if executor else None
    try:
        with (
            raise_on_sigterm(),
            output.live_task_lines(enabled=not quiet and not as_json),
            output.task_prints_to_stderr(enabled=as_json),
        ):
            state = flow.run(parameters=parameters, executor=chosen)
    except ParameterError as exc:
        fail_usage(str(exc))
        return
    except (KeyboardInterrupt, Terminated) as exc:
        output.stderr.print(
            f"[yellow]interrupted:[/] flow {flow.name!r} stopped ({exc or 'SIGINT'})"
        )
        sys.exit(getattr(exc, "exit_code", 130))
    if as_json:
        click.echo(output.run_as_json(flow, state))
    else:
        output.print_run(flow, state)
    sys.exit(0 if state.is_successful() else 1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON on stdout.")
@click.option(
    "--local",
    is_flag=True,
    help="Run the example flows in this process on every executor instead (no dev stack).",
)
def demo(as_json: bool, local: bool) -> None:
    """See the whole system work on this machine: start the dev stack, register the example
    flows and a target, request runs through the bus, print each run's state timeline, stop.

    Exit 0 when every run ended as designed (one of them fails on purpose).
    """
    from flowrelay.cli.demo import run_control_plane_demo, run_demo

    with raise_on_sigterm():
        sys.exit(run_demo(as_json=as_json) if local else run_control_plane_demo(as_json=as_json))


@click.command()
@click.argument("kind", type=click.Choice(["run-config", "storage"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of run configs or storage."""
    if kind == "run-config":
        from flowrelay.core.run_configs import run_config_json_schema

        click.echo(json.dumps(run_config_json_schema(), indent=2))
    else:
        from flowrelay.sdk.storage import storage_json_schema

        click.echo(json.dumps(storage_json_schema(), indent=2))
