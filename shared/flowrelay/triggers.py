"""Triggers (public path): ``from flowrelay.triggers import all_failed``, as the seeds' engine's
``prefect.triggers``. Defined in ``flowrelay.sdk.triggers``."""

from flowrelay.sdk.triggers import (
    all_failed,
    all_finished,
    all_successful,
    always_run,
    any_failed,
    any_successful,
    manual_only,
    not_all_skipped,
    some_failed,
    some_successful,
)

__all__ = [
    "all_failed",
    "all_finished",
    "all_successful",
    "always_run",
    "any_failed",
    "any_successful",
    "manual_only",
    "not_all_skipped",
    "some_failed",
    "some_successful",
]
