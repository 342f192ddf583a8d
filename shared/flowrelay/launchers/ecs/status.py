"""What a task ECS describes (or reports in an event) means, as an ``InfraStatus``.

A stopped task is described in one line with its stop code, ECS's reason and each container's
exit code; a missing exit code is never read as success. A task that failed to start for a
reason AWS documents as transient (its network interface or ephemeral storage was not ready in
time, its image pull timed out, no capacity) is marked ``transient``: the control plane may
launch the run again as its next attempt.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from flowrelay.core.modeling import Model
from flowrelay.launchers.base import InfraStatus, Phase
from flowrelay.launchers.ecs.names import CONTAINER_NAME, run_id_of_group

#: The detail-type of ECS's task events (their ``detail`` is an ``EcsTaskStateChange``).
DETAIL_TYPE = "ECS Task State Change"

NOUN = "ECS task"
_STARTING = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
#: Fargate start failures AWS documents as transient (retrying usually succeeds), and capacity.
TRANSIENT_START_FAILURE = re.compile(
    r"network interface provision|waiting for network interface|eni.*(timeout|timed out)"
    r"|ephemeral storage.*(timeout|timed out)|(timeout|timed out).*ephemeral storage"
    r"|i/o timeout|TLS handshake timeout|capacity is unavailable|RESOURCE:",
    re.IGNORECASE,
)


class EcsContainer(Model):
    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    lastStatus: str | None = None
    exitCode: int | None = None
    reason: str | None = None


class EcsTaskStateChange(Model):
    """The ``detail`` of an ``aws.ecs`` "ECS Task State Change" event (the fields we use); also
    what DescribeTasks says of a task, which has the same shape. AWS adds fields over time, so
    unknown ones are ignored."""

    model_config = ConfigDict(extra="ignore")
    DETAIL_TYPE: ClassVar[str] = DETAIL_TYPE

    taskArn: str
    clusterArn: str | None = None
    lastStatus: str
    desiredStatus: str | None = None
    group: str | None = None
    startedBy: str | None = None
    stopCode: str | None = None
    stoppedReason: str | None = None
    containers: list[EcsContainer] = Field(default_factory=list)
    version: int = Field(ge=0, description="Increases with every change of this task.")
    taskDefinitionArn: str | None = None

    @property
    def flow_run_id(self) -> str | None:
        """The run this task belongs to, when flowrelay started it."""
        return run_id_of_group(self.group)


def stop_message(task: EcsTaskStateChange) -> str:
    """What a stopped ECS task says about why, in one line.

    >>> stop_message(EcsTaskStateChange(taskArn="t", lastStatus="STOPPED", version=3,
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


def task_status(task: EcsTaskStateChange, sequence: int | None = None) -> InfraStatus:
    """The status of ``task``; ``sequence`` orders the events of one task (their version).

    >>> task_status(EcsTaskStateChange(taskArn="t", lastStatus="RUNNING", version=1)).phase
    'running'
    """
    details: dict[str, Any] = {"task_arn": task.taskArn, "ecs_status": task.lastStatus}
    phase = _phase(task.lastStatus)
    if phase != "stopped":
        return InfraStatus(
            phase=phase,
            ref=task.taskArn,
            noun=NOUN,
            state=task.lastStatus,
            message=f"{NOUN} {task.lastStatus.lower()}",
            sequence=sequence,
            details=details,
        )
    never_ran = all(container.exitCode is None for container in task.containers)
    details["stop_code"] = task.stopCode
    details["exit_codes"] = {c.name or "?": c.exitCode for c in task.containers}
    return InfraStatus(
        phase="stopped",
        ref=task.taskArn,
        noun=NOUN,
        state=task.lastStatus,
        message=stop_message(task),
        reason=task.stoppedReason,
        exit_code=_flow_exit_code(task),
        transient=(
            task.stopCode == "TaskFailedToStart"
            and never_ran
            and bool(TRANSIENT_START_FAILURE.search(task.stoppedReason or ""))
        ),
        sequence=sequence,
        details={key: value for key, value in details.items() if value is not None},
    )


def gone_status(task_arn: str) -> InfraStatus:
    """The status of a task ECS no longer knows."""
    return InfraStatus(
        phase="gone",
        ref=task_arn,
        noun=NOUN,
        state="UNKNOWN",
        message=(f"ECS no longer knows its task {task_arn} (it stopped long ago or never started)"),
        details={"task_arn": task_arn},
    )


def _phase(last_status: str) -> Phase:
    if last_status == "STOPPED":
        return "stopped"
    if last_status in _STARTING:
        return "starting"
    if last_status == "RUNNING":
        return "running"
    return "stopping"  # DEACTIVATING, STOPPING, DEPROVISIONING


def _flow_exit_code(task: EcsTaskStateChange) -> int | None:
    for container in task.containers:
        if container.name == CONTAINER_NAME:
            return container.exitCode
    return task.containers[0].exitCode if len(task.containers) == 1 else None
