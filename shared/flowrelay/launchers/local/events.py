"""The event a local run's process leaves when it exits, "Local Process State Change", read into
the run it is about and an ``InfraStatus`` (as ECS's task events are).

The local launcher puts it on flowrelay's bus; template.yaml's state rule forwards it to the
StateQueue, where record_state reads it with ``read_process_event``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from flowrelay.core.modeling import Model
from flowrelay.core.runs import RUN_ID_PATTERN
from flowrelay.launchers.base import InfraEvent, InfraStatus

SOURCE = "flowrelay"
DETAIL_TYPE = "Local Process State Change"


class LocalProcessStateChange(Model):
    """A local run's process has exited."""

    DETAIL_TYPE: ClassVar[str] = DETAIL_TYPE
    model_config = ConfigDict(extra="ignore")

    flow_run_id: str = Field(pattern=RUN_ID_PATTERN)
    ref: str = Field(min_length=1)
    pid: int
    exit_code: int
    stopped_at: datetime | None = None


def exit_message(pid: int, code: int) -> str:
    """How a local process's end is told: ``local process 42 exited with code 1``; a negative
    code (the process was ended by a signal) names the signal and its shell-style code.

    >>> exit_message(42, -9)
    'local process 42 was killed by SIGKILL (exit code 137)'
    """
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"local process {pid} was killed by {name} (exit code {128 - code})"
    return f"local process {pid} exited with code {code}"


NOUN = "local process"


def process_status(ref: str, pid: int, exit_code: int | None, running: bool = False) -> InfraStatus:
    """A local process's status: running; ended with ``exit_code`` (negative: the signal that
    ended it); or gone, how it ended unknown (``exit_code`` None and not ``running``)."""
    if running:
        return InfraStatus(
            phase="running", ref=ref, noun=NOUN, state="RUNNING", message=f"{NOUN} {pid} is running"
        )
    if exit_code is None:
        return InfraStatus(
            phase="gone",
            ref=ref,
            noun=NOUN,
            state="GONE",
            message=f"{NOUN} {pid} is gone (its exit code is unknown here)",
        )
    shown = exit_code if exit_code >= 0 else 128 - exit_code  # as a shell says a signal's end
    return InfraStatus(
        phase="stopped",
        ref=ref,
        noun=NOUN,
        state="EXITED",
        message=exit_message(pid, exit_code),
        exit_code=shown,
        details={"exit_code": shown},
    )


def read_process_event(detail: Mapping[str, Any]) -> InfraEvent:
    """A "Local Process State Change" detail as the run it is about and the process's status;
    ``pydantic.ValidationError`` when it is not one.

    >>> event = read_process_event({"flow_run_id": "r-1", "ref": "local:42:1.0", "pid": 42,
    ...                             "exit_code": 1})
    >>> event.run_id, event.status.phase, event.status.message
    ('r-1', 'stopped', 'local process 42 exited with code 1')
    """
    change = LocalProcessStateChange.model_validate(detail)
    return InfraEvent(
        run_id=change.flow_run_id,
        status=process_status(change.ref, change.pid, change.exit_code),
    )
