"""The one DynamoDB table the control plane keeps everything in, and what its stores share.

Keys follow the access patterns (the table is defined in template.yaml):

- run: ``pk = RUN#<id>``, ``sk = RUN``; index ``by-flow``: ``FLOW#<name>`` / ``<created>#<id>``
  (a flow's runs, newest first); index ``recent``: ``RECENT#<UTC day>`` / ``<created>#<id>``
  (every flow's runs, newest first); sparse index ``active``, present only while the run is not
  final: ``ACTIVE#<state>#<shard>`` / ``<entered state at>#<id>`` (what the monitor reads).
  The indexes keep keys only: their readers get the runs they name with ``BatchGetItem``, so a
  change of a run writes an index only when its key changes (docs/decisions.md).
- history: ``pk = RUN#<id>``, ``sk = HIST#<version>``: one per applied transition, and
  ``sk = NOTE#<event id>``: one per note (what happened without a change of state, such
  as its Dask cluster starting); both removed by TTL
  (``expires_at``) after ``HISTORY_RETENTION``.
- flow: ``pk = FLOW#<name>``, ``sk = LATEST`` (the latest version) and ``VERSION#<n>``.
- the flows' catalog: ``pk = FLOWS``, ``sk = <name>`` (its latest version and when that was
  registered; every flow in one Query).
- target: ``pk = TARGET``, ``sk = <name>``.
- a Dask cluster to sweep once its run ends: ``pk = CLUSTERS``, ``sk = <run id>#<cluster name>``.
- a concurrency limit, its slots' holders and its waiting runs: ``pk = LIMIT``, ``sk = <name>``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

#: How often a write that lost a race with another writer is decided again before giving up.
MAX_RACES = 5

#: Keys per ``BatchGetItem`` (DynamoDB's maximum), and how often unprocessed keys (throttled
#: reads) are asked for again.
BATCH_GET_KEYS = 100
BATCH_GET_TRIES = 8


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

    def get_many(self, keys: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """The items with these keys, by their ``pk`` (read consistently, 100 to a
        ``BatchGetItem``, keys DynamoDB left unprocessed asked for again); a key with no item
        is absent. What the indexes, which keep keys only, are read through."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), BATCH_GET_KEYS):
            pending: Any = {
                self.table_name: {
                    "Keys": list(keys[start : start + BATCH_GET_KEYS]),
                    "ConsistentRead": True,
                }
            }
            for attempt in range(BATCH_GET_TRIES):
                response = self.client.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[item["pk"]["S"]] = item
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
                time.sleep(random.uniform(0.01, 0.05) * 2**attempt)
            else:
                raise RuntimeError(
                    f"{self.table_name}: keys left unprocessed after {BATCH_GET_TRIES} tries"
                )
        return found


def condition_failed(exc: Any) -> bool:
    """Whether a cancelled transaction failed on a condition (lost a race, or already exists)."""
    reasons = exc.response.get("CancellationReasons", [])
    return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)


#: How often a write that collided with a concurrent transaction on the same item is tried again.
CONFLICT_TRIES = 5


#: Why DynamoDB cancels a transaction that may go through when tried again: another
#: transaction on one of its items, or throttling (which botocore does not retry for a
#: cancelled transaction, as it answers ``TransactionCanceledException``).
_TRANSIENT_CANCELLATIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


def conflicted(exc: Exception) -> bool:
    """Whether DynamoDB refused a write for a moment: a concurrent transaction touched the same
    item (a cancelled transaction with a ``TransactionConflict`` reason, or a plain write's
    ``TransactionConflictException``), or a transaction was cancelled for throttling. Nothing
    was written, and trying again shortly may succeed. moto never answers this
    (docs/devstack.md); DynamoDB does, on a busy item or a throttled partition."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    if response.get("Error", {}).get("Code") == "TransactionConflictException":
        return True
    reasons = response.get("CancellationReasons", [])
    return any(reason.get("Code") in _TRANSIENT_CANCELLATIONS for reason in reasons)


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
