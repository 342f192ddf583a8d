"""flowrelay: run Python workflow runs on AWS with no always-on agent.

The flow-authoring API (the seeds' engine's top-level names)::

    from flowrelay import Flow, Parameter, task, unmapped, context, case, apply_map

``context``, ``triggers`` and ``schedules`` are modules, as in the seeds' engine.

Names are loaded on first use, so importing a submodule (as the Lambda handlers do) does not pay
for the flow SDK.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Flow": "flowrelay.sdk.flow",
    "Task": "flowrelay.sdk.tasks",
    "Parameter": "flowrelay.sdk.tasks",
    "task": "flowrelay.sdk.tasks",
    "unmapped": "flowrelay.sdk.tasks",
    "Edge": "flowrelay.sdk.tasks",
    "mapped": "flowrelay.sdk.tasks",
    "flatten": "flowrelay.sdk.tasks",
    "tags": "flowrelay.sdk.tasks",
    "apply_map": "flowrelay.sdk.apply_map",
    "case": "flowrelay.sdk.control_flow",
}
#: Names that are modules of their own (``flowrelay.context`` is the context object).
_MODULES = {"context", "triggers", "schedules", "engine", "tasks", "utilities", "client"}

if TYPE_CHECKING:
    # Type checkers see the context object that the module flowrelay.context stands for.
    from flowrelay.sdk.apply_map import apply_map
    from flowrelay.sdk.control_flow import case
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.runcontext import context
    from flowrelay.sdk.tasks import Edge, Parameter, Task, flatten, mapped, tags, task, unmapped

__all__ = [
    "Edge",
    "Flow",
    "Parameter",
    "Task",
    "apply_map",
    "case",
    "context",
    "flatten",
    "mapped",
    "tags",
    "task",
    "unmapped",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"flowrelay.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flowrelay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
