"""The monitor: every active run reconciled with its infrastructure, once a minute.

It reads active runs through the sparse ``active`` index (never a table scan), one query per
state, and holds each against its limits (``flowrelay.core.policies``, stored on the run at launch):

- **Pending**: re-offered to dispatch when a target fits it now (a target was added or its
  labels changed), unless a launch is under way or a failed attempt's backoff is pending.
- **Submitted** longer than the start timeout: its launcher is asked. Infrastructure
  that is gone or stopped makes the run Crashed with the platform's reason (or, for a transient
  start failure, starts the next attempt); infrastructure still starting is left alone until
  the start limit, then stopped, and the run is Crashed.
- **Running** past the run's own timeout: its infrastructure is stopped, then the run is
  TimedOut.
- **Running** with no heartbeat for the heartbeat timeout: its launcher is asked. Stopped or
  gone infrastructure makes the run Crashed with the stop reason; infrastructure still running
  means the run is alive but its runner cannot report: a warning (and the ``RunnersSilent``
  metric, which is alarmed on), never a crash.
- **Launched on a kind that reports no events** (Kubernetes): its launcher is asked at every
  pass, whatever the run's age. Infrastructure that cannot start (an image that cannot be
  pulled) is stopped and the run Crashed with the platform's words; infrastructure that ended
  with a failure (OOMKilled, Evicted, a non-zero exit, deleted) makes the run Crashed with that
  reason, unless the runner ended the run first; what a pod waiting to start says is noted in
  the run's history. An exit code of 0 waits for the runner's own report (the heartbeat limit
  catches a runner that never sends it).
- **Cancelling**: Cancelled once its infrastructure is confirmed stopped; stopped again if it
  is still running after the stop grace period. A run with nothing recorded but a launch begun
  (its dispatcher died) has what that attempt started looked for, and stopped when found.
- **Ephemeral Dask clusters** of runs that are over (however they ended: the runner may have
  been killed before it could close its cluster): swept by the run's launcher, which stops and
  removes whatever of the cluster is left; what it found goes in the run's history. A run that
  was cancelled or timed out gives its runner (stopped with SIGTERM, closing its cluster) its
  stop grace period first. A cluster is
  forgotten once a sweep removed everything; one that could not be swept is tried again.

- **Concurrency-limit slots** (``flowrelay.control.slots``): a slot held by a run that ended
  or does not exist is given back, a waiter that no longer waits is dropped, free slots are
  handed to the oldest waiting runs, and a **Queued** run that no full limit holds back is
  offered to dispatch again: whatever died half-way, no slot leaks and no run waits for a slot
  nobody holds for longer than one pass.

Every change is one conditional transition with a message a user can act on, so a monitor pass
racing a late event or another pass cannot move a run twice.

>>> report = Monitor(store, {"ecs": launcher}, publisher).run_once()   # doctest: +SKIP
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import Field

from flowrelay.control.recorder import note_starting, stopped_verdict
from flowrelay.control.slots import Slots
from flowrelay.control.store import Store
from flowrelay.core.clusters import ClusterSweep
from flowrelay.core.events import FlowRunRequested
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.modeling import Model
from flowrelay.core.policies import RetryPolicy, Timeouts
from flowrelay.core.routing import choose_target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import InfraStatus, Launched, Launcher

log = logging.getLogger("flowrelay.control.monitor")

Action = Literal[
    "offered",
    "crashed",
    "relaunched",
    "stopped",
    "timed_out",
    "cancelled",
    "runner_silent",
    "swept",
    "slot_released",
    "waiter_dropped",
    "woken",
]
#: ``Slots.repair``'s words for what it did, as monitor actions.
_REPAIRS: dict[str, Action] = {
    "released": "slot_released",
    "dropped": "waiter_dropped",
    "woken": "woken",
}


class Publisher(Protocol):
    def publish(self, *events: Any) -> None: ...


class MonitorAction(Model):
    """One thing a monitor pass did (or found) about one run."""

    run_id: str
    action: Action
    state: RunState | None = None
    message: str


class MonitorReport(Model):
    actions: list[MonitorAction] = Field(default_factory=list)
    checked: int = Field(default=0, description="Active runs looked at, waiting ones included.")
    waiting: int = Field(default=0, description="Of those, runs waiting to be launched.")
    clusters_checked: int = Field(
        default=0, description="Dask clusters of ended runs swept (most have nothing left)."
    )

    def count(self, action: Action) -> int:
        return sum(1 for item in self.actions if item.action == action)


def request_for(run: FlowRun, requested_by: str) -> FlowRunRequested:
    """A request that makes dispatch look at a waiting run again (same run id: never a second
    run, and the launch claim keeps it to one launch)."""
    return FlowRunRequested(
        flow=run.flow_name,
        version=run.flow_version,
        parameters=run.parameters,
        flow_run_id=run.run_id,
        requested_by=requested_by,
    )


def waking_by(
    publisher: Publisher, requested_by: str = "a freed slot"
) -> Callable[[FlowRun], None]:
    """A ``Slots`` wake: a request for the run on the bus (``request_for``), which dispatch
    takes like any request.

    >>> slots = Slots(store, wake=waking_by(publisher))  # doctest: +SKIP
    """

    def wake(run: FlowRun) -> None:
        publisher.publish(request_for(run, requested_by))

    return wake


def is_due(run: FlowRun, now: datetime) -> bool:
    """Whether a waiting run may be launched now: no backoff pending, no launch under way."""
    return (run.retry_at is None or run.retry_at <= now) and not run.launch_claimed(now)


def requests_for_waiting_runs(
    store: Store,
    pending: list[FlowRun] | None = None,
    launchable: Collection[str] | None = None,
) -> list[tuple[FlowRunRequested, str]]:
    """A new request (and why) for every run waiting in Pending (``pending``, else read) that
    some target fits now and that is due (``is_due``). Dispatch takes them like any request:
    same run id, so the run is launched once, by the one function allowed to launch."""
    targets = store.targets.list()
    now = store.clock()
    offers = []
    for run in store.runs.active(RunState.PENDING) if pending is None else pending:
        if not is_due(run, now):
            continue
        choice = choose_target(targets, run.labels, run.run_config, launchable)
        if choice.target is not None:
            offers.append((request_for(run, "monitor"), choice.reason))
    return offers


class Monitor:
    """One reconciliation pass at a time (``run_once``); see the module docstring.

    ``launchers`` maps infrastructure kinds to what can describe and stop them; ``publisher``
    puts re-offered requests on the bus; ``log_tail`` reads the end of a run's log for Crashed
    messages (best effort); ``slots`` repairs concurrency-limit slots (its ``wake`` should
    publish a request, as ``publisher`` does; by default it does).
    """

    def __init__(
        self,
        store: Store,
        launchers: Mapping[str, Launcher],
        publisher: Publisher,
        *,
        defaults: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        log_tail: Callable[[dict[str, Any]], str] | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.store = store
        self.launchers = launchers
        self.publisher = publisher
        self.slots = slots or Slots(store, wake=waking_by(publisher, "monitor (a free slot)"))
        self.defaults = defaults or Timeouts()
        self.retry = retry or RetryPolicy()
        self.log_tail = log_tail
        self._seen: dict[str, InfraStatus] = {}  # statuses asked for in this pass, by run
        self._woken: set[str] = set()  # runs handed a slot in this pass (and woken)

    def run_once(self) -> MonitorReport:
        """One pass over every active run; a failure on one run is logged and the pass goes on."""
        report = MonitorReport()
        self._seen = {}
        self._woken = set()
        active: dict[str, FlowRun] = {}
        checks: list[tuple[RunState, Callable[[FlowRun, datetime], MonitorAction | None]]] = [
            (RunState.SUBMITTED, self._check_start),
            (RunState.RUNNING, self._check_running),
            (RunState.CANCELLING, self._check_cancelling),
        ]
        for state, check in checks:
            for run in self.store.runs.active(state):
                active[run.run_id] = run
                report.checked += 1
                try:
                    action = self._check_polled(run)
                    if action is None:
                        action = check(run, self.store.clock())
                except Exception:
                    log.exception("monitor: checking run %s (%s) failed", run.run_id, run.state)
                    continue
                if action is not None:
                    report.actions.append(action)
        pending = self.store.runs.active(RunState.PENDING)
        scheduled = self.store.runs.active(RunState.SCHEDULED)
        queued = self.store.runs.active(RunState.QUEUED)
        for run in (*pending, *scheduled, *queued):
            active[run.run_id] = run
        report.waiting = len(pending) + len(scheduled) + len(queued)
        report.checked += report.waiting
        report.actions.extend(self._offer_pending(pending))
        report.actions.extend(self._repair_slots(active))
        report.actions.extend(self._sweep_clusters(report))
        for action in report.actions:
            level = logging.WARNING if action.action == "runner_silent" else logging.INFO
            log.log(level, "monitor: run %s %s: %s", action.run_id, action.action, action.message)
        return report

    # --- the checks ----------------------------------------------------------------------------

    def _sweep_clusters(self, report: MonitorReport) -> list[MonitorAction]:
        """Sweep the Dask cluster of every run that is over (or unknown)."""
        actions = []
        for pending in self.store.clusters.pending():
            try:
                run = self.store.runs.get(pending.run_id)
                if run is not None and self._runner_may_close(run):
                    continue
                action = self._sweep(pending.run_id, run, pending.cluster)
            except Exception:
                log.exception(
                    "monitor: sweeping Dask cluster %s of run %s failed",
                    pending.cluster.name,
                    pending.run_id,
                )
                continue
            report.clusters_checked += 1
            if action is not None:
                actions.append(action)
        return actions

    def _runner_may_close(self, run: FlowRun) -> bool:
        """Whether the run's runner may still own its cluster: the run is not over; or it was
        just cancelled or timed out, so its runner got SIGTERM and is closing the cluster itself,
        which its stop grace period allows for (after that the platform has killed it). A run
        that succeeded or failed was reported by a runner that had closed its cluster first; a
        crashed one's runner is gone."""
        if not run.state.is_final:
            return True
        if run.state not in (RunState.CANCELLED, RunState.TIMED_OUT):
            return False
        timeouts = run.timeouts or self.defaults
        return (
            _seconds_since(run.state_entered_at, self.store.clock()) < timeouts.stop_grace_seconds
        )

    def _sweep(
        self, run_id: str, run: FlowRun | None, cluster: ClusterSweep
    ) -> MonitorAction | None:
        if run is None or not run.infrastructure:
            # Nothing says where it ran (the run is gone, or never launched): nothing to look
            # in. Forgotten, with the reason in the log, rather than tried for ever.
            log.warning(
                "monitor: forgetting Dask cluster %s of run %s: %s",
                cluster.name,
                run_id,
                "the run is unknown" if run is None else "the run records no launch",
            )
            self.store.clusters.swept(run_id, cluster.name)
            return None
        launcher = self.launchers.get(cluster.kind)
        if launcher is None:
            raise LookupError(f"no launcher here for {cluster.kind!r} Dask clusters")
        swept = launcher.sweep_cluster(run, cluster)
        if not swept.failed:
            self.store.clusters.swept(run_id, cluster.name)
        if not swept.found:
            return None
        message = f"Dask cluster {cluster.name} swept: {swept.summary()}"
        self.store.runs.note(
            run,
            Source.MONITOR,
            message,
            at=self.store.clock(),
            event_id=uuid.uuid4().hex,
            details={"cluster": cluster.name, **swept.bounded()},
        )
        return MonitorAction(run_id=run_id, action="swept", state=run.state, message=message)

    def _repair_slots(self, active: Mapping[str, FlowRun]) -> list[MonitorAction]:
        try:
            repairs = self.slots.repair(active, self.store.clock(), woken=self._woken)
        except Exception:
            log.exception("monitor: repairing concurrency-limit slots failed")
            return []
        return [
            MonitorAction(
                run_id=repair.run_id,
                action=_REPAIRS[repair.action],
                state=active[repair.run_id].state if repair.run_id in active else None,
                message=repair.message,
            )
            for repair in repairs
        ]

    def _offer_pending(self, pending: list[FlowRun]) -> list[MonitorAction]:
        offers = requests_for_waiting_runs(self.store, pending, launchable=self.launchers)
        if offers:
            self.publisher.publish(*(request for request, _ in offers))
        return [
            MonitorAction(
                run_id=str(request.flow_run_id),
                action="offered",
                state=RunState.PENDING,
                message=f"offered to dispatch again: {reason}",
            )
            for request, reason in offers
        ]

    def _check_polled(self, run: FlowRun) -> MonitorAction | None:
        """What a run on a kind that reports no events says now (see the module docstring);
        None to go on with the run's usual check."""
        if run.state not in (RunState.SUBMITTED, RunState.RUNNING):
            return None
        if not run.infrastructure or self._launcher(run).reports_events:
            return None
        status = self._status(run)
        if status.cannot_start:
            self._stop(run, f"flowrelay: cannot start: {status.reason}")
            message = f"{status.message}; its {status.noun} was stopped"
            return self._move(run, RunState.CRASHED, "crashed", message, status.details)
        if status.ended:
            if status.phase == "stopped" and status.exit_code == 0:
                return None  # the runner's own report says how the run ended
            return self._stopped(run, status, "found by the monitor")
        if status.phase == "starting":
            # What a platform's "starting" event says elsewhere (the recorder notes it too).
            note_starting(self.store, run, status)
        return None

    def _check_start(self, run: FlowRun, now: datetime) -> MonitorAction | None:
        limits = run.timeouts or self.defaults
        waited = _seconds_since(run.launched_at or run.state_entered_at, now)
        if waited <= limits.start_seconds:
            return None
        status = self._status(run)
        if status.ended:
            return self._stopped(run, status, f"not started after {waited:.0f} s")
        if status.phase == "running":
            return self._silent(
                run,
                f"its task is running but the runner has not reported in {waited:.0f} s",
            )
        if waited <= limits.start_limit_seconds:
            return None
        still = f"still {status.state}" + (f": {status.message}" if status.reason else "")
        message = (
            f"the {status.noun} did not start within {limits.start_limit_seconds:g} s "
            f"({still}); it was stopped"
        )
        self._stop(run, f"flowrelay: did not start within {limits.start_limit_seconds:g} s")
        return self._move(run, RunState.CRASHED, "crashed", message, status.details)

    def _check_running(self, run: FlowRun, now: datetime) -> MonitorAction | None:
        limits = run.timeouts or self.defaults
        running_for = _seconds_since(run.state_entered_at, now)
        if limits.run_seconds is not None and running_for > limits.run_seconds:
            self._stop(run, f"flowrelay: timed out after {limits.run_seconds:g} s")
            message = (
                f"timed out: running for {running_for:.0f} s, over its limit of "
                f"{limits.run_seconds:g} s; its task was stopped"
            )
            return self._move(run, RunState.TIMED_OUT, "timed_out", message)
        silent_for = _seconds_since(run.heartbeat_at or run.state_entered_at, now)
        if silent_for <= limits.heartbeat_seconds:
            return None
        status = self._status(run)
        if status.ended:
            return self._stopped(run, status, f"no heartbeat for {silent_for:.0f} s")
        return self._silent(
            run,
            f"no heartbeat for {silent_for:.0f} s but its {status.noun} is {status.state}: the "
            "runner cannot report (check the task's network path to EventBridge)",
        )

    def _check_cancelling(self, run: FlowRun, now: datetime) -> MonitorAction | None:
        limits = run.timeouts or self.defaults
        if not run.infrastructure:
            if run.launch_claimed(now):
                return None  # its dispatcher stops what it launches
            if run.claimed_attempt is not None:
                found = self._find_unrecorded(run, run.claimed_attempt)
                if found is not None:
                    return self._stop_unrecorded(run, found)
            elif _seconds_since(run.state_entered_at, now) <= limits.stop_grace_seconds:
                return None
            return self._move(
                run, RunState.CANCELLED, "cancelled", "cancelled before it was launched"
            )
        status = self._status(run)
        if status.ended:
            return self._move(
                run,
                RunState.CANCELLED,
                "cancelled",
                "cancelled: its task is confirmed stopped",
            )
        if _seconds_since(run.state_entered_at, now) <= limits.stop_grace_seconds:
            return None
        self._stop(run, "flowrelay: cancelled (stopping again)")
        return MonitorAction(
            run_id=run.run_id,
            action="stopped",
            state=run.state,
            message=f"still {status.state} after the cancel; asked for its {status.noun} to stop "
            "again",
        )

    # --- what the checks do --------------------------------------------------------------------

    def _find_unrecorded(self, run: FlowRun, attempt: int) -> Launched | None:
        """What a dead dispatcher may have started for ``attempt`` and never recorded; None
        when there is nothing (or no launcher can look)."""
        targets = self.store.targets.list()
        for kind, launcher in self.launchers.items():
            fitting = [target for target in targets if target.kind == kind]
            found = launcher.find_unrecorded(run, attempt, fitting)
            if found is not None:
                return found
        return None

    def _stop_unrecorded(self, run: FlowRun, found: Launched) -> MonitorAction:
        """Stop what was found for a cancelling run that did not know it, and record it on the
        run, so its stop (an event, or the next pass) ends the run Cancelled."""
        infrastructure = found.model_dump(mode="json", exclude_none=True)
        self.launchers[found.kind].stop_launched(
            infrastructure, "flowrelay: cancelled (a task started unrecorded)"
        )
        message = (
            f"cancelled: found {found.label}, started by a launch that never recorded it; it is "
            "being stopped"
        )
        self.store.runs.amend(run, Source.MONITOR, message, {"infrastructure": infrastructure})
        return MonitorAction(run_id=run.run_id, action="stopped", state=run.state, message=message)

    def _launcher(self, run: FlowRun) -> Launcher:
        kind = Launched.model_validate(run.infrastructure).kind
        launcher = self.launchers.get(kind)
        if launcher is None:
            raise LookupError(f"no launcher here for {kind!r} infrastructure")
        return launcher

    def _status(self, run: FlowRun) -> InfraStatus:
        seen = self._seen.get(run.run_id)
        if seen is None:
            seen = self._seen[run.run_id] = self._launcher(run).status(run.infrastructure)
        return seen

    def _stop(self, run: FlowRun, reason: str) -> None:
        if run.infrastructure:
            self._launcher(run).stop_launched(run.infrastructure, reason)

    def _stopped(self, run: FlowRun, status: InfraStatus, why: str) -> MonitorAction | None:
        """The run's infrastructure is stopped, or gone."""
        if status.phase == "gone":
            return self._move(run, RunState.CRASHED, "crashed", f"{why}, and {status.message}")
        verdict = stopped_verdict(status, run, self.retry, self.store.clock())
        if verdict.relaunch:
            action = self._move(
                run, verdict.state, "relaunched", verdict.message, verdict.details, verdict.updates
            )
            if action is not None:
                self.publisher.publish(request_for(run, "monitor (relaunch)"))
            return action
        message = f"{verdict.message} ({why})"
        if self.log_tail is not None:
            message += self.log_tail(run.infrastructure)
        return self._move(run, verdict.state, "crashed", message, verdict.details)

    def _silent(self, run: FlowRun, message: str) -> MonitorAction:
        return MonitorAction(
            run_id=run.run_id, action="runner_silent", state=run.state, message=message
        )

    def _move(
        self,
        run: FlowRun,
        state: RunState,
        action: Action,
        message: str,
        details: Mapping[str, Any] | None = None,
        updates: Mapping[str, Any] | None = None,
        *,
        source: Source = Source.MONITOR,
        infra_ref: str | None = None,
    ) -> MonitorAction | None:
        result = self.store.runs.transition(
            run.run_id,
            state,
            source,
            message=message,
            details={k: v for k, v in (details or {}).items() if v is not None},
            updates=updates,
            infra_ref=infra_ref,
        )
        self._woken.update(self.slots.give_back(result.run))
        if not result.applied:
            return None  # the run moved meanwhile: the newer state wins
        final = result.run.state if result.run else state
        return MonitorAction(run_id=run.run_id, action=action, state=final, message=message)


def _seconds_since(moment: datetime, now: datetime) -> float:
    return (now - moment).total_seconds()
