"""Branches (public path): ``from flowrelay.tasks.control_flow import case, merge, ifelse,
switch, FilterTask``, as the seeds' engine's ``prefect.tasks.control_flow``. Defined in
``flowrelay.sdk.control_flow``."""

# The submodules named as the seeds' engine's are loaded first, so that the names below are
# bound last: importing a submodule later would otherwise rebind ``case`` to the module.
from flowrelay.sdk.control_flow import CompareValue, Merge, ifelse, merge, switch
from flowrelay.tasks.control_flow.case import case
from flowrelay.tasks.control_flow.filter import FilterTask

__all__ = ["CompareValue", "FilterTask", "Merge", "case", "ifelse", "merge", "switch"]
