"""Commands that talk to a flowrelay stack, the embedded dev stack or a deployed one alike:
``register``, ``run``, ``runs ls|show|logs|cancel``, ``targets put|ls|rm``, ``invoke`` and
``monitor``.

They only use the table and the bus (names from ``flowrelay.cli.settings``), the way the Lambda
functions do, so what works against ``flowrelay dev up`` works against AWS.
"""

from __future__ import annotations

import functools
import getpass
import importlib.util
import json
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flowrelay.aws.logs import LogEvent, LogLocation, log_location, read_all
from flowrelay.cli import output
from flowrelay.cli.local import param_option, parse_params
from flowrelay.cli.settings import ConfigError, StackNames, aws_client, current
from flowrelay.control.store import FlowRun, HistoryEntry, RunStore, run_id_for
from flowrelay.core.events import describe
from flowrelay.core.lifecycle import ACTIVE_STATES, RunState
from flowrelay.sdk.storage import S3, FlowLoadError, Local, Storage, split_location

if TYPE_CHECKING:
    from flowrelay.control.monitor import Monitor, MonitorReport

F = TypeVar("F", bound=Callable[..., Any])

#: Seconds between polls of a watched run: quick enough to feel live, a few reads a second.
POLL_SECONDS = 0.5


# --- errors ----------------------------------------------------------------------------------


def reports_errors(command: F) -> F:
    """Turn the errors a command can meet talking to AWS into one line and an exit code, so no
    user ever sees a botocore traceback for a wrong name, endpoint or credentials."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
            NoRegionError,
        )

        from flowrelay.aws.bus import PublishError

        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            output.fail(str(exc), 2)
        except (NoCredentialsError, NoRegionError) as exc:
            output.fail(f"AWS is not configured: {exc}", 2)
        except EndpointConnectionError as exc:
            output.fail(f"cannot reach AWS: {exc}", 1)
        except PublishError as exc:
            output.fail(str(exc), 1)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Error"), error.get("Message", str(exc))
            if code == "ResourceNotFoundException":
                output.fail(
                    f"{message} (is FLOWRELAY_TABLE_NAME / FLOWRELAY_BUS_NAME or the stack right?)",
                    2,
                )
            output.fail(f"{exc.operation_name}: {code}: {message}", 1)

    return wrapper  # type: ignore[return-value]


def _store(names: StackNames) -> RunStore:
    return RunStore(aws_client("dynamodb"), names.table_name)


def _local_time(moment: datetime | None, with_date: bool = True) -> str:
    if moment is None:
        return ""
    local = moment.astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _styled(state: RunState) -> str:
    style = output.STYLES.get(str(state), "cyan" if state.is_active else "white")
    return f"[{style}]{state}[/]"


def _print_table(
    columns: tuple[str, ...], rows: list[tuple[str, ...]], title: str | None = None
) -> None:
    """A table on a terminal; aligned plain columns otherwise, so piped output is whole (a rich
    table squeezed into 80 columns cuts ids) and easy to grep or ``awk``. Cells are plain text;
    a ``state`` column is coloured on a terminal."""
    console = output.stdout
    if not console.is_terminal:
        if title:
            console.print(title, markup=False)
        widths = [max(len(row[index]) for row in [columns, *rows]) for index in range(len(columns))]
        for row in [columns, *rows]:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            console.print(line.rstrip(), markup=False)
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        # The message gives way first; ids, states and times stay whole and on one line.
        table.add_column(column, no_wrap=column != "message", overflow="fold")
    state_at = columns.index("state") if "state" in columns else None
    for row in rows:
        cells = [escape(cell) for cell in row]
        if state_at is not None:
            cells[state_at] = _styled(RunState(row[state_at]))
        table.add_row(*cells)
    console.print(table)


def _truncate(text: str | None, width: int = 60) -> str:
    text = (text or "").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


# --- register ----------------------------------------------------------------------------------


@click.command()
@click.argument("location", metavar="FILE[:ATTR]")
@click.option(
    "--storage",
    "storage_kind",
    type=click.Choice(["local", "s3"]),
    help="Where runs load the flow from (default: the flow's own storage, else this file).",
)
@click.option("--bucket", help="With --storage s3: the bucket the script is uploaded to.")
@click.option("--json", "as_json", is_flag=True, help="Print the registration as JSON.")
@reports_errors
def register(location: str, storage_kind: str | None, bucket: str | None, as_json: bool) -> None:
    """Register the flow in FILE (the attribute ATTR, or its only Flow).

    \b
    Registering unchanged content again keeps the version, so CI may register on every deploy.
    Storage: the flow's own (flow.storage) when set; otherwise this script by absolute path
    (Local, for the dev stack and this machine); `--storage s3 --bucket B` uploads the script
    to B under a content-addressed key, for deployed stacks.

    \b
    Example:
      flowrelay register flows/etl.py:flow --storage s3 --bucket my-flows
    """
    from flowrelay.core.registration import registration_for

    if bucket and storage_kind is None:
        storage_kind = "s3"
    if storage_kind == "s3" and not bucket:
        output.fail("--storage s3 needs --bucket BUCKET", 2)
    if storage_kind == "local" and bucket:
        output.fail("--bucket goes with --storage s3, not --storage local", 2)
    script, attr = split_location(location)
    try:
        flow = Local(location).load()
    except FlowLoadError as exc:
        output.fail(str(exc), 2)
    names = current()
    storage: Storage | None
    if storage_kind == "s3":
        try:
            target = S3(str(bucket), attr=attr)
        except ValidationError as exc:
            output.fail(f"--bucket: {describe(exc)}", 2)
        storage = target.upload(script, flow.name, client=aws_client("s3"))
    elif storage_kind == "local" or flow.storage is None:
        absolute = str(Path(script).resolve())
        storage = Local(f"{absolute}:{attr}" if attr else absolute)
    else:
        storage = None  # the flow's own
    try:
        registration = registration_for(flow, storage=storage)
    except ValueError as exc:
        output.fail(str(exc), 2)
    stored, created = _store(names).register_flow(registration)
    if as_json:
        _echo_json(stored.model_dump(mode="json"))
    elif created:
        output.stdout.print(f"registered {escape(stored.name)} version {stored.version}")
    else:
        output.stdout.print(f"{escape(stored.name)} is unchanged: version {stored.version}")


# --- run -----------------------------------------------------------------------------------------


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
            requested_by=_requested_by(),
        )
    except ValidationError as exc:
        # Named as the options are: --flow-run-id, not flow_run_id.
        problems = [
            f"{'.'.join(str(part) for part in item['loc']).replace('_', '-')}: {item['msg']}"
            for item in exc.errors(include_url=False)
        ]
        output.fail("; ".join(problems), 2)
    run_id = request.flow_run_id or run_id_for(str(request.idempotency_key))
    names = current()
    Publisher(aws_client("events"), names.bus_name).publish(request)
    if not watch:
        if as_json:
            _echo_json(
                {"flow_run_id": run_id, **request.model_dump(mode="json", exclude_none=True)}
            )
        else:
            click.echo(run_id)
        return
    if not as_json:
        click.echo(run_id)
    sys.exit(_watch(_store(names), run_id, timeout, as_json))


def _pause() -> None:
    """Wait between polls (its own function so tests can interrupt it)."""
    time.sleep(POLL_SECONDS)


def _requested_by() -> str:
    """Who asked, for the run's history: the CLI and the local user when there is one."""
    try:
        return f"flowrelay-cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "flowrelay-cli"


def _follow(store: RunStore, run_id: str, console: Console) -> Iterator[FlowRun | None]:
    """Poll a run, printing each state it reaches (a timeline line) and each new reason a
    waiting run gives, as they come; yields the run after each poll (None while it does not
    exist yet), pausing between polls, until the caller stops."""
    shown_versions: set[int] = set()
    last_note: tuple[int, str | None] | None = None
    while True:
        run = store.get_run(run_id)
        if run is not None:
            for entry in store.history(run_id):
                if entry.version not in shown_versions:
                    shown_versions.add(entry.version)
                    console.print(_timeline_line(entry))
                    last_note = (entry.version, entry.message)
            # A waiting run's reason changes without a new state (note_pending): show it too.
            if (
                last_note is not None
                and run.version == last_note[0]
                and run.message != last_note[1]
            ):
                last_note = (run.version, run.message)
                if run.message:
                    console.print(_timeline(run.updated_at, run.state, "note", run.message))
        yield run
        _pause()


def _watch(store: RunStore, run_id: str, timeout: float, as_json: bool) -> int:
    """Follow a run until it is final; the exit code of ``run --watch``."""
    console = output.stderr if as_json else output.stdout
    deadline = time.monotonic() + timeout
    run: FlowRun | None = None
    try:
        for run in _follow(store, run_id, console):
            if run is None:
                if time.monotonic() >= deadline:
                    output.fail(
                        f"flow run {run_id} did not appear within {timeout:g} s: is the "
                        f"dispatch function running (`flowrelay dev up`, or the stack's "
                        f"DispatchQueue and its DLQ)?",
                        1,
                    )
            elif run.state.is_final:
                break
    except KeyboardInterrupt:
        output.stderr.print(
            f"[yellow]stopped watching[/]: flow run {run_id} goes on (flowrelay runs show {run_id})"
        )
        return 130
    assert run is not None
    if as_json:
        _echo_json(_run_json(run, store.history(run_id)))
    return 0 if run.state is RunState.SUCCESS else 1


def _timeline_line(entry: HistoryEntry) -> str:
    return _timeline(entry.at, entry.state, str(entry.source), entry.message)


def _timeline(at: datetime, state: RunState, source: str, message: str | None) -> str:
    """One line of ``run --watch``: time, state, who said so, and why."""
    padded = _styled(state) + " " * max(0, 10 - len(str(state)))
    return f"{_local_time(at, with_date=False)}  {padded}  {source:<14}  {escape(message or '')}"


def _run_json(run: FlowRun, history: list[HistoryEntry]) -> dict[str, Any]:
    return {
        "run": run.model_dump(mode="json"),
        "history": [entry.model_dump(mode="json") for entry in history],
    }


# --- runs ------------------------------------------------------------------------------------


@click.group()
def runs() -> None:
    """Flow runs: list, inspect and cancel."""


@runs.command("ls")
@click.option("--flow", "flow_name", help="Runs of this flow, newest first (finished ones too).")
@click.option(
    "--state",
    type=click.Choice([str(state) for state in RunState], case_sensitive=False),
    help="Only runs in this state (a final state needs --flow).",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N runs."
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@reports_errors
def runs_ls(flow_name: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List runs. Without --flow: the runs that have not finished (every active state), longest
    waiting first; finished runs are listed per flow, with --flow.

    \b
    Examples:
      flowrelay runs ls                       # everything not finished
      flowrelay runs ls --flow etl            # etl's latest runs, finished or not
      flowrelay runs ls --flow etl --state Failed
    """
    wanted = _run_state(state) if state else None
    if wanted is not None and wanted.is_final and flow_name is None:
        output.fail(
            f"{wanted} is a final state: finished runs are listed per flow, add --flow FLOW", 2
        )
    store = _store(current())
    found: list[FlowRun]
    if flow_name is not None:
        found = store.runs_of_flow(flow_name, limit=limit)
        if wanted is not None:
            found = [run for run in found if run.state is wanted]
    else:
        states = (
            [wanted]
            if wanted is not None
            else [state for state in RunState if state in ACTIVE_STATES]
        )
        found = [run for active in states for run in store.active_runs(active)]
        found.sort(key=lambda run: run.created_at)
        found = found[:limit]
    if as_json:
        _echo_json([run.model_dump(mode="json") for run in found])
        return
    if not found:
        what = f"runs of flow {flow_name!r}" if flow_name else "active runs"
        output.stderr.print(f"[dim]no {escape(what)}{f' in state {wanted}' if wanted else ''}[/]")
        return
    _print_table(
        ("run id", "flow", "state", "target", "created", "message"),
        [
            (
                found_run.run_id,
                found_run.flow_name
                + (f" v{found_run.flow_version}" if found_run.flow_version else ""),
                str(found_run.state),
                found_run.target or "",
                _local_time(found_run.created_at),
                _truncate(found_run.message, 40),
            )
            for found_run in found
        ],
    )


def _run_state(name: str) -> RunState:
    return next(state for state in RunState if str(state).lower() == name.lower())


def _console_url(location: LogLocation) -> str | None:
    """The CloudWatch console link of a run's logs; none against a local endpoint (the dev
    stack), whose log groups the console has never heard of."""
    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_LOGS"):
        return None
    return location.console_url()


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its history as JSON.")
@reports_errors
def runs_show(run_id: str, as_json: bool) -> None:
    """Show a run: where it is, where it ran, where its logs are, and every state it went
    through. With --json, ``logs`` is the log group, stream, region and console link (null
    until the run is launched, or when its task does not log to CloudWatch)."""
    store = _store(current())
    found = store.get_run(run_id)
    if found is None:
        output.fail(f"no flow run {run_id!r}", 1)
    history = store.history(run_id)
    location = log_location(found.infrastructure)
    if as_json:
        shown = _run_json(found, history)
        shown["logs"] = (
            {**location.model_dump(mode="json"), "console_url": _console_url(location)}
            if location is not None
            else None
        )
        _echo_json(shown)
        return
    console = output.stdout
    version = f" version {found.flow_version}" if found.flow_version else ""
    console.print(f"[bold]flow run {escape(found.run_id)}[/]: {escape(found.flow_name)}{version}")
    fields: list[tuple[str, str]] = [
        ("state", _styled(found.state)),
        ("message", escape(found.message or "")),
        ("target", escape(found.target or "")),
        ("created", _local_time(found.created_at)),
        ("updated", _local_time(found.updated_at)),
        ("heartbeat", _local_time(found.heartbeat_at)),
        ("parameters", escape(json.dumps(found.parameters)) if found.parameters else ""),
        ("labels", escape(", ".join(found.labels))),
        ("idempotency key", escape(found.idempotency_key or "")),
    ]
    fields += [(key, escape(str(value))) for key, value in sorted(found.infrastructure.items())]
    if location is not None:
        fields += [
            ("log group", escape(location.group)),
            ("log stream", escape(location.stream)),
            ("logs", escape(_console_url(location) or f"flowrelay runs logs {found.run_id}")),
        ]
    for label, value in fields:
        if value:
            console.print(f"  {label + ':':<17}{value}")
    _print_table(
        ("time", "state", "source", "message"),
        [
            (_local_time(entry.at), str(entry.state), str(entry.source), entry.message or "")
            for entry in history
        ],
        title="history",
    )


@runs.command("logs")
@click.argument("run_id")
@click.option(
    "--tail", "-n", "last", type=click.IntRange(min=1), metavar="N", help="Only the last N lines."
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the location and the events (time, message)."
)
@reports_errors
def runs_logs(run_id: str, last: int | None, as_json: bool) -> None:
    """Print the log lines of a run's task (from CloudWatch Logs), oldest first.

    \b
    Exit 1 when the run is unknown, has no log location (not launched yet, or its task does
    not log to CloudWatch), or its log stream does not exist yet. A line is one log event.

    \b
    Examples:
      flowrelay runs logs 0b6e...            # everything
      flowrelay runs logs 0b6e... --tail 50  # the last 50 lines
    """
    from botocore.exceptions import ClientError

    found = _store(current()).get_run(run_id)
    if found is None:
        output.fail(f"no flow run {run_id!r}", 1)
    location = log_location(found.infrastructure)
    if location is None:
        if not found.infrastructure:
            output.fail(
                f"run {run_id} has no log location yet: it has not been launched "
                f"(state {found.state})",
                1,
            )
        output.fail(
            f"run {run_id} has no log location: its task does not log to CloudWatch Logs "
            f"(no awslogs log configuration with a stream prefix)",
            1,
        )
    client = aws_client("logs")
    events: list[LogEvent] = []
    try:
        if last is not None:
            # Read from the end and stop once there are enough: a long run's stream may hold
            # far more than anyone asks to see.
            for event in read_all(client, location, start_from_head=False, page_size=last):
                events.append(event)
                if len(events) == last:
                    break
            events.reverse()
        else:
            for event in read_all(client, location):
                if as_json:
                    events.append(event)
                else:
                    click.echo(event.message)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        hint = (
            "its task may not have written any yet"
            if found.state.is_active
            else "its task never wrote any, or they expired"
        )
        output.fail(
            f"run {run_id} has no logs yet: log stream {location.stream!r} in group "
            f"{location.group!r} does not exist ({hint})",
            1,
        )
    if as_json:
        _echo_json(
            {
                "run_id": run_id,
                "log_group": location.group,
                "log_stream": location.stream,
                "events": [
                    {"timestamp": event.timestamp.isoformat(), "message": event.message}
                    for event in events
                ],
            }
        )
    elif last is not None:
        for event in events:
            click.echo(event.message)


@runs.command("cancel")
@click.argument("run_id")
@click.option("--reason", help="Why: kept in the run's history and in ECS's stop reason.")
@click.option(
    "--wait",
    "-w",
    is_flag=True,
    help="Follow the run until it ends: exit 0 only when it ends Cancelled.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="With --wait: seconds to wait for the run to end.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the request (or, with --wait, the run)."
)
@reports_errors
def runs_cancel(run_id: str, reason: str | None, wait: bool, timeout: float, as_json: bool) -> None:
    """Ask the stack to cancel the run RUN_ID: its task is stopped and the run ends Cancelled.

    \b
    A run not launched yet is Cancelled at once; a launched one is Cancelling until its ECS
    task is confirmed stopped (StopTask; the monitor stops it again if it lingers). A run that
    has already ended is left alone (exit 0). Exit 1 when there is no such run. With --wait,
    the run's states are followed: exit 0 when it ends Cancelled, 1 when it ends any other way
    (it may finish before the cancel reaches it) or has not ended within --timeout; Ctrl-C
    stops watching (exit 130) and the cancel goes on.

    \b
    Example:
      flowrelay runs cancel 0b6e... --reason "wrong parameters" --wait
    """
    from flowrelay.aws.bus import Publisher
    from flowrelay.core.events import FlowRunCancelRequested

    names = current()
    store = _store(names)
    found = store.get_run(run_id)
    if found is None:
        output.fail(f"no flow run {run_id!r}", 1)
    if found.state.is_final:
        # A clear no-op, not an error: the user's goal (the run is not running) holds.
        message = f"run {run_id} is already {found.state}; nothing to cancel"
        if as_json:
            _echo_json(
                {
                    "flow_run_id": run_id,
                    "cancel_requested": False,
                    "state": str(found.state),
                    "message": message,
                }
            )
        else:
            output.stdout.print(escape(message))
        return
    try:
        request = FlowRunCancelRequested(
            flow_run_id=run_id, reason=reason, requested_by=_requested_by()
        )
    except ValidationError as exc:
        # Named as the user gave them: RUN_ID, --reason.
        shown = {"flow_run_id": "RUN_ID", "reason": "--reason"}
        problems = []
        for item in exc.errors(include_url=False):
            field = str(item["loc"][0]) if item["loc"] else "request"
            problems.append(f"{shown.get(field, field)}: {item['msg']}")
        output.fail("; ".join(problems), 2)
    Publisher(aws_client("events"), names.bus_name).publish(request)
    requested = f"cancel requested for run {run_id} (was {found.state})"
    if as_json and not wait:
        _echo_json(
            {
                "cancel_requested": True,
                "was": str(found.state),
                **request.model_dump(mode="json", exclude_none=True),
            }
        )
        return
    (output.stderr if as_json else output.stdout).print(escape(requested))
    if wait:
        sys.exit(_wait_cancelled(store, run_id, timeout, as_json))


def _wait_cancelled(store: RunStore, run_id: str, timeout: float, as_json: bool) -> int:
    """Follow a run after a cancel request until it is final (``_follow``); the exit code of
    ``runs cancel --wait``: 0 only when the run ends Cancelled."""
    console = output.stderr if as_json else output.stdout
    deadline = time.monotonic() + timeout
    found: FlowRun | None = None
    try:
        for found in _follow(store, run_id, console):
            if found is None:  # pragma: no cover - runs are never deleted
                output.fail(f"flow run {run_id} disappeared", 1)
            if found.state.is_final:
                break
            if time.monotonic() >= deadline:
                output.fail(
                    f"run {run_id} is still {found.state} after {timeout:g} s; the cancel "
                    f"request stands (flowrelay runs show {run_id})",
                    1,
                )
    except KeyboardInterrupt:
        output.stderr.print(
            f"[yellow]stopped watching[/]: the cancel of flow run {run_id} goes on "
            f"(flowrelay runs show {run_id})"
        )
        return 130
    assert found is not None
    if as_json:
        _echo_json(_run_json(found, store.history(run_id)))
    if found.state is not RunState.CANCELLED:
        output.stderr.print(
            f"run {run_id} ended {found.state}, not Cancelled: "
            f"{escape(_truncate(found.message, 200))}"
        )
        return 1
    return 0


# --- targets ---------------------------------------------------------------------------------


@click.group()
def targets() -> None:
    """Launch targets: where dispatch may start runs (by kind and labels)."""


@targets.command("put")
@click.argument("name")
@click.option(
    "--kind", required=True, type=click.Choice(["ecs", "local", "kubernetes"]), help="Target kind."
)
@click.option("--labels", default="", metavar="A,B", help="Comma-separated labels.")
@click.option(
    "--setting",
    "-s",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the kind; VALUE is JSON when it parses as JSON (lists: '[\"subnet-1\"]'), "
    "else text. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the saved target as JSON.")
@reports_errors
def targets_put(
    name: str, kind: str, labels: str, settings: tuple[str, ...], as_json: bool
) -> None:
    """Create or replace the launch target NAME.

    \b
    Runs waiting in Pending for a target are offered to it by the monitor (within a minute).

    \b
    Example:
      flowrelay targets put fargate --kind ecs --labels prod \\
        --setting cluster=flows --setting 'subnets=["subnet-1"]' --setting assign_public_ip=true
    """
    from flowrelay.core.routing import Target

    values = parse_params(settings)
    label_list = [label.strip() for label in labels.split(",") if label.strip()]
    try:
        target = Target(name=name, kind=kind, labels=label_list, settings=values)
    except ValidationError as exc:
        output.fail(f"invalid target {name!r}: {_target_errors(exc)}", 2)
    _store(current()).put_target(target)
    if as_json:
        _echo_json(target.model_dump(mode="json"))
        return
    shown = ", ".join(target.labels) or "none"
    output.stdout.print(
        f"saved target {escape(target.name)} ({target.kind}; labels: {escape(shown)})"
    )


def _target_errors(error: ValidationError) -> str:
    """Target's errors with each field named as the user gave it: the kind's settings are
    validated inside Target, so their errors come without the ``settings.`` prefix."""
    from flowrelay.core.routing import Target

    parts = []
    for item in error.errors(include_url=False):
        location = [str(part) for part in item["loc"]]
        if location and location[0] not in Target.model_fields:
            location = ["settings", *location]
        parts.append(f"{'.'.join(location) or 'target'}: {item['msg']}")
    return "; ".join(parts)


@targets.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the targets as JSON.")
@reports_errors
def targets_ls(as_json: bool) -> None:
    """List the launch targets."""
    found = _store(current()).list_targets()
    if as_json:
        _echo_json([target.model_dump(mode="json") for target in found])
        return
    if not found:
        output.stderr.print("[dim]no targets: runs wait in Pending until one fits[/]")
        return
    _print_table(
        ("name", "kind", "labels", "settings"),
        [
            (
                target.name,
                target.kind,
                ", ".join(target.labels),
                json.dumps(target.settings, separators=(",", ":")),
            )
            for target in found
        ],
    )


@targets.command("rm")
@click.argument("name")
@reports_errors
def targets_rm(name: str) -> None:
    """Remove the launch target NAME (runs already launched on it are not affected)."""
    if not _store(current()).delete_target(name):
        output.fail(f"no target {name!r}", 1)
    output.stdout.print(f"removed target {escape(name)}")


# --- invoke ------------------------------------------------------------------------------------


class LambdaContext:
    """What a handler gets as ``context`` on Lambda (the parts powertools and our handlers
    read), so a handler invoked here behaves as it does there."""

    def __init__(self, function_name: str, memory_mb: int, timeout_seconds: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:{os.environ.get('AWS_DEFAULT_REGION', 'us-east-1')}:"
            f"123456789012:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "flowrelay-invoke"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


@click.command()
@click.argument("function")
@click.option(
    "--event",
    "event_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The event, as JSON (samples in events/).",
)
@click.option(
    "--template",
    "template_path",
    default="template.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The SAM template that defines the function.",
)
@reports_errors
def invoke(function: str, event_file: Path, template_path: Path) -> None:
    """Run FUNCTION's handler here, wired as template.yaml wires it, with the event in FILE.

    \b
    FUNCTION is a logical id (Dispatch) or its folder (dispatch, record_state, monitor). The
    handler runs in this process against the resolved stack's table and bus; its logs go to
    stderr and its result is printed as JSON. Exit 1 when it raises or reports failed records.

    \b
    Example:
      flowrelay invoke dispatch --event events/dispatch.json
    """
    from flowrelay.devstack.template import FunctionSpec, functions, load_template

    try:
        template = load_template(template_path)
        specs = functions(template)
    except (OSError, ValueError, KeyError) as exc:
        output.fail(f"{template_path}: {exc}", 2)
    spec: FunctionSpec | None = _find_function(specs, function)
    if spec is None:
        known = ", ".join(
            f"{logical_id} ({Path(found.code_uri).name})"
            for logical_id, found in sorted(specs.items())
        )
        output.fail(f"no function {function!r} in {template_path}: it has {known}", 2)
    try:
        event = json.loads(event_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        output.fail(f"{event_file}: not a JSON event: {exc}", 2)
    names = current()
    code_dir = template_path.resolve().parent / spec.code_uri
    handler_file = template_path.resolve().parent / spec.handler_path
    environment, unresolved = _function_environment(template, spec, names)
    if unresolved:
        output.stderr.print(
            f"[dim]left unset (no stack outputs for them): {', '.join(sorted(unresolved))}[/]"
        )
    context = LambdaContext(spec.logical_id, spec.memory_size, spec.timeout)
    with _lambda_like(environment, code_dir):
        try:
            handler = _load_handler(handler_file, spec.handler_function)
        except (OSError, ImportError, AttributeError, SyntaxError) as exc:
            output.fail(f"cannot load {handler_file}: {exc}", 2)
        try:
            result = handler(event, context)
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            output.fail(f"{spec.logical_id} raised {type(exc).__name__}: {first_line}", 1)
    _echo_json(result)
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if failures:
        records = len(event.get("Records", [])) if isinstance(event, dict) else "?"
        output.fail(
            f"{len(failures)} of {records} records failed (SQS would deliver them again)", 1
        )


def _find_function(specs: dict[str, Any], wanted: str) -> Any:
    """A function by logical id or folder name, ignoring case."""
    for logical_id, spec in specs.items():
        folder = Path(spec.code_uri).name
        if wanted.lower() in (logical_id.lower(), folder.lower()):
            return spec
    return None


def _function_environment(
    template: dict[str, Any], spec: Any, names: StackNames
) -> tuple[dict[str, str], list[str]]:
    """The function's environment variables as Lambda would see them: literals as written, the
    table and bus from the resolved names, ``!Ref Parameter`` as its default, and any other
    intrinsic from the stack output that the template defines with the same expression. Returns
    the variables and the names that could not be resolved."""
    outputs_by_value = {
        json.dumps(definition.get("Value"), sort_keys=True): key
        for key, definition in template.get("Outputs", {}).items()
    }
    parameters = template.get("Parameters", {})
    environment: dict[str, str] = {}
    unresolved = []
    for variable, value in spec.environment.items():
        if variable == "FLOWRELAY_TABLE_NAME":
            environment[variable] = names.table_name
        elif variable == "FLOWRELAY_BUS_NAME":
            environment[variable] = names.bus_name
        elif isinstance(value, str | int | float | bool):
            environment[variable] = str(value)
        elif isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
            environment[variable] = str(parameters[value["Ref"]].get("Default", ""))
        else:
            output_key = outputs_by_value.get(json.dumps(value, sort_keys=True))
            if output_key is not None and output_key in names.outputs:
                environment[variable] = names.outputs[output_key]
            elif os.environ.get(variable):
                environment[variable] = os.environ[variable]  # the user set it: keep it
            else:
                unresolved.append(variable)
    return environment, unresolved


def _clear_function_caches() -> None:
    """Forget clients and settings cached by an earlier invocation in this process (as a fresh
    Lambda execution environment would), so the environment set for this one is read."""
    from flowrelay.handlers import wiring

    wiring.reset()


@contextmanager
def _lambda_like(environment: dict[str, str], code_dir: Path) -> Iterator[None]:
    """The function's environment variables, its code folder first on ``sys.path`` (Lambda's
    ``/var/task``), and its logs on stderr (powertools logs to the stdout it saw at import; our
    stdout is for the result). All undone afterwards."""
    from flowrelay.handlers import wiring

    saved_env = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    sys.path.insert(0, str(code_dir))
    handler = wiring.logger.registered_handler
    saved_stream = (
        handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    )
    _clear_function_caches()
    try:
        with output.task_prints_to_stderr():
            yield
    finally:
        _clear_function_caches()
        if isinstance(handler, logging.StreamHandler) and saved_stream is not None:
            handler.setStream(saved_stream)
        if str(code_dir) in sys.path:
            sys.path.remove(str(code_dir))
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _load_handler(path: Path, attribute: str) -> Callable[[Any, Any], Any]:
    """Import a function's handler file as its own module (each folder has an ``app.py``)."""
    module_name = f"flowrelay_invoke_{path.parent.name}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    handler: Callable[[Any, Any], Any] = getattr(module, attribute)
    return handler


# --- monitor -----------------------------------------------------------------------------------


@click.command("monitor")
@click.option("--once", is_flag=True, help="One pass, then exit.")
@click.option(
    "--every",
    type=click.FloatRange(min=0.1),
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
        output.fail("say --once for one pass, or --every SECONDS to keep going (not both)", 2)
    passes = _cli_monitor(current())
    if once:
        with _monitor_logs_quiet():
            report = passes.run_once()
        if as_json:
            _echo_json(report.model_dump(mode="json"))
        else:
            _print_report(report)
        return
    assert every is not None
    _monitor_every(passes, every, as_json)


def _cli_monitor(names: StackNames) -> Monitor:
    """The Monitor the Lambda function builds (``flowrelay.wiring.run_monitor``), from
    this command's clients: fresh ones (``aws_client``), not the per-process cache the
    functions use."""
    from flowrelay.aws.bus import Publisher
    from flowrelay.aws.logs import crash_log_tail
    from flowrelay.control.monitor import Monitor
    from flowrelay.core.retries import RetryPolicy
    from flowrelay.core.timeouts import Timeouts
    from flowrelay.launchers.ecs import EcsLauncher

    try:
        defaults = Timeouts.from_environment(os.environ)
        retry = RetryPolicy.from_environment(os.environ)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    launcher = EcsLauncher(aws_client("ecs"), table_name=names.table_name, bus_name=names.bus_name)
    return Monitor(
        _store(names),
        {"ecs": launcher},
        Publisher(aws_client("events"), names.bus_name),
        defaults=defaults,
        retry=retry,
        log_tail=functools.partial(crash_log_tail, aws_client("logs")),
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
    heading = f"{title}: {checked}" if title else checked
    if not report.actions:
        output.stderr.print(f"[dim]{escape(heading)}: nothing to do[/]")
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
    _print_table(
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
                    output.stderr.print(f"[yellow]monitor pass failed[/]: {escape(str(exc))}")
                else:
                    now = datetime.now().astimezone()
                    if as_json:
                        click.echo(
                            json.dumps({"at": now.isoformat(), **report.model_dump(mode="json")})
                        )
                    else:
                        _print_report(report, title=_local_time(now))
                first = False
                time.sleep(max(0.0, every - (time.monotonic() - started)))
    except (KeyboardInterrupt, Terminated):
        output.stderr.print("[yellow]monitor stopped[/]")
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


COMMANDS = (register, run, runs, targets, invoke, monitor)
