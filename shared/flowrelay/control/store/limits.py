"""Concurrency limits in the table, and their slots.

One item per limit: ``pk = LIMIT``, ``sk = <name>``, with the limit (``limit``, JSON), its
``max_runs`` (a number, which conditions compare against), the runs holding a slot
(``holders``: run id -> when it took it; a map, never absent, so that its size can always be
compared) and the runs waiting for one (``waiting``: run id -> when it was requested, so the
oldest is woken first).

Taking a slot is one conditional update per limit: add the run to ``holders`` if it is there
already (a repeat) or there is room (fewer holders than ``max_runs``) and no run waits for one
(a slot freed while runs wait is handed to the oldest, ``give``, marked ``HANDED`` until that
run's dispatch takes it). ``slot_updates`` gives
those updates as transaction items, so that a caller can take every slot a run needs in the same
transaction as the decision they guard (all or none). Giving a slot back removes the run from
``holders``: a repeat, or a run that holds none, changes nothing.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flowrelay.control.store.table import Table, condition_failed, retrying_conflicts
from flowrelay.core.concurrency import ConcurrencyLimit
from flowrelay.core.lifecycle import WAITING_STATES

PK = "LIMIT"
#: How a slot handed to a waiting run is marked in ``holders`` until the run takes it (its
#: dispatch claims it): a hand-over whose wake was lost can be told, and woken again.
HANDED = "handed "


@dataclass(frozen=True)
class LimitState:
    """A limit as stored: who holds its slots and who waits (oldest first)."""

    limit: ConcurrencyLimit
    holders: frozenset[str]
    waiting: tuple[tuple[str, str], ...]  # (run id, requested at), oldest first
    handed: frozenset[str] = frozenset()  # holders handed their slot, not launched with it yet

    @property
    def free(self) -> int:
        """Slots free now (0 when full or over, after ``max_runs`` was lowered)."""
        return max(0, self.limit.max_runs - len(self.holders))


@dataclass(frozen=True)
class Refused:
    """A run could not take a slot of ``limit``: it is full (or paused, or was removed)."""

    limit: str
    holders: frozenset[str]
    max_runs: int | None  # None: the limit no longer exists
    waiting: int = 0  # runs waiting for a slot of it

    def message(self, limit: ConcurrencyLimit | None = None) -> str:
        """One line naming the limit and its holders, e.g. "waiting for a slot: label
        'warehouse' 3/3: runs a, b, c"."""
        what = f"{limit.kind} {limit.value!r}" if limit is not None else repr(self.limit)
        if self.max_runs is None:
            return f"limit {self.limit!r} was removed while the run took its slot"
        if self.max_runs == 0:
            return f"waiting for a slot: {what} is paused (max 0)"
        holders = ", ".join(sorted(self.holders)) or "none"
        line = f"waiting for a slot: {what} {len(self.holders)}/{self.max_runs}: runs {holders}"
        if len(self.holders) < self.max_runs and self.waiting:
            # A slot is free, and is being handed to a run that waits longer.
            line += f"; {self.waiting} waiting before it"
        return line


class LimitStore:
    """Concurrency limits, by name, and their slots."""

    def __init__(self, table: Table) -> None:
        self.table = table

    # --- the limits ---------------------------------------------------------------------

    def put(self, limit: ConcurrencyLimit) -> None:
        """Create a limit or change it; who holds and who waits is kept (a lower ``max_runs``
        takes effect at the next decision: no holder loses its slot)."""
        self.table.client.update_item(
            TableName=self.table.table_name,
            Key=self._key(limit.name),
            UpdateExpression=(
                "SET #limit = :limit, max_runs = :max, holders = if_not_exists(holders, :none), "
                "waiting = if_not_exists(waiting, :none)"
            ),
            ExpressionAttributeNames={"#limit": "limit"},
            ExpressionAttributeValues={
                ":limit": {"S": limit.model_dump_json()},
                ":max": {"N": str(limit.max_runs)},
                ":none": {"M": {}},
            },
        )

    def get(self, name: str) -> LimitState | None:
        item = self.table.client.get_item(
            TableName=self.table.table_name, Key=self._key(name), ConsistentRead=True
        ).get("Item")
        return _state(item) if item else None

    def list(self, slots: bool = True) -> list[LimitState]:
        """Every limit, by name; without ``slots``, the limits alone (their holders and
        waiting lists are not read, and show empty): what dispatch needs to know which apply."""
        projection: dict[str, Any] = (
            {}
            if slots
            else {
                "ProjectionExpression": "sk, #limit, max_runs",
                "ExpressionAttributeNames": {"#limit": "limit"},
            }
        )
        items = self.table.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": PK}},
            ConsistentRead=True,
            **projection,
        )
        return [_state(item) for item in items]

    def remove(self, name: str) -> LimitState | None:
        """Remove a limit (its slots with it); what it was, or None when there was none."""
        response = self.table.client.delete_item(
            TableName=self.table.table_name, Key=self._key(name), ReturnValues="ALL_OLD"
        )
        old = response.get("Attributes")
        return _state(old) if old else None

    # --- slots --------------------------------------------------------------------------

    def slot_updates(self, run_id: str, names: Sequence[str]) -> builtins.list[dict[str, Any]]:
        """One transaction item per limit: ``run_id`` takes a slot of each (and stops waiting
        for it), if it holds one already or one is free. In a ``TransactWriteItems`` with the
        decision they guard; ``refused_by`` reads a cancelled one."""
        at = self.table.clock().isoformat()
        return [{"Update": self._take(run_id, name, at)} for name in names]

    def take(self, run_id: str, names: Sequence[str]) -> Refused | None:
        """Take a slot of every limit in ``names`` for ``run_id``, all or none; None when
        taken, else the first limit that refused (with its holders)."""
        if not names:
            return None
        items = self.slot_updates(run_id, names)
        try:
            retrying_conflicts(lambda: self.table.client.transact_write_items(TransactItems=items))
        except self.table.client.exceptions.TransactionCanceledException as exc:
            refused = self.refused_by(exc, names, offset=0)
            if refused is None:
                raise
            return refused
        return None

    def refused_by(self, exc: Any, names: Sequence[str], offset: int) -> Refused | None:
        """The limit whose slot a cancelled transaction could not take (its items from
        ``slot_updates`` at ``offset``), read again for its holders; None when no slot item
        failed its condition."""
        reasons = exc.response.get("CancellationReasons", [])
        for index, name in enumerate(names):
            position = offset + index
            if (
                position < len(reasons)
                and reasons[position].get("Code") == "ConditionalCheckFailed"
            ):
                now = self.get(name)
                if now is None:
                    return Refused(limit=name, holders=frozenset(), max_runs=None)
                return Refused(
                    limit=name,
                    holders=now.holders,
                    max_runs=now.limit.max_runs,
                    waiting=len(now.waiting),
                )
        return None

    def release(self, run_id: str, name: str) -> LimitState | None:
        """Give back ``run_id``'s slot of limit ``name`` (and stop it waiting for one); the
        limit as it is then, or None when it no longer exists. A repeat, or a run that held
        none, changes nothing."""
        return self._update_run_of(name, run_id, "REMOVE holders.#run, waiting.#run")

    def drop_waiter(self, name: str, run_id: str) -> LimitState | None:
        """``run_id`` no longer waits for a slot of ``name`` (it ended, or was launched); the
        limit as it is then, or None when it no longer exists."""
        return self._update_run_of(name, run_id, "REMOVE waiting.#run")

    def give(self, name: str, run_id: str) -> LimitState | None:
        """Give a free slot of ``name`` to ``run_id``, which waits for one; the limit as it is
        then, or None when the run no longer waits, no slot is free or the limit is gone (read
        it again to see which)."""
        client = self.table.client
        handed = {":handed": {"S": f"{HANDED}{self.table.clock().isoformat()}"}}
        try:
            response = retrying_conflicts(
                lambda: client.update_item(
                    TableName=self.table.table_name,
                    Key=self._key(name),
                    UpdateExpression="SET holders.#run = :handed REMOVE waiting.#run",
                    ConditionExpression=(
                        "attribute_exists(waiting.#run) AND size(holders) < max_runs"
                    ),
                    ExpressionAttributeNames={"#run": run_id},
                    ExpressionAttributeValues=handed,
                    ReturnValues="ALL_NEW",
                )
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None
        return _state(response["Attributes"])

    def wait(self, run_id: str, name: str, requested_at: datetime) -> bool:
        """Note that ``run_id`` (requested at ``requested_at``: the oldest is served first)
        waits for a slot of ``name``, and name the limit on the run, so that it stops waiting
        when it ends; False when the limit no longer exists or the run no longer waits to be
        launched (it ended, or was launched, meanwhile)."""
        client = self.table.client
        try:
            retrying_conflicts(
                lambda: client.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": self.table.table_name,
                                "Key": self._key(name),
                                "UpdateExpression": "SET waiting.#run = :at",
                                "ConditionExpression": "attribute_exists(pk)",
                                "ExpressionAttributeNames": {"#run": run_id},
                                "ExpressionAttributeValues": {
                                    ":at": {"S": requested_at.isoformat()}
                                },
                            }
                        },
                        {
                            "Update": {
                                "TableName": self.table.table_name,
                                "Key": _run_key(run_id),
                                "UpdateExpression": "ADD #limits :name",
                                "ConditionExpression": _IS_WAITING,
                                "ExpressionAttributeNames": {
                                    "#limits": "limits",
                                    "#state": "state",
                                },
                                "ExpressionAttributeValues": {":name": {"SS": [name]}, **_WAITING},
                            }
                        },
                    ]
                )
            )
        except client.exceptions.TransactionCanceledException as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    def release_if_waiting(self, run_id: str, name: str) -> LimitState | None:
        """Give back ``run_id``'s slot of ``name`` (and its place in the line) only while the
        run waits to be launched and no launch of it is under way or may have started
        (no launch claim, no attempt that may have started a task): a delivery giving back a
        waiting run's slots must not take them from a launch another delivery just made. The
        limit as it is then; None when it was not given back (or the limit is gone)."""
        client = self.table.client
        now = {":now": {"S": self.table.clock().isoformat()}}
        try:
            retrying_conflicts(
                lambda: client.transact_write_items(
                    TransactItems=[
                        {
                            "ConditionCheck": {
                                "TableName": self.table.table_name,
                                "Key": _run_key(run_id),
                                "ConditionExpression": (
                                    f"{_IS_WAITING} AND "
                                    "(attribute_not_exists(claim_until) OR claim_until < :now) "
                                    "AND attribute_not_exists(claim_attempt)"
                                ),
                                "ExpressionAttributeNames": {"#state": "state"},
                                "ExpressionAttributeValues": {**_WAITING, **now},
                            }
                        },
                        {
                            "Update": {
                                "TableName": self.table.table_name,
                                "Key": self._key(name),
                                "UpdateExpression": "REMOVE holders.#run, waiting.#run",
                                "ConditionExpression": "attribute_exists(pk)",
                                "ExpressionAttributeNames": {"#run": run_id},
                            }
                        },
                    ]
                )
            )
        except client.exceptions.TransactionCanceledException as exc:
            if condition_failed(exc):
                return None
            raise
        return self.get(name)

    def _update_run_of(self, name: str, run_id: str, expression: str) -> LimitState | None:
        """Apply ``expression`` (``#run``: the run id) to limit ``name`` if it still exists
        (an update would otherwise make the item again); the limit after it, or None."""
        client = self.table.client
        try:
            response = retrying_conflicts(
                lambda: client.update_item(
                    TableName=self.table.table_name,
                    Key=self._key(name),
                    UpdateExpression=expression,
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={"#run": run_id},
                    ReturnValues="ALL_NEW",
                )
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None
        return _state(response["Attributes"])

    # --- items --------------------------------------------------------------------------

    def _key(self, name: str) -> dict[str, Any]:
        return {"pk": {"S": PK}, "sk": {"S": name}}

    def _take(self, run_id: str, name: str, at: str) -> dict[str, Any]:
        return {
            "TableName": self.table.table_name,
            "Key": self._key(name),
            # A repeat keeps its slot (a slot handed to the run becomes taken); else there
            # must be room and no run waiting: a slot freed while runs wait is theirs, handed
            # to the oldest (``give``), and no other run, newcomer or waiter, takes it.
            "UpdateExpression": "SET holders.#run = :at REMOVE waiting.#run",
            "ConditionExpression": (
                "attribute_exists(pk) AND (attribute_exists(holders.#run) OR "
                "(size(holders) < max_runs AND size(waiting) = :nobody))"
            ),
            "ExpressionAttributeNames": {"#run": run_id},
            "ExpressionAttributeValues": {":at": {"S": at}, ":nobody": {"N": "0"}},
        }


#: The states of a run waiting to be launched, as condition values, and the condition.
_WAITING = {f":{state.name.lower()}": {"S": str(state)} for state in WAITING_STATES}
_IS_WAITING = f"#state IN ({', '.join(sorted(_WAITING))})"


def _run_key(run_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}


def _state(item: dict[str, Any]) -> LimitState:
    waiting = sorted(
        ((run_id, value["S"]) for run_id, value in item.get("waiting", {}).get("M", {}).items()),
        key=lambda pair: (pair[1], pair[0]),
    )
    holders = item.get("holders", {}).get("M", {})
    return LimitState(
        limit=ConcurrencyLimit.model_validate_json(item["limit"]["S"]),
        holders=frozenset(holders),
        waiting=tuple(waiting),
        handed=frozenset(
            run_id for run_id, value in holders.items() if value.get("S", "").startswith(HANDED)
        ),
    )
