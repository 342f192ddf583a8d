"""Executors (public path): ``from flowrelay.executors import LocalDaskExecutor``.

Defined in ``flowrelay.sdk.executors``; see there and docs/flows.md.
"""

from flowrelay.sdk.executors import DaskExecutor, Executor, LocalDaskExecutor, LocalExecutor

__all__ = ["DaskExecutor", "Executor", "LocalDaskExecutor", "LocalExecutor"]
