"""``flowrelay run``: a request for a run of a registered flow, on the stack's bus."""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError

from flowrelay.cli import render
from flowrelay.cli.options import param_option, parse_params, requested_by
from flowrelay.cli.runs import watch_run
from flowrelay.cli.stack import (
    aws_client,
    current,
    open_store,
    reports_errors,
)
from flowrelay.core.runs import run_id_for

if TYPE_CHECKING:
    pass


@click.command("run")
@click.argument("flow")
@param_option
@click.option(
    "--label",
    "-l",
    "labels",
    multiple=True,
    help="Run with these labels instead of the flow's; repeatable.",
)
@click.option("--version", "flow_version", type=click.IntRange(min=1), help="Flow version.")
@click.option("--idempotency-key", help="Requests with the same key make one run.")
@click.option("--flow-run-id", help="The run's id (default: from the key, else a new uuid).")
@click.option("--watch", "-w", is_flag=True, help="Follow the run until it ends.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
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
    labels: tuple[str, ...],
    flow_version: int | None,
    idempotency_key: str | None,
    flow_run_id: str | None,
    watch: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Ask the stack to run the registered FLOW; prints the run id.

    \b
    With --watch, follows the run's states until it ends: exit 0 when it succeeds, 1 when it
    ends any other way or does not appear within --timeout; Ctrl-C stops watching (exit 130)
    and leaves the run alone.

    \b
    Example:
      flowrelay run etl --param rows=100 --idempotency-key nightly-2026-11-23 --watch
    """
    from flowrelay.aws.bus import Publisher
    from flowrelay.core.events import FlowRunRequested

    parameters = parse_params(params)
    if flow_run_id is None and idempotency_key is None:
        flow_run_id = str(uuid.uuid4())
    try:
        request = FlowRunRequested(
            flow=flow,
            version=flow_version,
            parameters=parameters,
            labels=list(labels) if labels else None,
            idempotency_key=idempotency_key,
            flow_run_id=flow_run_id,
            requested_by=requested_by(),
        )
    except ValidationError as exc:
        # Named as the options are: --flow-run-id, not flow_run_id.
        problems = []
        for item in exc.errors(include_url=False):
            where = ".".join(str(part) for part in item["loc"]).replace("_", "-")
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{where}: {message}" if where else message)
        render.fail("; ".join(problems), 2)
    run_id = request.flow_run_id or run_id_for(str(request.idempotency_key))
    names = current()
    Publisher(aws_client("events"), names.bus_name).publish(request)
    if not watch:
        if as_json:
            render.echo_json(
                {"flow_run_id": run_id, **request.model_dump(mode="json", exclude_none=True)}
            )
        else:
            click.echo(run_id)
        return
    if not as_json:
        click.echo(run_id)
    sys.exit(watch_run(open_store(names), run_id, timeout, as_json))
