"""Recording state: runner, dispatcher and monitor reports, and ECS task state changes, applied to
runs through the transition table.

ECS is read conservatively: a task that stops before its run reached a final state makes the run
Crashed with the stop code, the reason and each container's exit code. A missing exit code is
never read as success. If the runner's own final report was merely delayed, it replaces the
Crashed verdict when it arrives (see ``flowrelay.run_states``).
"""

from __future__ import annotations

import logging
from typing import Any

from flowrelay.events import (
    EcsTaskStateChange,
    EventError,
    FlowRunStateChanged,
    ParsedEvent,
    TaskRunStateChanged,
)
from flowrelay.modeling import Model
from flowrelay.run_states import RunState, Source
from flowrelay.store import RunStore

log = logging.getLogger("flowrelay.record")

_ECS_WAITING = {"PROVISIONING", "PENDING", "ACTIVATING"}


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


class StateRecorder:
    """Applies state events to runs."""

    def __init__(self, store: RunStore) -> None:
        self.store = store

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
        details: dict[str, Any] = {
            "task_arn": task.taskArn,
            "ecs_status": task.lastStatus,
            "stop_code": task.stopCode,
        }
        if task.lastStatus == "STOPPED":
            proposed, message = RunState.CRASHED, ecs_stop_message(task)
            details["exit_codes"] = {c.name or "?": c.exitCode for c in task.containers}
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
        )
        return RecordOutcome(
            run_id=run_id,
            applied=result.applied,
            state=result.run.state if result.run else None,
            reason=result.reason,
        )
