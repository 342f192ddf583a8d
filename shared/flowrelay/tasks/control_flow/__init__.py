"""Branches (public path): ``from flowrelay.tasks.control_flow import case, merge, ifelse,
switch, FilterTask``, as the seeds' engine's ``prefect.tasks.control_flow``. Defined in
``flowrelay.sdk.control_flow``."""

from flowrelay.sdk.control_flow import CompareValue, FilterTask, Merge, case, ifelse, merge, switch

__all__ = ["CompareValue", "FilterTask", "Merge", "case", "ifelse", "merge", "switch"]
