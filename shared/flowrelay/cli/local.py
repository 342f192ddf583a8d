"""Commands that need no stack: ``run-local`` (a flow in this process) and ``schema``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import click

from flowrelay.cli import render
from flowrelay.cli.options import param_option, parse_params
from flowrelay.core.interrupts import Terminated, raise_on_sigterm
from flowrelay.core.registration import ParameterError
from flowrelay.core.storage import Local
from flowrelay.sdk.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor
from flowrelay.sdk.storage import FlowLoadError, load_flow

EXECUTORS: dict[str, Callable[[], Executor]] = {
    "local": LocalExecutor,
    "threads": lambda: LocalDaskExecutor(scheduler="threads"),
    "processes": lambda: LocalDaskExecutor(scheduler="processes"),
    "dask": DaskExecutor,
}


def fail_usage(message: str) -> None:
    render.fail(message, 2)


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
        flow = load_flow(Local(location))
    except FlowLoadError as exc:
        fail_usage(str(exc))
        return
    chosen: Executor | None = EXECUTORS[executor]() if executor else None
    try:
        with (
            raise_on_sigterm(),
            # With --json, stdout is the JSON; the flow's own log lines still reach stderr.
            render.live_task_lines(enabled=not quiet, progress=not as_json),
            render.task_prints_to_stderr(enabled=as_json),
        ):
            state = flow.run(parameters=parameters, executor=chosen)
    except ParameterError as exc:
        fail_usage(str(exc))
        return
    except (KeyboardInterrupt, Terminated) as exc:
        render.stderr.print(
            f"[yellow]interrupted:[/] flow {flow.name!r} stopped ({exc or 'SIGINT'})"
        )
        sys.exit(getattr(exc, "exit_code", 130))
    if as_json:
        click.echo(render.run_as_json(flow, state))
    else:
        render.print_run(flow, state)
    sys.exit(0 if state.is_successful() else 1)


@click.command()
@click.argument("kind", type=click.Choice(["run-config", "storage", "target"]))
def schema(kind: str) -> None:
    """Print the JSON Schema of run configs, storage or launch targets (each kind's settings)."""
    if kind == "target":
        from flowrelay.launchers.kinds import target_json_schema

        click.echo(json.dumps(target_json_schema(), indent=2))
    elif kind == "run-config":
        from flowrelay.core.run_configs import run_config_json_schema

        click.echo(json.dumps(run_config_json_schema(), indent=2))
    else:
        from flowrelay.core.storage import storage_json_schema

        click.echo(json.dumps(storage_json_schema(), indent=2))
