"""``flowrelay runs ls|show|logs|cancel|retry``: the runs in the stack's table, their logs,
cancelling one, restarting one that failed; following a run's states as they come
(``run --watch``, ``cancel --wait``, ``retry --watch``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape

from flowrelay.aws.logs import log_location, read_all
from flowrelay.cli import render
from flowrelay.cli.limits import run_limit_lines
from flowrelay.cli.options import Seconds, requested_by
from flowrelay.cli.stack import (
    aws_client,
    current,
    open_store,
    reports_errors,
)
from flowrelay.control.store import Store
from flowrelay.control.store.runs import RECENT_DAYS
from flowrelay.core.lifecycle import WAITING_STATES, RunState
from flowrelay.core.runs import FlowRun
from flowrelay.operations.limits import run_limits
from flowrelay.operations.logs import read_log, read_pod_log
from flowrelay.operations.runs import (
    CANCEL_FIELDS,
    RunFilter,
    collect_runs,
    console_url,
    detail_json,
    failed_trace,
    get_run,
    live_kubernetes,
    origin,
    request_cancel,
    request_restart,
    restarted_as,
    run_state,
)

if TYPE_CHECKING:
    from flowrelay.launchers.kubernetes.launcher import KubernetesLauncher


#: Seconds between polls of a watched run: quick enough to feel live, a few reads a second.
POLL_SECONDS = 0.5


def pause() -> None:
    """Wait between polls (its own function so tests can interrupt it)."""
    time.sleep(POLL_SECONDS)


def follow(store: Store, run_id: str, console: Console) -> Iterator[FlowRun | None]:
    """Poll a run, printing each state it reaches (a timeline line) and each new reason a
    waiting run gives, as they come; yields the run after each poll (None while it does not
    exist yet), pausing between polls, until the caller stops."""
    # A transition is one per version; a note (its Dask cluster started, ...) shares the
    # version of the transition before it and is told apart by its event.
    shown: set[tuple[int, bool, str]] = set()
    last_note: tuple[int, str | None] | None = None
    while True:
        run = store.runs.get(run_id)
        if run is not None:
            for entry in store.runs.history(run_id):
                key = (entry.version, entry.note, entry.event_id or entry.at.isoformat())
                if key not in shown:
                    shown.add(key)
                    console.print(render.timeline_line(entry))
                    if not entry.note:
                        last_note = (entry.version, entry.message)
            # A waiting run's reason changes without a new state (note_waiting): show it too.
            if (
                last_note is not None
                and run.version == last_note[0]
                and run.message != last_note[1]
            ):
                last_note = (run.version, run.message)
                if run.message:
                    console.print(render.timeline(run.updated_at, run.state, "note", run.message))
        yield run
        pause()


def watch_run(store: Store, run_id: str, timeout: float, as_json: bool) -> int:
    """Follow a run until it is final; the exit code of ``run --watch``."""
    console = render.stderr if as_json else render.stdout
    deadline = time.monotonic() + timeout
    run: FlowRun | None = None
    try:
        for run in follow(store, run_id, console):
            if run is None:
                if time.monotonic() >= deadline:
                    render.fail(
                        f"flow run {run_id} did not appear within {timeout:g} s: is the "
                        f"dispatch function running (`flowrelay dev up`, or the stack's "
                        f"DispatchQueue and its DLQ)?",
                        1,
                    )
            elif run.state.is_final:
                break
    except KeyboardInterrupt:
        render.stderr.print(
            f"[yellow]stopped watching[/]: flow run {run_id} goes on (flowrelay runs show {run_id})"
        )
        return 130
    assert run is not None
    if as_json:
        render.echo_json(render.run_json(run, store.runs.history(run_id)))
    return 0 if run.state is RunState.SUCCESS else 1


@click.group()
def runs() -> None:
    """Flow runs: list, inspect, cancel and restart."""


@runs.command("ls")
@click.option("--flow", "flow_name", help="Only runs of this flow.")
@click.option(
    "--state",
    type=click.Choice([str(state) for state in RunState], case_sensitive=False),
    help="Only runs in this state.",
)
@click.option("--label", help="Only runs that carry this label.")
@click.option("--target", "target_name", help="Only runs sent to this target.")
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="Only runs created at this time (UTC) or later.",
)
@click.option(
    "--active",
    is_flag=True,
    help="Only runs that have not finished, longest waiting first (what the monitor watches).",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=3660),
    default=RECENT_DAYS,
    show_default=True,
    help="Without --flow: how many days back to look.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="At most N runs."
)
@click.option(
    "--before",
    metavar="POSITION",
    help="The next page: runs older than the position the previous page printed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON.")
@reports_errors
def runs_ls(
    flow_name: str | None,
    state: str | None,
    label: str | None,
    target_name: str | None,
    since: datetime | None,
    active: bool,
    days: int,
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first: every flow's, finished or not (the last --days days, or
    --since), or one flow's (--flow). --active lists the unfinished ones: of every flow,
    longest waiting first (what the monitor watches); of one flow, newest first. When there
    are more, the position of the next page is printed on stderr (--before POSITION).

    \b
    Examples:
      flowrelay runs ls                       # the latest runs of every flow
      flowrelay runs ls --state Failed        # what failed lately
      flowrelay runs ls --state Queued        # held back by a concurrency limit
      flowrelay runs ls --flow etl --limit 5  # etl's last five runs
      flowrelay runs ls --label gpu --since 2026-11-30
      flowrelay runs ls --active              # everything not finished
    """
    wanted = RunFilter(
        flow=flow_name,
        state=run_state(state) if state else None,
        active=active,
        label=label,
        target=target_name,
        since=since.replace(tzinfo=UTC) if since is not None else None,
        days=days,
        limit=limit,
    )
    # Named as the user gave them; find_runs refuses the same in its own words.
    if flow_name is not None and not flow_name.strip():
        render.fail("--flow: a flow's name cannot be empty", 2)
    if active and wanted.state is not None and wanted.state.is_final:
        render.fail(f"--active lists runs that have not finished, and {wanted.state} is final", 2)
    page = collect_runs(open_store(current()), wanted, before=before)
    found = page.runs
    if as_json:
        render.echo_json([run.model_dump(mode="json") for run in found])
    elif not found:
        what = (
            f"runs of flow {flow_name!r}"
            if flow_name
            else "active runs"
            if active
            else f"runs in the last {days} days"
        )
        wanted_state = f" in state {wanted.state}" if wanted.state else ""
        filtered = " that pass the filters" if label or target_name or since else ""
        render.stderr.print(f"[dim]no {escape(what)}{wanted_state}{filtered}[/]")
    else:
        render.print_table(
            ("run id", "flow", "state", "from", "target", "created", "message"),
            [
                (
                    found_run.run_id,
                    found_run.flow_name
                    + (f" v{found_run.flow_version}" if found_run.flow_version else ""),
                    str(found_run.state),
                    origin(found_run),
                    found_run.target or "",
                    render.local_time(found_run.created_at),
                    render.truncate(found_run.message, 40),
                )
                for found_run in found
            ],
        )
    if page.next is not None:
        render.stderr.print(f"[dim]more: --before {escape(page.next)}[/]", highlight=False)
    elif page.more:
        render.stderr.print(f"[dim]and {page.more} more: raise --limit[/]", highlight=False)


@runs.command("show")
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the run and its history as JSON.")
@reports_errors
def runs_show(run_id: str, as_json: bool) -> None:
    """Show a run: where it is, where it ran, where its logs are, the concurrency limits it
    waits for or holds a slot of, and every state it went through. With --json, ``logs`` is the
    log group, stream, region and console link (null until the run is launched, or when its
    task does not log to CloudWatch), and ``limits`` each limit the run took a slot of or
    waited for that still exists: whether it holds a slot, its place in the waiting list (1:
    next; null when it does not wait), the runs holding slots and the limit's max_runs."""
    store = open_store(current())
    found = get_run(store, run_id)
    history = store.runs.history(run_id)
    location = log_location(found.infrastructure)
    live = live_kubernetes(found, _kubernetes_launcher)
    restarts = restarted_as(history)
    # The concurrency limits it holds a slot of or waits for: one read per limit, none when it
    # was never subject to one.
    limits_of_run = run_limits(store, found.run_id, found.limits) if found.limits else []
    if as_json:
        render.echo_json(detail_json(found, history, limits=limits_of_run, kubernetes=live))
        return
    console = render.stdout
    version = f" version {found.flow_version}" if found.flow_version else ""
    console.print(f"[bold]flow run {escape(found.run_id)}[/]: {escape(found.flow_name)}{version}")
    fields: list[tuple[str, str]] = [
        ("state", render.styled(found.state)),
        ("message", escape(found.message or "")),
        ("target", escape(found.target or "")),
        ("created", render.local_time(found.created_at)),
        ("updated", render.local_time(found.updated_at)),
        ("heartbeat", render.local_time(found.heartbeat_at)),
        ("parameters", escape(json.dumps(found.parameters)) if found.parameters else ""),
        ("labels", escape(", ".join(found.labels))),
        ("idempotency key", escape(found.idempotency_key or "")),
        ("restart of", escape(found.restart_of or "")),
        ("restarted as", escape(", ".join(restarts))),
    ]
    fields += [
        (label, escape(value))
        for label, value in run_limit_lines(limits_of_run, found.state in WAITING_STATES)
    ]
    fields += [
        (key.replace("_", " "), escape(str(value)))
        for key, value in sorted(found.infrastructure.items())
        if not key.startswith("log_")  # shown below, with the link
    ]
    if live is not None:
        fields += [
            ("job", escape(f"{live['namespace']}/{live['job']}")),
            ("pod", escape(str(live.get("pod") or "none"))),
            ("now", escape(str(live["now"]))),
            ("logs", escape(f"flowrelay runs logs {found.run_id} (while the pod exists)")),
        ]
    if location is not None:
        fields += [
            ("log group", escape(location.group)),
            ("log stream", escape(location.stream)),
            ("logs", escape(console_url(location) or f"flowrelay runs logs {found.run_id}")),
        ]
    lines = [(label, value) for label, value in fields if value]
    width = max(len(label) for label, _ in lines) + 2
    for label, value in lines:
        console.print(f"  {label + ':':<{width}}{value}")
    trace = failed_trace(history)
    if trace is not None:
        where = f" of task {trace.failed_tasks[0]!r}" if trace.failed_tasks else ""
        console.print(f"  traceback{where}:")
        console.print(trace.traceback, markup=False, highlight=False)
    render.print_table(
        ("time", "state", "source", "message"),
        [
            (
                render.local_time(entry.at),
                "·" if entry.note else str(entry.state),  # a note changes no state
                str(entry.source),
                entry.message or "",
            )
            for entry in history
        ],
        title="history",
    )


@runs.command("retry")
@click.argument("run_id")
@click.option("--watch", "-w", is_flag=True, help="Follow the new run until it ends.")
@click.option(
    "--timeout",
    type=Seconds(0.0, or_equal=True),
    default=120.0,
    show_default=True,
    help="With --watch: seconds to wait for the new run to appear.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the request (or, with --watch, the new run)."
)
@reports_errors
def runs_retry(run_id: str, watch: bool, timeout: float, as_json: bool) -> None:
    """Restart the run RUN_ID, which failed: a new run of the same flow version, parameters,
    labels and run config that reuses the results its tasks checkpointed and runs the tasks
    that failed and everything after them. Prints the new run's id.

    \b
    Only a run that ended Failed, Crashed, TimedOut or Cancelled can be restarted, and once:
    retrying it again (a double click) is refused, naming its restart, which is the run to
    retry next. The link is in both runs' histories (flowrelay runs show). Tasks reuse what
    they checkpointed: a flow whose tasks have no result= (or runs with checkpointing off)
    runs every task again (docs/restart.md). Exit 1 when there is no such run, 2 when it
    cannot be restarted. With --watch, follows the new run: exit 0 when it succeeds, 1 when
    it ends any other way.

    \b
    Example:
      flowrelay runs retry 0b6e... --watch
    """
    from flowrelay.aws.bus import Publisher

    names = current()
    store = open_store(names)
    restart = request_restart(
        store,
        Publisher(aws_client("events"), names.bus_name),
        run_id,
        requested_by=requested_by(),
    )
    original, new_id = restart.original, restart.new_id
    if as_json and not watch:
        render.echo_json(restart.as_json())
        return
    if not as_json:
        click.echo(new_id)
    follow_it = (
        "following it" if watch else f"flowrelay runs show {new_id}, or runs logs {new_id} -f"
    )
    render.stderr.print(
        f"[dim]restarting run {escape(run_id)} ({original.state}) as run {new_id}: {follow_it}[/]",
        highlight=False,
    )
    if watch:
        sys.exit(watch_run(store, new_id, timeout, as_json))


def _kubernetes_launcher() -> KubernetesLauncher:
    """The Kubernetes launcher this command reads pods with: made once per command (its cluster
    connection and EKS token serve every read, a followed log's polls too)."""
    from flowrelay.launchers.kinds import build_launchers
    from flowrelay.launchers.kubernetes.launcher import KubernetesLauncher

    meta = click.get_current_context().meta
    made = meta.get(_KUBERNETES_LAUNCHER_KEY)
    if isinstance(made, KubernetesLauncher):
        return made
    names = current()
    launcher = build_launchers(
        aws_client, table_name=names.table_name, bus_name=names.bus_name, kinds=("kubernetes",)
    )["kubernetes"]
    assert isinstance(launcher, KubernetesLauncher)
    meta[_KUBERNETES_LAUNCHER_KEY] = launcher
    return launcher


_KUBERNETES_LAUNCHER_KEY = "flowrelay.kubernetes_launcher"


@runs.command("logs")
@click.argument("run_id")
@click.option(
    "--tail", "-n", "last", type=click.IntRange(min=1), metavar="N", help="Only the last N lines."
)
@click.option(
    "--follow",
    "-f",
    "follow_lines",
    is_flag=True,
    help="Keep printing lines as the task writes them, until the run ends (waits for it to be "
    "launched). Ctrl-C stops (exit 130).",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the location and the events (time, message)."
)
@reports_errors
def runs_logs(run_id: str, last: int | None, follow_lines: bool, as_json: bool) -> None:
    """Print the log lines of a run's task (from CloudWatch Logs), oldest first.

    \b
    Exit 1 when the run is unknown, has no log location (not launched yet, or its task does
    not log to CloudWatch), or its log stream does not exist yet (with --follow: waits for
    them instead). A line is one log event.

    \b
    Examples:
      flowrelay runs logs 0b6e...            # everything
      flowrelay runs logs 0b6e... --tail 50  # the last 50 lines
      flowrelay runs logs 0b6e... -f         # everything, then new lines until the run ends
    """
    store = open_store(current())
    found = get_run(store, run_id)
    if follow_lines:
        if as_json:
            render.fail("--follow prints lines as they come; it does not take --json", 2)
        sys.exit(_follow_logs(store, found, last))
    log = read_log(
        found, last, logs_client=lambda: aws_client("logs"), kubernetes=_kubernetes_launcher
    )
    if not as_json:
        for line in log.lines:
            click.echo(line.message)
        return
    render.echo_json(log.as_json())


def _follow_logs(store: Store, found: FlowRun, last: int | None) -> int:
    """``runs logs --follow``: the run's lines as they come until it ends; the exit code."""
    from flowrelay.aws.logs import follow as follow_stream

    client = aws_client("logs")
    run = found
    said: str | None = None
    try:
        while (
            log_location(run.infrastructure) is None
            and not run.infrastructure.get("log_file")
            and run.infrastructure.get("kind") != "kubernetes"
        ):
            if run.state.is_final:
                render.fail(f"run {run.run_id} ended {run.state} without logs to follow", 1)
            waiting = f"run {run.run_id} is {run.state}: {run.message or 'not launched yet'}"
            if waiting != said:
                # Until there is a log, what the run is waiting for (as run --watch says it).
                render.stderr.print(f"[dim]{escape(waiting)}[/]", highlight=False)
                said = waiting
            pause()
            run = store.runs.get(run.run_id) or run
        latest = run

        def ended() -> bool:
            nonlocal latest
            latest = store.runs.get(run.run_id) or latest
            return latest.state.is_final

        location = log_location(run.infrastructure)
        if run.infrastructure.get("kind") == "kubernetes":
            for line in _follow_pod(run, ended, last):
                click.echo(line)
            return _followed(latest)
        if location is None:
            lines = _follow_file(Path(str(run.infrastructure["log_file"])), ended, last)
            for line in lines:
                click.echo(line)
            return _followed(latest)
        skip = 0
        if last is not None:
            try:
                total = sum(1 for _ in read_all(client, location))
            except Exception:  # no stream yet: nothing to skip
                total = 0
            skip = max(0, total - last)
        for event in follow_stream(client, location, ended, pause, skip=skip):
            click.echo(event.message)
    except KeyboardInterrupt:
        render.stderr.print(f"[yellow]stopped following[/]: run {run.run_id} goes on")
        return 130
    return _followed(latest)


def _followed(run: FlowRun) -> int:
    render.stderr.print(f"[dim]run {run.run_id} ended {run.state}: {escape(run.message or '')}[/]")
    return 0


def _follow_pod(run: FlowRun, done: Callable[[], bool], last: int | None) -> Iterator[str]:
    """The lines of a Kubernetes run's pod log as they come, until ``done()`` (then once more,
    for what was written last)."""
    printed: int | None = None
    finishing = False
    while True:
        finishing = finishing or done()
        lines = (read_pod_log(run, _kubernetes_launcher) or "").splitlines()
        if printed is None:
            printed = max(0, len(lines) - last) if last is not None else 0
        yield from lines[printed:]
        printed = max(printed, len(lines))
        if finishing:
            return
        pause()


def _follow_file(path: Path, done: Callable[[], bool], last: int | None) -> Iterator[str]:
    """The lines of ``path`` as they are written, from the start (or its last ``last`` lines),
    until ``done()``; a file not there yet is waited for."""
    offset = 0
    if last is not None and path.exists():
        lines = path.read_bytes().splitlines(keepends=True)
        offset = sum(len(line) for line in lines[: max(0, len(lines) - last)])
    pending = b""
    finishing = False
    while True:
        chunk = b""
        if path.exists():
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
        offset += len(chunk)
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace")
        if not chunk:
            if finishing:
                if pending:
                    yield pending.decode(errors="replace")
                return
            finishing = done()
            if not finishing:
                pause()


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
    type=Seconds(0.0, or_equal=True),
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

    names = current()
    store = open_store(names)
    outcome = request_cancel(
        store,
        Publisher(aws_client("events"), names.bus_name),
        run_id,
        reason=reason,
        requested_by=requested_by(),
        field_names=CANCEL_FIELDS,
    )
    if outcome.request is None:
        # A clear no-op, not an error: the user's goal (the run is not running) holds.
        if as_json:
            render.echo_json(outcome.as_json())
        else:
            render.stdout.print(escape(outcome.message))
        return
    if as_json and not wait:
        render.echo_json(outcome.as_json())
        return
    (render.stderr if as_json else render.stdout).print(escape(outcome.message))
    if wait:
        sys.exit(wait_cancelled(store, run_id, timeout, as_json))


def wait_cancelled(store: Store, run_id: str, timeout: float, as_json: bool) -> int:
    """Follow a run after a cancel request until it is final (``_follow``); the exit code of
    ``runs cancel --wait``: 0 only when the run ends Cancelled."""
    console = render.stderr if as_json else render.stdout
    deadline = time.monotonic() + timeout
    found: FlowRun | None = None
    try:
        for found in follow(store, run_id, console):
            if found is None:  # pragma: no cover - runs are never deleted
                render.fail(f"flow run {run_id} disappeared", 1)
            if found.state.is_final:
                break
            if time.monotonic() >= deadline:
                now = store.runs.get(run_id) or found  # as it is now, not as first read
                render.fail(
                    f"run {run_id} is still {now.state} after {timeout:g} s; the cancel "
                    f"request stands (flowrelay runs show {run_id})",
                    1,
                )
    except KeyboardInterrupt:
        render.stderr.print(
            f"[yellow]stopped watching[/]: the cancel of flow run {run_id} goes on "
            f"(flowrelay runs show {run_id})"
        )
        return 130
    assert found is not None
    if as_json:
        render.echo_json(render.run_json(found, store.runs.history(run_id)))
    if found.state is not RunState.CANCELLED:
        render.stderr.print(
            f"run {run_id} ended {found.state}, not Cancelled: "
            f"{escape(render.truncate(found.message, 200))}"
        )
        return 1
    return 0
