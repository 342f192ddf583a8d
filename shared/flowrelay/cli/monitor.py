"""``flowrelay monitor``: the Monitor function's pass, run from here with your credentials."""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.options import Seconds
from flowrelay.cli.stack import (
    ConfigError,
    StackNames,
    aws_client,
    current,
    launchable_kinds,
    open_store,
    reports_errors,
)

if TYPE_CHECKING:
    from flowrelay.control.monitor import Monitor, MonitorReport


@click.command("monitor")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option(
    "--every",
    type=Seconds(0.1, or_equal=True),
    metavar="SECONDS",
    help="A pass every SECONDS until Ctrl-C.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the report as JSON (with --every: one object per line and pass).",
)
@reports_errors
def monitor(once: bool, every: float | None, as_json: bool) -> None:
    """Run the monitor here: one pass over every active run, as the Monitor function makes on
    its schedule, and print what it did.

    \b
    The Monitor the stack runs, run from here with your credentials (table, bus, ECS):
    re-offers waiting runs a target now fits, crashes runs whose task stopped unseen (with
    ECS's reason and the log's last lines), stops runs past their timeout, finishes
    cancellations. For runs launched without their own limits, the timeouts come from
    FLOWRELAY_START_TIMEOUT_SECONDS, FLOWRELAY_HEARTBEAT_TIMEOUT_SECONDS, ... when set (else
    the template's defaults). Each change is a conditional write: running it alongside the
    stack's own schedule is safe.

    \b
    Examples:
      flowrelay monitor --once              # a table: run, action, state, message
      flowrelay monitor --once --json       # the report: {"actions": [...], "checked": N}
      flowrelay monitor --every 10          # a pass every 10 s until Ctrl-C
    """
    if once == (every is not None):
        render.fail("say --once for one pass, or --every SECONDS to keep going (not both)", 2)
    passes = _cli_monitor(current())
    if once:
        with _monitor_logs_quiet():
            report = passes.run_once()
        if as_json:
            render.echo_json(report.model_dump(mode="json"))
        else:
            _print_report(report)
        return
    assert every is not None
    _monitor_every(passes, every, as_json)


def _cli_monitor(names: StackNames) -> Monitor:
    """The Monitor the Lambda function builds (``flowrelay.handlers.wiring.monitor``), from
    this command's clients: fresh ones (``aws_client``), not the per-process cache the
    functions use."""
    from flowrelay.aws.bus import Publisher
    from flowrelay.control.monitor import Monitor
    from flowrelay.core.policies import RetryPolicy, Timeouts
    from flowrelay.launchers.kinds import build_launchers, crash_log_tail

    try:
        defaults = Timeouts.from_environment(os.environ)
        retry = RetryPolicy.from_environment(os.environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    launchers = build_launchers(
        aws_client,
        table_name=names.table_name,
        bus_name=names.bus_name,
        kinds=launchable_kinds(),
    )
    return Monitor(
        open_store(names),
        launchers,
        Publisher(aws_client("events"), names.bus_name),
        defaults=defaults,
        retry=retry,
        log_tail=functools.partial(
            crash_log_tail, launchers=launchers, logs_client=aws_client("logs")
        ),
    )


@contextmanager
def _monitor_logs_quiet() -> Iterator[None]:
    """The monitor logs each action (INFO, WARNING for a silent runner) for CloudWatch; here
    they are in the table already. Errors (a run that could not be checked) still show."""
    logger = logging.getLogger("flowrelay.control.monitor")
    saved = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(saved)


def _print_report(report: MonitorReport, title: str | None = None) -> None:
    """A monitor report as a table (run, action, state, message), or one line on stderr saying
    there was nothing to do."""
    checked = f"checked {report.checked} active run{'s' if report.checked != 1 else ''}"
    if report.waiting:
        checked += f" ({report.waiting} waiting to launch)"
    if report.clusters_checked:
        plural = "s" if report.clusters_checked != 1 else ""
        checked += f", swept {report.clusters_checked} Dask cluster{plural} of ended runs"
    heading = f"{title}: {checked}" if title else checked
    if not report.actions:
        render.stderr.print(f"[dim]{escape(heading)}: nothing to do[/]")
        return
    rows: list[tuple[str, ...]] = []
    for action in report.actions:
        lines = (action.message or "").splitlines() or [""]
        # A Crashed message carries the log's last lines: `runs show` has them in full.
        message = lines[0] + (" (and log lines: flowrelay runs show)" if len(lines) > 1 else "")
        rows.append((action.run_id, action.action, str(action.state or ""), message))
    # Every action names the run's state; were one not to, the column could not be coloured
    # by state (an empty cell is no state).
    state_column = "state" if all(action.state for action in report.actions) else "run state"
    render.print_table(
        ("run id", "action", state_column, "message"),
        rows,
        title=f"{heading}, {len(rows)} action{'s' if len(rows) != 1 else ''}",
    )


def _monitor_every(passes: Monitor, every: float, as_json: bool) -> None:
    """A pass every ``every`` seconds until Ctrl-C or SIGTERM (exit 0, as ``dev up``). A pass
    that fails talking to AWS is reported and the next one tried; the first must succeed (a
    wrong name or endpoint is an error, not a loop of warnings)."""
    import signal
    import threading

    from botocore.exceptions import BotoCoreError, ClientError

    from flowrelay.core.interrupts import Terminated, raise_on_sigterm

    # Ctrl-C is how this loop ends, even when started with SIGINT ignored (a background job of
    # a non-interactive shell inherits that).
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) if in_main else None
    first = True
    try:
        with raise_on_sigterm():
            while True:
                started = time.monotonic()
                try:
                    with _monitor_logs_quiet():
                        report = passes.run_once()
                except (BotoCoreError, ClientError) as exc:
                    if first:
                        raise
                    render.stderr.print(f"[yellow]monitor pass failed[/]: {escape(str(exc))}")
                else:
                    now = datetime.now().astimezone()
                    if as_json:
                        click.echo(
                            json.dumps({"at": now.isoformat(), **report.model_dump(mode="json")})
                        )
                    else:
                        _print_report(report, title=render.local_time(now))
                first = False
                time.sleep(max(0.0, every - (time.monotonic() - started)))
    except (KeyboardInterrupt, Terminated):
        render.stderr.print("[yellow]monitor stopped[/]")
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
