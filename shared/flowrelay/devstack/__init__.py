"""The embedded dev stack (docs/devstack.md): template.yaml in moto server on loopback,
the functions in-process, ECS tasks as local processes. Needs the ``devstack`` extra.

``DevStack`` is imported on first use: the stack's moto server (``moto_process``) runs this
package's modules in a process of its own, which needs none of the stack's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowrelay.devstack.stack import DevStack

__all__ = ["DevStack"]


def __getattr__(name: str) -> Any:
    if name == "DevStack":
        from flowrelay.devstack.stack import DevStack

        return DevStack
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
