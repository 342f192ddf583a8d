"""Recording state: runner, dispatcher and monitor reports, and ECS task state changes, applied to
runs through the transition table.

ECS is read conservatively: a task that stops before its run reached a final state makes the run
Crashed with the stop code, the reason and each container's exit code (and the tail of its log,
when it can be read: the runner may have died before it could say anything). A missing exit
code is never read as success. If the runner's own final report was merely delayed, it replaces
the Crashed verdict when it arrives (see ``flowrelay.core.lifecycle``).

One exception: a task that failed to start for a reason AWS calls transient (its network
interface or ephemeral storage was not ready in time, its image pull timed out, no capacity)
sends the run back to Pending as its next launch attempt, up to the retry policy's limit.
Events about an earlier attempt's task are ignored (the store compares task ARNs).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from flowrelay.control.store import FlowRun, RunStore
from flowrelay.core.events import (
    EcsTaskStateChange,
    EventError,
    FlowRunStateChanged,
    ParsedEvent,
    TaskRunStateChanged,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.modeling import Model
from flowrelay.core.retries import RetryPolicy

log = logging.getLogger("flowrelay.control.recorder")

_ECS_WAITING = {"PROVISIONING", "PENDING", "ACTIVATING"}
#: Fargate start failures AWS documents as transient (retrying usually succeeds), and capacity.
TRANSIENT_START_FAILURE = re.compile(
    r"network interface provision|waiting for network interface|eni.*(timeout|timed out)"
    r"|ephemeral storage.*(timeout|timed out)|(timeout|timed out).*ephemeral storage"
    r"|i/o timeout|TLS handshake timeout|capacity is unavailable|RESOURCE:",
    re.IGNORECASE,
)


class RecordOutcome(Model):
    run_id: str | None
    applied: bool
    state: RunState | None = None
    reason: str


def ecs_stop_message(task: EcsTaskStateChange) -> str:
    """What a stopped ECS task says about why, in one line.

    >>> ecs_stop_message(EcsTaskStateChange(taskArn="t", lastStatus="STOPPED", version=3,
    ...     stopCode="TaskFailedToStart", stoppedReason="CannotPullContainerError: not found"))
    'ECS task stopped (TaskFailedToStart): CannotPullContainerError: not found; no container ran'
    """
    head = f"ECS task stopped ({task.stopCode or 'no stop code'})"
    if task.stoppedReason:
        head += f": {task.stoppedReason}"
    if not task.containers:
        return f"{head}; no container ran"
    parts = []
    for container in task.containers:
        name = container.name or "container"
        if container.exitCode is None:
            part = f"container {name!r} has no exit code"
        else:
            part = f"container {name!r} exited with code {container.exitCode}"
        if container.reason:
            part += f" ({container.reason})"
        parts.append(part)
    return f"{head}; " + "; ".join(parts)


class StopVerdict(Model):
    """What a stopped task means for its run: ``updates`` schedule the next attempt when the
    run is sent back to Pending (``relaunch``)."""

    state: RunState
    message: str
    relaunch: bool = False
    details: dict[str, Any] = Field(default_factory=dict)
    updates: dict[str, Any] | None = None


def stopped_task_verdict(
    task: EcsTaskStateChange, run: FlowRun | None, retry: RetryPolicy, now: datetime
) -> StopVerdict:
    """Crashed with ECS's reason, or, for a transient start failure of a run that has attempts
    left, back to Pending for the next attempt, due after the policy's backoff from ``now``.
    Shared by ``record_state`` (ECS events) and the monitor (tasks it describes), so both read a
    stopped task the same way."""
    message = ecs_stop_message(task)
    details: dict[str, Any] = {
        "task_arn": task.taskArn,
        "stop_code": task.stopCode,
        "exit_codes": {c.name or "?": c.exitCode for c in task.containers},
    }
    never_ran = all(container.exitCode is None for container in task.containers)
    transient = (
        task.stopCode == "TaskFailedToStart"
        and never_ran
        and bool(TRANSIENT_START_FAILURE.search(task.stoppedReason or ""))
    )
    if transient and run is not None and run.state in (RunState.SUBMITTED, RunState.QUEUED):
        if run.attempt < retry.max_attempts:
            return StopVerdict(
                state=RunState.PENDING,
                message=(
                    f"attempt {run.attempt} of {retry.max_attempts} failed to start "
                    f"(transient): {task.stoppedReason}; launching again"
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

    ``retry``: the launch retry policy (for tasks that failed to start). ``log_tail``: reads
    the last lines of a run's log from its infrastructure, for Crashed messages (best effort).
    ``relaunch``: asks dispatch for the next attempt of a run sent back to Pending.
    """

    def __init__(
        self,
        store: RunStore,
        *,
        retry: RetryPolicy | None = None,
        log_tail: Callable[[dict[str, Any]], str] | None = None,
        relaunch: Callable[[FlowRun], None] | None = None,
    ) -> None:
        self.store = store
        self.retry = retry or RetryPolicy()
        self.log_tail = log_tail
        self.relaunch = relaunch

    def handle(self, event: ParsedEvent) -> RecordOutcome:
        detail = event.detail
        if isinstance(detail, FlowRunStateChanged):
            return self._flowrelay(detail)
        if isinstance(detail, EcsTaskStateChange):
            return self._ecs(detail)
        if isinstance(detail, TaskRunStateChanged):
            return RecordOutcome(
                run_id=detail.flow_run_id, applied=False, reason="task states are not recorded"
            )
        raise EventError(f"record_state does not take {event.envelope.detail_type!r} events")

    def _flowrelay(self, change: FlowRunStateChanged) -> RecordOutcome:
        if change.heartbeat:
            alive = self.store.heartbeat(change.flow_run_id)
            return RecordOutcome(
                run_id=change.flow_run_id,
                applied=alive,
                reason="heartbeat" if alive else "heartbeat for a run that is final or unknown",
            )
        result = self.store.transition(
            change.flow_run_id,
            change.state,
            change.source,
            message=change.message,
            event_id=change.event_id,
            details=change.details,
        )
        return RecordOutcome(
            run_id=change.flow_run_id,
            applied=result.applied,
            state=result.run.state if result.run else None,
            reason=result.reason,
        )

    def _ecs(self, task: EcsTaskStateChange) -> RecordOutcome:
        run_id = task.flow_run_id
        if run_id is None:
            return RecordOutcome(
                run_id=None, applied=False, reason=f"ECS task {task.taskArn} is not flowrelay's"
            )
        details: dict[str, Any] = {"task_arn": task.taskArn, "ecs_status": task.lastStatus}
        updates: dict[str, Any] | None = None
        relaunch = False
        if task.lastStatus == "STOPPED":
            run = self.store.get_run(run_id)
            verdict = stopped_task_verdict(task, run, self.retry, self.store.clock())
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
        elif task.lastStatus in _ECS_WAITING:
            proposed, message = RunState.QUEUED, f"ECS task {task.lastStatus.lower()}"
        else:
            return RecordOutcome(
                run_id=run_id, applied=False, reason=f"ECS status {task.lastStatus} changes nothing"
            )
        result = self.store.transition(
            run_id,
            proposed,
            Source.INFRASTRUCTURE,
            message=message,
            details={k: v for k, v in details.items() if v is not None},
            ecs_version=task.version,
            task_arn=task.taskArn,
            updates=updates,
        )
        if result.applied and relaunch and result.run is not None and self.relaunch is not None:
            self.relaunch(result.run)
        return RecordOutcome(
            run_id=run_id,
            applied=result.applied,
            state=result.run.state if result.run else None,
            reason=result.reason,
        )


def _crash_applies(run: FlowRun) -> bool:
    """Whether a Crashed verdict would change the run (worth reading its log for)."""
    return run.state.is_active and run.state is not RunState.CANCELLING
