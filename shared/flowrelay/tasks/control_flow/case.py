"""``flowrelay.tasks.control_flow.case.case`` (public path), as in the seeds' engine."""

from flowrelay.sdk.control_flow import case

__all__ = ["case"]
