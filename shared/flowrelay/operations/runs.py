"""Runs, as a user sees and acts on them: finding them (``find_runs``), where one came from
(``origin``), what restarted it (``restarted_as``), the traceback of its failed task
(``failed_trace``), and asking the stack to cancel (``request_cancel``) or restart
(``request_restart``) one. ``flowrelay runs ...`` and the web UI both call these.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from flowrelay.aws.bus import Publisher
from flowrelay.aws.logs import LogLocation
from flowrelay.control.store import RunPage, Store
from flowrelay.control.store import runs as run_store
from flowrelay.control.store.runs import RECENT_DAYS
from flowrelay.core.events import FlowRunCancelRequested, FlowRunRequested, describe
from flowrelay.core.lifecycle import ACTIVE_STATES, RunState
from flowrelay.core.registration import not_registered
from flowrelay.core.runs import (
    FlowRun,
    HistoryEntry,
    restart_key,
    restart_refusal,
    run_id_for,
)
from flowrelay.operations import NotFoundError, RefusedError


@dataclass(frozen=True)
class RunFilter:
    """Which runs to list. ``active``: only runs that have not finished. Runs of one flow
    (``flow``) come newest first, a page at a time; so do every flow's created in the last
    ``days`` days (or ``since``); the active runs of every flow come in one list, longest
    waiting first (what the monitor watches). ``label``: runs that carry it; ``target``: runs
    sent to it; ``since``: runs created then or later."""

    flow: str | None = None
    state: RunState | None = None
    active: bool = False
    label: str | None = None
    target: str | None = None
    since: datetime | None = None
    days: int = RECENT_DAYS
    limit: int = 50

    def problem(self) -> str | None:
        """What makes this filter one no run can pass, in words (None when it is fine)."""
        if self.flow is not None and not self.flow.strip():
            return "a flow's name cannot be empty"
        if self.active and self.state is not None and self.state.is_final:
            return f"active runs have not finished, and {self.state} is final"
        if self.limit < 1:
            return f"a page holds at least 1 run, not {self.limit}"
        return None

    @property
    def is_one_page(self) -> bool:
        """Active runs of every flow: read from the index of runs by state, all at once, and
        listed longest waiting first (what the monitor watches); other lists come in pages,
        newest first."""
        return self.flow is None and (
            self.active or (self.state is not None and self.state.is_active)
        )

    def keeps(self, run: FlowRun) -> bool:
        """Whether ``run`` passes every condition an index did not already apply."""
        return (
            (self.state is None or run.state is self.state)
            and (not self.active or run.state.is_active)
            and (self.label is None or self.label in run.labels)
            and (self.target is None or run.target == self.target)
            and (self.flow is None or run.flow_name == self.flow)
            and (self.since is None or run.created_at >= self.since)
        )


def find_runs(store: Store, wanted: RunFilter, before: str | None = None) -> RunPage:
    """One page of the runs ``wanted`` names; ``before``: the ``next`` of the page before.

    The active runs of every flow are read from the index of runs by state (all of them,
    longest waiting first, one list: ``more`` says how many the limit left out); the others
    from the runs by flow or by day, newest first, a page at a time. A filtered page may hold
    fewer runs than the limit, none even, and still have a ``next``: it stops after examining
    ``PAGE_EXAMINES`` runs (``collect_runs`` goes on to the limit).

    >>> find_runs(store, RunFilter(flow="etl", state=RunState.FAILED, limit=5))  # doctest: +SKIP
    RunPage(runs=[...], next='2026-11-30T08:00:00+00:00#0b6e...')
    """
    problem = wanted.problem()
    if problem is not None:
        raise RefusedError(problem)
    if before is not None and not is_position(before):
        raise RefusedError(
            f"before: {before!r} is not the position a page of runs ended at "
            f"(<created at>#<run id>, as the last page printed)"
        )
    filtered = wanted.active or any(
        value is not None for value in (wanted.state, wanted.label, wanted.target)
    )
    if wanted.is_one_page:
        if before is not None:
            raise RefusedError(
                "active runs of every flow come in one list, longest waiting first: there is "
                "no page before (raise the limit, or name a flow)"
            )
        states = [wanted.state] if wanted.state is not None else sorted(ACTIVE_STATES)
        found = [run for one in states for run in store.runs.active(one) if wanted.keeps(run)]
        found.sort(key=lambda run: run.created_at)
        return RunPage(runs=found[: wanted.limit], more=max(0, len(found) - wanted.limit))
    return store.runs.page(
        examine=run_store.PAGE_EXAMINES,
        limit=wanted.limit,
        flow_name=wanted.flow,
        before=before,
        since=wanted.since,
        days=wanted.days,
        keep=wanted.keeps if filtered else None,
    )


def is_position(text: str) -> bool:
    """Whether ``text`` is a position a page of runs ends at (``RunPage.next``):
    ``<created at, ISO 8601>#<run id>``, or with no run id, the start of a day a page did not
    read.

    >>> is_position("2026-11-30T08:00:00.123456+00:00#0b6e"), is_position("yesterday")
    (True, False)
    """
    moment, mark, _ = text.partition("#")
    if not mark:
        return False
    try:
        return datetime.fromisoformat(moment).tzinfo is not None
    except ValueError:
        return False


def collect_runs(store: Store, wanted: RunFilter, before: str | None = None) -> RunPage:
    """Like ``find_runs``, but going on from page to page until ``wanted.limit`` runs are
    found or there are none older: for a script, which waits rather than get a short page.
    ``next``: where to go on from when there are more."""
    page = find_runs(store, wanted, before=before)
    runs = list(page.runs)
    while page.next is not None and len(runs) < wanted.limit:
        page = find_runs(store, replace(wanted, limit=wanted.limit - len(runs)), before=page.next)
        runs += page.runs
    return RunPage(runs=runs, next=page.next, more=page.more)


def run_state(name: str) -> RunState:
    """The run state ``name`` names, whatever its case; RefusedError naming the states.

    >>> run_state("timedout")
    <RunState.TIMED_OUT: 'TimedOut'>
    """
    found = next((state for state in RunState if str(state).lower() == name.lower()), None)
    if found is None:
        raise RefusedError(
            f"state: {name!r} is not a run state ({', '.join(str(s) for s in RunState)})"
        )
    return found


def origin(run: FlowRun) -> str:
    """Where a run came from, in a few words: ``schedule <clock>`` for a run a schedule
    requested, ``restart of <run>`` for a restart, else empty."""
    from flowrelay.control.schedule_sync import flow_prefix, scheduled_by

    if run.restart_of is not None:
        return f"restart of {run.restart_of}"
    scheduled = scheduled_by(run.idempotency_key)
    if scheduled is None:
        return ""
    return f"schedule {scheduled[0].removeprefix(flow_prefix(run.flow_name))}"


def restarted_as(history: list[HistoryEntry]) -> list[str]:
    """The runs that restart the run of ``history`` (from the notes dispatch leaves on it),
    oldest first."""
    return [
        str(entry.details["restarted_as"])
        for entry in history
        if entry.note and entry.details.get("restarted_as")
    ]


@dataclass(frozen=True)
class FailedTrace:
    """The traceback a run's runner reported with its end, and the failed tasks it named."""

    traceback: str
    failed_tasks: list[str]


def failed_trace(history: list[HistoryEntry]) -> FailedTrace | None:
    """The latest traceback in a run's history (its runner's report of a failed task)."""
    entry = next((entry for entry in reversed(history) if entry.details.get("traceback")), None)
    if entry is None:
        return None
    return FailedTrace(
        traceback=str(entry.details["traceback"]),
        failed_tasks=[str(task) for task in entry.details.get("failed_tasks") or []],
    )


def console_url(location: LogLocation) -> str | None:
    """The CloudWatch console link of a run's logs; none against a local endpoint (the dev
    stack), whose log groups the console has never heard of."""
    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_LOGS"):
        return None
    return location.console_url()


def detail_json(
    run: FlowRun,
    history: list[HistoryEntry],
    *,
    limits: list[dict[str, Any]],
    kubernetes: dict[str, object] | None = None,
) -> dict[str, Any]:
    """A run as ``runs show --json`` prints it: the run and its history, the run that
    restarts it, the limits it holds or waits for (``run_limits``), where its logs are (with
    the console's link) and, on Kubernetes, what its Job and pod say now."""
    from flowrelay.aws.logs import log_location

    restarts = restarted_as(history)
    location = log_location(run.infrastructure)
    shown: dict[str, Any] = {
        "run": run.model_dump(mode="json"),
        "history": [entry.model_dump(mode="json") for entry in history],
        "restarted_as": restarts[-1] if restarts else None,
        "limits": limits,
    }
    if kubernetes is not None:
        shown["kubernetes"] = kubernetes
    shown["logs"] = (
        {**location.model_dump(mode="json"), "console_url": console_url(location)}
        if location is not None
        else None
    )
    return shown


def get_run(store: Store, run_id: str) -> FlowRun:
    """The run ``run_id``; NotFoundError when there is none."""
    found = store.runs.get(run_id)
    if found is None:
        raise NotFoundError(f"no flow run {run_id!r}")
    return found


@dataclass(frozen=True)
class CancelOutcome:
    """What ``request_cancel`` did: ``request`` is the cancel put on the bus, None when the
    run had already ended (nothing to cancel: ``message`` says so)."""

    run_id: str
    was: RunState
    request: FlowRunCancelRequested | None
    message: str

    def as_json(self) -> dict[str, Any]:
        if self.request is None:
            return {
                "flow_run_id": self.run_id,
                "cancel_requested": False,
                "state": str(self.was),
                "message": self.message,
            }
        return {
            "cancel_requested": True,
            "was": str(self.was),
            **self.request.model_dump(mode="json", exclude_none=True),
        }


#: How a cancel request's fields are named to a user of the CLI.
CANCEL_FIELDS = {"flow_run_id": "RUN_ID", "reason": "--reason"}


def request_cancel(
    store: Store,
    publisher: Publisher,
    run_id: str,
    *,
    reason: str | None,
    requested_by: str | None,
    field_names: dict[str, str] | None = None,
) -> CancelOutcome:
    """Ask the stack to cancel a run (a "Flow Run Cancel Requested" event on its bus): its
    task is stopped and it ends Cancelled. A run that has already ended is left alone (not an
    error: the run is not running). ``field_names``: how the caller names the request's
    fields in a refusal (the CLI's ``RUN_ID``, ``--reason``)."""
    found = get_run(store, run_id)
    if found.state.is_final:
        return CancelOutcome(
            run_id=run_id,
            was=found.state,
            request=None,
            message=f"run {run_id} is already {found.state}; nothing to cancel",
        )
    try:
        request = FlowRunCancelRequested(
            flow_run_id=run_id, reason=reason, requested_by=requested_by
        )
    except ValidationError as exc:
        shown = field_names or {}
        problems = []
        for item in exc.errors(include_url=False):
            field = str(item["loc"][0]) if item["loc"] else "request"
            problems.append(f"{shown.get(field, field)}: {item['msg']}")
        raise RefusedError("; ".join(problems)) from None
    publisher.publish(request)
    return CancelOutcome(
        run_id=run_id,
        was=found.state,
        request=request,
        message=f"cancel requested for run {run_id} (was {found.state})",
    )


@dataclass(frozen=True)
class RestartOutcome:
    """What ``request_restart`` put on the bus: a request for ``new_id``."""

    original: FlowRun
    new_id: str
    request: FlowRunRequested

    def as_json(self) -> dict[str, Any]:
        return {
            "flow_run_id": self.new_id,
            "sent": True,
            "was": str(self.original.state),
            **self.request.model_dump(mode="json", exclude_none=True),
        }


def request_restart(
    store: Store, publisher: Publisher, run_id: str, *, requested_by: str | None
) -> RestartOutcome:
    """Ask the stack to restart a run that failed: a new run of the same flow version,
    parameters, labels and run config that reuses what its tasks checkpointed
    (docs/restart.md). Refused (RefusedError) for a run that did not fail, one restarted
    already (naming its restart: the run to retry next), or whose flow version is gone."""
    original = get_run(store, run_id)
    refusal = restart_refusal(original)
    if refusal is not None:
        raise RefusedError(refusal)
    new_id = run_id_for(restart_key(run_id))
    earlier = restarted_as(store.runs.history(run_id))
    if earlier or store.runs.get(new_id) is not None:
        # The note may lag the new run (dispatch writes it after creating the run).
        again = earlier[-1] if earlier else new_id
        raise RefusedError(f"run {run_id} was already restarted as {again}; retry {again} instead")
    if store.flows.get(original.flow_name, original.flow_version) is None:
        raise RefusedError(
            f"run {run_id} cannot be restarted: "
            f"{not_registered(original.flow_name, original.flow_version)} any more (a restart "
            f"runs the version its run ran)"
        )
    try:
        request = FlowRunRequested.restart(original, requested_by=requested_by)
    except ValidationError as exc:
        raise RefusedError(
            f"run {run_id} cannot be restarted as it was made: {describe(exc)}"
        ) from None
    publisher.publish(request)
    return RestartOutcome(original=original, new_id=new_id, request=request)


def live_kubernetes(run: FlowRun, launcher: Callable[[], Any]) -> dict[str, object] | None:
    """For a run launched on Kubernetes: its Job, its pod and what they say now (asked of the
    API server: Kubernetes keeps no history flowrelay could read later). ``launcher`` makes
    the Kubernetes launcher (only called for such a run)."""
    if run.infrastructure.get("kind") != "kubernetes":
        return None
    from flowrelay.launchers.base import LaunchError

    shown: dict[str, object] = {
        "namespace": run.infrastructure.get("namespace"),
        "job": run.infrastructure.get("job_name"),
    }
    try:
        status = launcher().status(run.infrastructure)
    except LaunchError as exc:
        return {**shown, "pod": None, "now": f"cannot ask the API server: {exc}"}
    return {**shown, "pod": status.details.get("pod"), "now": status.message, "phase": status.phase}
