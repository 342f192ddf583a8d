"""The one DynamoDB table the control plane keeps everything in, and what its stores share.

Keys follow the access patterns (the table is defined in template.yaml):

- run: ``pk = RUN#<id>``, ``sk = RUN``; index ``by-flow``: ``FLOW#<name>`` / ``<created>#<id>``
  (a flow's runs, newest first); sparse index ``active``, present only while the run is not
  final: ``ACTIVE#<state>`` / ``<entered state at>#<id>`` (what the monitor reads).
- history: ``pk = RUN#<id>``, ``sk = HIST#<version>``: one per applied transition, and
  ``sk = NOTE#<event id>``: one per note (what happened without a change of state, such
  as its Dask cluster starting); both removed by TTL
  (``expires_at``) after ``HISTORY_RETENTION``.
- flow: ``pk = FLOW#<name>``, ``sk = LATEST`` (the latest version) and ``VERSION#<n>``.
- target: ``pk = TARGET``, ``sk = <name>``.
- a Dask cluster to sweep once its run ends: ``pk = CLUSTERS``, ``sk = <run id>#<cluster name>``.
- a concurrency limit, its slots' holders and its waiting runs: ``pk = LIMIT``, ``sk = <name>``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

#: How often a write that lost a race with another writer is decided again before giving up.
MAX_RACES = 5


class Table:
    """The table's client, name and clock, shared by the stores of one ``Store``."""

    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    def query(self, limit: int | None = None, **query: Any) -> list[dict[str, Any]]:
        """Every item a query finds (all pages), or the first ``limit``."""
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, **query):
            items.extend(page.get("Items", []))
            if limit is not None and len(items) >= limit:
                return items[:limit]
        return items


def condition_failed(exc: Any) -> bool:
    """Whether a cancelled transaction failed on a condition (lost a race, or already exists)."""
    reasons = exc.response.get("CancellationReasons", [])
    return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)


#: How often a write that collided with a concurrent transaction on the same item is tried again.
CONFLICT_TRIES = 5


def conflicted(exc: Exception) -> bool:
    """Whether DynamoDB refused a write because a concurrent transaction touched the same item
    (a cancelled transaction with a ``TransactionConflict`` reason, or a plain write's
    ``TransactionConflictException``): nothing was written, and trying again shortly may
    succeed. moto never answers this (docs/devstack.md); DynamoDB does, on a busy item."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    if response.get("Error", {}).get("Code") == "TransactionConflictException":
        return True
    reasons = response.get("CancellationReasons", [])
    return any(reason.get("Code") == "TransactionConflict" for reason in reasons)


def retrying_conflicts(write: Callable[[], T], tries: int = CONFLICT_TRIES) -> T:
    """``write()``, tried again after a short jittered pause while it collides with a
    concurrent transaction (``conflicted``); the last collision is raised.

    >>> retrying_conflicts(lambda: "written")
    'written'
    """
    for attempt in range(tries):
        try:
            return write()
        except Exception as exc:
            if not conflicted(exc) or attempt == tries - 1:
                raise
            time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover
