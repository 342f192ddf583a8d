"""The executor interface the flow engine drives."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class Executor:
    """Runs the engine's task calls. ``start`` brackets a flow run; ``submit`` schedules one call
    and returns a future (or the value itself); ``wait`` turns a structure of futures into values.

    ``extra_context`` carries what a scheduler may use: ``task_name`` (unique in the run) and
    ``resources`` (Dask worker resources parsed from ``dask-resource:KEY=NUM`` tags).
    """

    @contextmanager
    def start(self) -> Iterator[None]:
        yield

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        raise NotImplementedError

    def wait(self, futures: T) -> T:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"
