"""The control plane's table: runs (with their history), flow registrations, targets, the
Dask clusters still to be swept, and concurrency limits with their slots.

One ``Store`` gives each a store of its own over the same table, client and clock::

    >>> store = Store(boto3.client("dynamodb"), "flowrelay-table")    # doctest: +SKIP
    >>> run, created = store.runs.create(run_id_for("nightly"), "etl")  # doctest: +SKIP
    >>> store.flows.get("etl"), store.targets.list()                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flowrelay.control.store.clusters import ClusterStore, PendingSweep
from flowrelay.control.store.flows import FlowStore
from flowrelay.control.store.limits import LimitState, LimitStore, Refused
from flowrelay.control.store.runs import (
    HISTORY_RETENTION,
    LaunchClaim,
    RunNotFoundError,
    RunPage,
    RunStore,
    TransitionResult,
)
from flowrelay.control.store.table import Table
from flowrelay.control.store.targets import TargetStore


class Store:
    """Runs, flows, targets and clusters to sweep in one table; ``clock`` may be replaced
    (tests) and all follow."""

    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.table = Table(client, table_name, clock)
        self.runs = RunStore(self.table)
        self.flows = FlowStore(self.table)
        self.targets = TargetStore(self.table)
        self.clusters = ClusterStore(self.table)
        self.limits = LimitStore(self.table)

    @property
    def client(self) -> Any:
        return self.table.client

    @property
    def table_name(self) -> str:
        return self.table.table_name

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.table.clock

    @clock.setter
    def clock(self, clock: Callable[[], datetime]) -> None:
        self.table.clock = clock


__all__ = [
    "HISTORY_RETENTION",
    "ClusterStore",
    "FlowStore",
    "LaunchClaim",
    "LimitState",
    "LimitStore",
    "PendingSweep",
    "Refused",
    "RunNotFoundError",
    "RunPage",
    "RunStore",
    "Store",
    "Table",
    "TargetStore",
    "TransitionResult",
]
