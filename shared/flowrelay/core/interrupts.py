"""Turn SIGTERM into an exception, so ``finally`` blocks and context managers run.

ECS StopTask and Kubernetes pod deletion send SIGTERM; without this, Python dies at once and a
temporary Dask cluster or a state report would be skipped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from flowrelay.core.contract import EXIT_TERMINATED


class Terminated(BaseException):
    """The process received SIGTERM. A BaseException, like KeyboardInterrupt: tasks that catch
    ``Exception`` do not swallow it."""

    exit_code = EXIT_TERMINATED


@contextmanager
def raise_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"received signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
