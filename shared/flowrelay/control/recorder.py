"""Recording state: runner, dispatcher and monitor reports, and infrastructure events (ECS task
state changes), applied to runs through the transition table.

Infrastructure is read conservatively: when what a run was launched on stops before the run
reached a final state, the run is Crashed with the platform's reason and exit codes (and the
tail of its log, when it can be read: the runner may have died before it could say anything).
A missing exit code is never read as success. If the runner's own final report was merely
delayed, it replaces the Crashed verdict when it arrives (see ``flowrelay.core.lifecycle``).

What is launched and still starting leaves the run Submitted, with what the platform says in
its history (Queued is for runs a concurrency limit holds back). A run that ends gives back its
concurrency-limit slots, handed on to the runs waiting for them (``flowrelay.control.slots``),
also when the event is a duplicate about a run already final (its first delivery may have died
half-way).

One exception: infrastructure that failed to start for a reason that usually passes (the
launcher marks it ``transient``) sends the run back to Pending as its next launch attempt, up
to the retry policy's limit. Events about an earlier attempt's launch are ignored (the store
compares their ``ref``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from flowrelay.control.slots import Slots
from flowrelay.control.store import Store
from flowrelay.core.events import (
    EventError,
    FlowRunClusterChanged,
    FlowRunStateChanged,
    ParsedEvent,
    TaskRunStateChanged,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.modeling import Model
from flowrelay.core.policies import RetryPolicy
from flowrelay.core.runs import LATE_STATE, FlowRun
from flowrelay.launchers.base import InfraEvent, InfraStatus

log = logging.getLogger("flowrelay.control.recorder")


class RecordOutcome(Model):
    run_id: str | None
    applied: bool
    state: RunState | None = None
    reason: str


class StopVerdict(Model):
    """What a stopped launch means for its run: ``updates`` schedule the next attempt when the
    run is sent back to Pending (``relaunch``)."""

    state: RunState
    message: str
    relaunch: bool = False
    details: dict[str, Any] = Field(default_factory=dict)
    updates: dict[str, Any] | None = None


def stopped_verdict(
    status: InfraStatus, run: FlowRun | None, retry: RetryPolicy, now: datetime
) -> StopVerdict:
    """Crashed with the platform's reason, or, for a transient start failure of a run that has
    attempts left, back to Pending for the next attempt, due after the policy's backoff from
    ``now``. Shared by ``record_state`` (events) and the monitor (what it describes), so both
    read a stopped launch the same way."""
    message = status.message
    details = dict(status.details)
    if status.transient and run is not None and run.state is RunState.SUBMITTED:
        if run.attempt < retry.max_attempts:
            return StopVerdict(
                state=RunState.PENDING,
                message=(
                    f"attempt {run.attempt} of {retry.max_attempts} failed to start "
                    f"(transient): {status.reason}; launching again"
                ),
                relaunch=True,
                details=details,
                updates={
                    "attempt": run.attempt + 1,
                    "retry_at": now + timedelta(seconds=retry.delay(run.attempt)),
                },
            )
        message += f" (after {run.attempt} attempts)"
    return StopVerdict(state=RunState.CRASHED, message=message, details=details)


class StateRecorder:
    """Applies state events to runs.

    ``retry``: the launch retry policy (for launches that failed to start). ``log_tail``: reads
    the last lines of a run's log from its infrastructure, for Crashed messages (best effort).
    ``relaunch``: asks dispatch for the next attempt of a run sent back to Pending.
    ``slots``: gives back the slots of runs that end.
    """

    def __init__(
        self,
        store: Store,
        *,
        retry: RetryPolicy | None = None,
        log_tail: Callable[[dict[str, Any]], str] | None = None,
        relaunch: Callable[[FlowRun], None] | None = None,
        slots: Slots | None = None,
    ) -> None:
        self.store = store
        self.retry = retry or RetryPolicy()
        self.log_tail = log_tail
        self.relaunch = relaunch
        self.slots = slots or Slots(store)

    def handle(self, event: ParsedEvent) -> RecordOutcome:
        detail = event.detail
        if isinstance(detail, FlowRunStateChanged):
            return self._flowrelay(detail)
        if isinstance(detail, InfraEvent):
            return self._infrastructure(detail)
        if isinstance(detail, FlowRunClusterChanged):
            return self._cluster(detail)
        if isinstance(detail, TaskRunStateChanged):
            return RecordOutcome(
                run_id=detail.flow_run_id, applied=False, reason="task states are not recorded"
            )
        raise EventError(f"record_state does not take {event.envelope.detail_type!r} events")

    def _flowrelay(self, change: FlowRunStateChanged) -> RecordOutcome:
        if change.heartbeat:
            alive = self.store.runs.heartbeat(change.flow_run_id)
            return RecordOutcome(
                run_id=change.flow_run_id,
                applied=alive,
                reason="heartbeat" if alive else "heartbeat for a run that is final or unknown",
            )
        result = self.store.runs.transition(
            change.flow_run_id,
            change.state,
            change.source,
            message=change.message,
            event_id=change.event_id,
            details=change.details,
        )
        self.slots.give_back(result.run)
        if not result.applied and result.run is not None and _late_running(change, result.run):
            return self._late_running(change, result.run)
        return RecordOutcome(
            run_id=change.flow_run_id,
            applied=result.applied,
            state=result.run.state if result.run else None,
            reason=result.reason,
        )

    def _late_running(self, change: FlowRunStateChanged, run: FlowRun) -> RecordOutcome:
        """The runner's Running report came after the run's final state: concurrent batches
        of the state queue (as on AWS) can apply a short run's end first. The run stays as it
        is, and its history keeps when the runner started, as a note, so it still shows that
        the run ran and for how long."""
        noted = self.store.runs.note(
            run,
            change.source,
            f"the flow runner reported Running at {change.timestamp.isoformat()}; the report "
            f"arrived after {run.state}",
            at=change.timestamp,
            event_id=change.event_id,
            details={**change.details, LATE_STATE: str(RunState.RUNNING)},
        )
        return RecordOutcome(
            run_id=run.run_id,
            applied=noted,
            state=run.state,
            reason="a late Running report, noted" if noted else "noted already",
        )

    def _cluster(self, change: FlowRunClusterChanged) -> RecordOutcome:
        """A run's Dask cluster changed: a note in its history. A cluster that is starting is
        also remembered for the monitor, which sweeps it once the run is over, whatever
        happens to the runner (recorded even for a run already final: a runner killed just
        after creating its cluster still had it).

        The report must name one of the run's own clusters (``cluster_name`` of the run and one
        of its attempts, on the kind it was launched on): the monitor sweeps what is
        remembered, and a report naming anything else (a mistake, or anyone who may put events
        on the bus) must not make it stop another run's tasks. Refused reports go to the DLQ
        with the reason."""
        run_id = change.flow_run_id
        run = self.store.runs.get(run_id)
        if run is None:
            raise EventError(f"{change.DETAIL_TYPE}: no flow run {run_id!r}")
        cluster = change.cluster
        launched_on = run.infrastructure.get("kind")
        if not cluster.is_of(run_id, run.attempt) or cluster.kind != launched_on:
            raise EventError(
                f"{change.DETAIL_TYPE}: cluster {cluster.name!r} ({cluster.kind}) is not a "
                f"cluster of run {run_id!r}, launched on {launched_on or 'nothing yet'} "
                f"(attempt {run.attempt})"
            )
        if change.phase == "starting":
            self.store.clusters.expect(run_id, cluster)
        details: dict[str, Any] = {
            "cluster": cluster.name,
            "reported_at": change.timestamp.isoformat(),
            **change.details,
        }
        if change.workers is not None:
            details["workers"] = change.workers
        noted = self.store.runs.note(
            run,
            change.source,
            change.message,
            at=self.store.clock(),
            event_id=change.event_id,
            details=details,
        )
        return RecordOutcome(
            run_id=run_id,
            applied=noted,
            state=run.state,
            reason=f"cluster {change.phase}" if noted else "noted already",
        )

    def _infrastructure(self, event: InfraEvent) -> RecordOutcome:
        status = event.status
        run_id = event.run_id
        if run_id is None:
            return RecordOutcome(
                run_id=None, applied=False, reason=f"{status.noun} {status.ref} is not flowrelay's"
            )
        details: dict[str, Any] = dict(status.details)
        updates: dict[str, Any] | None = None
        relaunch = False
        run: FlowRun | None = None
        if status.phase == "stopped":
            run = self.store.runs.get(run_id)
            verdict = stopped_verdict(status, run, self.retry, self.store.clock())
            proposed, message, relaunch = verdict.state, verdict.message, verdict.relaunch
            details.update(verdict.details)
            updates = verdict.updates
            if (
                not relaunch
                and run is not None
                and _crash_applies(run)
                and self.log_tail is not None
            ):
                message += self.log_tail(run.infrastructure)
        elif status.phase == "starting":
            return self._starting(run_id, status)
        else:
            return RecordOutcome(
                run_id=run_id,
                applied=False,
                reason=f"{status.noun} status {status.state} changes nothing",
            )
        result = self.store.runs.transition(
            run_id,
            proposed,
            Source.INFRASTRUCTURE,
            message=message,
            details={k: v for k, v in details.items() if v is not None},
            infra_sequence=status.sequence,
            infra_ref=status.ref,
            updates=updates,
            held=run,
        )
        if result.applied and relaunch and result.run is not None and self.relaunch is not None:
            self.relaunch(result.run)
        self.slots.give_back(result.run)
        return RecordOutcome(
            run_id=run_id,
            applied=result.applied,
            state=result.run.state if result.run else None,
            reason=result.reason,
        )

    def _starting(self, run_id: str, status: InfraStatus) -> RecordOutcome:
        """What a Submitted run was launched on is starting: noted in its history (once per
        platform status), the run left Submitted."""
        run = self.store.runs.get(run_id)
        if run is None:
            raise EventError(f"{status.noun} {status.ref} is starting: no flow run {run_id!r}")
        noted = note_starting(self.store, run, status)
        return RecordOutcome(
            run_id=run_id,
            applied=noted,
            state=run.state,
            reason=f"{status.noun} {status.state}" if noted else "nothing new to note",
        )


def note_starting(store: Store, run: FlowRun, status: InfraStatus) -> bool:
    """Note in a Submitted run's history what its starting infrastructure says, once per
    launch and platform status (the recorder's events and the monitor's polls say the same);
    False when there is nothing new (another state, another launch, noted already)."""
    current = run.infrastructure.get("ref")
    if run.state is not RunState.SUBMITTED or (current is not None and current != status.ref):
        return False
    return store.runs.note(
        run,
        Source.INFRASTRUCTURE,
        status.message,
        at=store.clock(),
        event_id=f"starting-{status.ref}-{status.state}",
        details={key: value for key, value in status.details.items() if value is not None},
    )


def _late_running(change: FlowRunStateChanged, run: FlowRun) -> bool:
    """Whether a refused report is the runner's Running, arriving after the run ended."""
    return (
        change.state is RunState.RUNNING and change.source is Source.RUNNER and run.state.is_final
    )


def _crash_applies(run: FlowRun) -> bool:
    """Whether a Crashed verdict would change the run (worth reading its log for)."""
    return run.state.is_active and run.state is not RunState.CANCELLING
