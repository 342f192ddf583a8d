"""States (public path): ``from flowrelay.engine.state import Success, Failed, Skipped``, as the
seeds' engine's ``prefect.engine.state``. Defined in ``flowrelay.sdk.states``."""

from flowrelay.sdk.states import (
    Cached,
    Failed,
    Finished,
    Looped,
    Mapped,
    Pending,
    Retrying,
    Running,
    Scheduled,
    Skipped,
    State,
    Success,
    TimedOut,
    TriggerFailed,
    ValidationFailed,
)

__all__ = [
    "Cached",
    "Failed",
    "Finished",
    "Looped",
    "Mapped",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "Skipped",
    "State",
    "Success",
    "TimedOut",
    "TriggerFailed",
    "ValidationFailed",
]
