"""``flowrelay.context``: what a task can read about the run it is part of (the seeds' engine's
``prefect.context``).

>>> from flowrelay import context, task
>>> @task
... def hello():
...     logger = context.get("logger")          # the task's logger: its lines reach the run's log
...     logger.info("run %s, task %s", context.flow_run_id, context.task_name)

During a flow run: ``flow_name``, ``flow_run_id``, ``parameters``, ``scheduled_start_time``,
``date`` (when the run started, UTC), ``today``/``yesterday``/``tomorrow`` (``YYYY-MM-DD``, and
``*_nodash``), ``checkpointing``; in a task also ``task_name``, ``task_slug``,
``task_full_name``, ``task_run_id``, ``task_tags``, ``map_index`` (None unless mapped),
``task_run_count`` (1, then 2 on the first retry ...), ``task_loop_count`` and
``task_loop_result`` (while looping), and ``logger``. ``with context(key=value):`` adds values for
a block. Values are per thread of execution (a ``contextvars`` variable), so tasks running at once
on threads or Dask workers each see their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

_DEFAULT_LOGGER = logging.getLogger("flowrelay")
# Never changed in place (every change sets a new mapping), so one shared default is safe.
_EMPTY: Mapping[str, Any] = MappingProxyType({"logger": _DEFAULT_LOGGER})
_values: ContextVar[Mapping[str, Any]] = ContextVar("flowrelay_run_context", default=_EMPTY)


class Context:
    """A read-mostly mapping over the current run's values; read keys as attributes or items."""

    def get(self, key: str, default: Any = None) -> Any:
        return _values.get().get(key, default)

    def __getitem__(self, key: str) -> Any:
        return _values.get()[key]

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return _values.get()[key]
        except KeyError:
            raise AttributeError(f"context has no {key!r} (not in a run, or not set)") from None

    def __setitem__(self, key: str, value: Any) -> None:
        _writable()[key] = value

    def __contains__(self, key: object) -> bool:
        return key in _values.get()

    def __iter__(self) -> Iterator[str]:
        return iter(dict(_values.get()))

    def __len__(self) -> int:
        return len(_values.get())

    def keys(self) -> list[str]:
        return list(_values.get())

    def items(self) -> list[tuple[str, Any]]:
        return list(_values.get().items())

    def update(self, values: Mapping[str, Any] | None = None, **more: Any) -> None:
        """Add values for the rest of this task run (or block); prefer ``with context(...)``."""
        _writable().update(values or {}, **more)

    def setdefault(self, key: str, value: Any) -> Any:
        return _writable().setdefault(key, value)

    def to_dict(self) -> dict[str, Any]:
        return dict(_values.get())

    @contextmanager
    def __call__(self, values: Mapping[str, Any] | None = None, **more: Any) -> Iterator[Context]:
        """``with context(key=value):`` the values hold inside the block only."""
        token = _values.set({**_values.get(), **(values or {}), **more})  # a dict of its own
        try:
            yield self
        finally:
            _values.reset(token)

    def __repr__(self) -> str:
        return f"<Context: {sorted(_values.get())}>"


def _writable() -> dict[str, Any]:
    """The values in force, to change in place (the seeds' engine's context is one dict per
    thread: a value a task sets stays for the rest of its run, loops and retries included).
    Outside any run or block, a new dict for this thread of execution."""
    current = _values.get()
    if isinstance(current, dict):
        return current
    fresh = dict(current)
    _values.set(fresh)
    return fresh


#: The one context object (``from flowrelay import context``).
context = Context()


def enter(values: dict[str, Any]) -> Token[Mapping[str, Any]]:
    """Make ``values`` the whole context (the engine, once per task run); returns the token that
    restores the previous one. ``values`` is used as is, not copied, and writes to the context
    change it: build a new dict per run."""
    return _values.set(values)


def leave(token: Token[Mapping[str, Any]]) -> None:
    _values.reset(token)


def current() -> Mapping[str, Any]:
    """The values in force now (not a copy: do not change it)."""
    return _values.get()
