"""flowrelay: run Python workflow runs on AWS with no always-on agent.

The flow-authoring API::

    from flowrelay import Flow, Parameter, task, unmapped

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
}

if TYPE_CHECKING:
    from flowrelay.sdk.flow import Flow
    from flowrelay.sdk.tasks import Edge, Parameter, Task, task, unmapped

__all__ = ["Edge", "Flow", "Parameter", "Task", "task", "unmapped"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'flowrelay' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
