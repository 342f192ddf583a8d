"""``flowrelay.context`` (public path): this module *is* the run's context, as the seeds' engine's
``prefect.context`` is one object: ``from flowrelay import context``, ``import flowrelay.context``,
``context.get("logger")``, ``context.flow_run_id``, ``"today" in context``,
``with context(key=value):`` all work. Defined in ``flowrelay.sdk.runcontext``."""

import importlib
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from flowrelay.sdk.runcontext import Context
from flowrelay.sdk.runcontext import context as _context


def get(key: str, default: Any = None) -> Any:
    """The context's value of ``key`` (``default`` when it has none)."""
    return _context.get(key, default)


def update(values: Mapping[str, Any] | None = None, **more: Any) -> None:
    """Add values for the rest of this thread of execution (prefer ``with context(...)``)."""
    _context.update(values, **more)


def to_dict() -> dict[str, Any]:
    """The context's values now, as a new dict."""
    return _context.to_dict()


def __getattr__(name: str) -> Any:
    return getattr(_context, name)


class _ContextModule(ModuleType, Context):
    """The module, answering as the context does (items, ``in``, calling it for a block)."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # A task that reads the context is pickled for process and Dask executors: the module
        # travels by name, as plain modules do, and is the context where it lands.
        return importlib.import_module, (__name__,)


sys.modules[__name__].__class__ = _ContextModule
