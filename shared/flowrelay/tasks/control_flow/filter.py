"""``flowrelay.tasks.control_flow.filter.FilterTask`` (public path), as in the seeds' engine."""

from flowrelay.sdk.control_flow import FilterTask

__all__ = ["FilterTask"]
