"""LocalExecutor: every task in the calling thread, immediately. The default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flowrelay.sdk.executors.base import Executor

T = TypeVar("T")


class LocalExecutor(Executor):
    """Runs each task synchronously in the main thread, as soon as it is submitted.

    The cheapest executor (a few microseconds per task) and the easiest to debug.
    """

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        extra_context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        return fn(*args, **kwargs)

    def wait(self, futures: T) -> T:
        return futures
