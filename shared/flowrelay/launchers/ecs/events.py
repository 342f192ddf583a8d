"""ECS's "ECS Task State Change" events, read into the run they are about and an ``InfraStatus``.

EventBridge puts one on the default bus every time a task changes; template.yaml's state rule
forwards those of flowrelay's tasks (group prefix ``flowrelay:``) to the StateQueue, where
record_state reads them with ``read_task_event``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrelay.launchers.base import InfraEvent
from flowrelay.launchers.ecs.status import DETAIL_TYPE, EcsTaskStateChange, task_status

SOURCE = "aws.ecs"
__all__ = ["DETAIL_TYPE", "SOURCE", "EcsTaskStateChange", "read_task_event"]


def read_task_event(detail: Mapping[str, Any]) -> InfraEvent:
    """An "ECS Task State Change" detail as the run it is about and the task's status;
    ``pydantic.ValidationError`` when it is not one.

    >>> event = read_task_event({"taskArn": "arn:t/1", "lastStatus": "PENDING", "version": 2,
    ...                          "group": "flowrelay:r-1"})
    >>> event.run_id, event.status.phase, event.status.message, event.status.sequence
    ('r-1', 'starting', 'ECS task pending', 2)
    """
    task = EcsTaskStateChange.model_validate(detail)
    return InfraEvent(run_id=task.flow_run_id, status=task_status(task, sequence=task.version))
