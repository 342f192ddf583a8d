"""``flowrelay flows ls|show``: the registered flows, their versions, their schedules with their
next fire times and how their recent runs went (``flowrelay.operations.flows``)."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.stack import (
    ConfigError,
    aws_client,
    current,
    current_outputs,
    open_store,
    reports_errors,
)
from flowrelay.operations import NotFoundError, OperationError
from flowrelay.operations.flows import RECENT_RUNS, RecentRuns, ScheduleRow

#: Why a list of flows or a flow shows no schedules, when the stack is named by its table and
#: bus only.
SCHEDULES_UNKNOWN = (
    "schedules not shown: set FLOWRELAY_STACK (or --stack) so that the stack's schedule group "
    "is known"
)


@click.group()
def flows() -> None:
    """Registered flows: their versions, schedules and how their recent runs went.

    \b
    Examples:
      flowrelay flows ls
      flowrelay flows ls --json
      flowrelay flows show nightly-etl
      flowrelay flows show nightly-etl --runs 50 --json
    """


def _schedules(stack_outputs: dict[str, str]) -> tuple[Any, Any, str | None]:
    """The scheduler client and the stack's schedule target, or why the schedules are unknown:
    a stack named by its table and bus only, or one without a schedule group."""
    from flowrelay.control.schedule_sync import ScheduleTarget

    outputs = stack_outputs
    if not outputs:
        try:
            outputs = current_outputs()
        except ConfigError:
            return None, None, SCHEDULES_UNKNOWN
    target = ScheduleTarget.of_stack(outputs)
    if target is None:
        return None, None, "schedules not shown: the stack has no schedule group"
    return aws_client("scheduler"), target, None


def _runs_option(command: Any) -> Any:
    return click.option(
        "--runs",
        "recent",
        type=click.IntRange(min=1, max=1000),
        default=RECENT_RUNS,
        show_default=True,
        help="How many of a flow's latest runs to read: their states and the share that succeeded.",
    )(command)


@flows.command("ls")
@_runs_option
@click.option("--json", "as_json", is_flag=True, help="Print the flows as JSON.")
@reports_errors
def flows_ls(recent: int, as_json: bool) -> None:
    """List the registered flows: latest version, versions, schedules, last run, and the share
    of its latest finished runs that succeeded.

    \b
    A flow registered before flowrelay listed flows is listed once registered again (changed
    or not); `flowrelay flows show NAME` shows it meanwhile.

    \b
    Examples:
      flowrelay flows ls
      flowrelay flows ls --runs 100     # success over each flow's last 100 runs
      flowrelay flows ls --json
    """
    from flowrelay.operations.flows import flow_summaries

    names = current()
    scheduler, target, unknown = _schedules(names.outputs)
    try:
        found = flow_summaries(open_store(names), scheduler, target, recent=recent)
    except OperationError as exc:
        render.fail(str(exc), exc.code)
    if as_json:
        render.echo_json(found.model_dump(mode="json"))
        return
    for warning in found.warnings:
        render.stderr.print(f"[yellow]{escape(warning)}[/]")
    if not found.flows:
        render.stderr.print("[dim]no flows registered (flowrelay register FILE)[/]")
        return
    if unknown is not None:
        render.stderr.print(f"[dim]{escape(unknown)}[/]")
    render.print_table(
        ("flow", "latest", "versions", "schedules", "last run", f"success (last {recent})"),
        [
            (
                flow.name,
                f"v{flow.latest_version}",
                str(flow.versions),
                _schedule_count(flow.schedules, flow.paused),
                _last_run(flow.recent),
                _success(flow.recent),
            )
            for flow in found.flows
        ],
    )


@flows.command("show")
@click.argument("name", metavar="NAME")
@_runs_option
@click.option("--json", "as_json", is_flag=True, help="Print the flow as JSON.")
@reports_errors
def flows_show(name: str, recent: int, as_json: bool) -> None:
    """Show the flow NAME: its versions, its schedules with their next fire times, and its
    latest runs with their states.

    \b
    Examples:
      flowrelay flows show nightly-etl
      flowrelay flows show nightly-etl --runs 5
      flowrelay flows show nightly-etl --json
    """
    from flowrelay.operations.flows import flow_detail

    names = current()
    scheduler, target, unknown = _schedules(names.outputs)
    try:
        detail = flow_detail(open_store(names), name, scheduler, target, recent=recent)
    except NotFoundError as exc:
        render.fail(f"{exc} (flowrelay flows ls lists the registered flows)", exc.code)
    except OperationError as exc:
        render.fail(str(exc), exc.code)
    if as_json:
        render.echo_json(detail.model_dump(mode="json"))
        return
    latest = detail.latest
    labels = ", ".join(latest.labels) or "none"
    render.stdout.print(
        f"flow {escape(detail.name)}: version {latest.version}, registered "
        f"{render.local_time(latest.registered_at)}; labels: {escape(labels)}",
        highlight=False,
    )
    render.print_table(
        ("version", "registered", "labels", "parameters", "clocks"),
        [
            (
                f"v{version.version}",
                render.local_time(version.registered_at),
                ", ".join(version.labels),
                ", ".join(version.parameters),
                ", ".join(version.clocks),
            )
            for version in detail.versions
        ],
        title="versions",
    )
    for warning in detail.warnings:
        render.stderr.print(f"[yellow]{escape(warning)}[/]")
    if detail.schedules is None:
        render.stderr.print(f"[dim]{escape(unknown or SCHEDULES_UNKNOWN)}[/]")
    elif detail.schedules:
        render.print_table(
            ("clock", "version", "expression", "time zone", "state", "next fires (local time)"),
            [_schedule_cells(row) for row in detail.schedules],
            title="schedules",
        )
    else:
        render.stdout.print("no schedules")
    if not detail.runs:
        render.stdout.print("no runs yet")
        return
    render.print_table(
        ("run id", "version", "state", "created", "message"),
        [
            (
                run.run_id,
                f"v{run.flow_version}" if run.flow_version else "",
                str(run.state),
                render.local_time(run.created_at),
                render.truncate(run.message, 40),
            )
            for run in detail.runs
        ],
        title=f"latest runs ({_counts(detail.recent)})",
    )
    render.stdout.print(f"success: {_success(detail.recent)}")


def _schedule_cells(row: ScheduleRow) -> tuple[str, ...]:
    return (
        row.clock,
        f"v{row.version}" if row.version else "",
        row.expression,
        row.timezone,
        str(row.state),
        ", ".join(render.local_time(moment) for moment in row.next)
        or ("paused" if not row.enabled else "none left"),
    )


def _schedule_count(schedules: int | None, paused: int | None) -> str:
    if schedules is None:
        return "?"
    if not schedules:
        return "none"
    return f"{schedules}, {paused} paused" if paused else str(schedules)


def _last_run(recent: RecentRuns) -> str:
    if recent.last_run_at is None:
        return "never"
    return f"{render.local_time(recent.last_run_at)} {recent.last_state}"


def _success(recent: RecentRuns) -> str:
    """``80% (4 of 5 finished)``; ``-`` when none has finished."""
    if recent.success_rate is None:
        return "-" if not recent.runs else "- (none finished)"
    return f"{recent.success_rate:.0%} ({recent.succeeded} of {recent.finished} finished)"


def _counts(recent: RecentRuns) -> str:
    return ", ".join(f"{count} {state}" for state, count in recent.by_state.items())
