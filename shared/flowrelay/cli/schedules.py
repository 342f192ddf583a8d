"""``flowrelay schedules``: the stack's flow schedules (EventBridge Scheduler), their next fire
times, and pausing and resuming them. ``flowrelay register`` creates and updates them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.stack import ConfigError, aws_client, current_outputs, reports_errors


def _target() -> Any:
    from flowrelay.control.schedule_sync import ScheduleTarget

    target = ScheduleTarget.of_stack(current_outputs())
    if target is None:
        raise ConfigError(
            "this stack has no schedule group (ScheduleGroupName output): deploy the current "
            "template.yaml"
        )
    return target


@click.group()
def schedules() -> None:
    """The stack's flow schedules: list them, pause and resume them.

    \b
    Examples:
      flowrelay schedules ls
      flowrelay schedules ls --flow nightly-etl --json
      flowrelay schedules pause nightly-etl            # every clock of the flow
      flowrelay schedules resume nightly-etl clock-2   # one clock
    """


@schedules.command("ls")
@click.option("--flow", "flow_name", help="Only this flow's schedules.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedules as JSON.")
@reports_errors
def schedules_ls(flow_name: str | None, as_json: bool) -> None:
    """Each schedule: its flow and clock, expression, time zone, state and next fire times."""
    from flowrelay.operations.flows import schedule_rows

    target = _target()
    listing = schedule_rows(aws_client("scheduler"), target, flow_name, datetime.now(UTC))
    for warning in listing.warnings:
        render.stderr.print(f"[yellow]{escape(warning)}[/]")
    rows = [row.model_dump(mode="json") for row in listing.rows]
    if as_json:
        render.echo_json(rows)
        return
    if not rows:
        what = f" of flow {flow_name!r}" if flow_name else ""
        render.stderr.print(f"[dim]no schedules{escape(what)} in group {escape(target.group)}[/]")
        return
    render.print_table(
        ("flow", "clock", "expression", "time zone", "state", "next fires (local time)"),
        [
            (
                f"{row['flow']} v{row['version']}" if row["version"] else row["flow"],
                row["clock"],
                row["expression"],
                row["timezone"],
                str(row["state"]),
                ", ".join(
                    render.local_time(datetime.fromisoformat(moment)) for moment in row["next"]
                )
                or ("paused" if row["state"] != "ENABLED" else "none left"),
            )
            for row in rows
        ],
    )


@schedules.command("pause")
@click.argument("flow_name", metavar="FLOW")
@click.argument("clock", required=False)
@reports_errors
def schedules_pause(flow_name: str, clock: str | None) -> None:
    """Stop FLOW's schedules (or one CLOCK) from requesting runs, until resumed."""
    _set_state(flow_name, clock, enabled=False)


@schedules.command("resume")
@click.argument("flow_name", metavar="FLOW")
@click.argument("clock", required=False)
@reports_errors
def schedules_resume(flow_name: str, clock: str | None) -> None:
    """Let FLOW's paused schedules (or one CLOCK) request runs again."""
    _set_state(flow_name, clock, enabled=True)


def _set_state(flow_name: str, clock: str | None, *, enabled: bool) -> None:
    from flowrelay.control.schedule_sync import set_state

    try:
        changed = set_state(aws_client("scheduler"), _target(), flow_name, clock, enabled)
    except LookupError as exc:
        render.fail(str(exc).strip("'\""), 1)
    verb = "resumed" if enabled else "paused"
    if changed:
        render.stdout.print(f"{verb}: {escape(', '.join(changed))}")
    else:
        render.stdout.print(f"already {verb}")
