"""Flow runs and their state history in the table (see ``flowrelay.control.store.table``).

Every change of state is one ``TransactWriteItems``: the run update, conditional on the version it
was decided from, and the history item. A duplicate or late event either fails the transition
table (``flowrelay.core.lifecycle``) and writes nothing, or loses the race on the version and is
decided again against the newer state.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from flowrelay.control.store.limits import LimitStore, Refused
from flowrelay.control.store.table import (
    BATCH_GET_KEYS,
    MAX_RACES,
    Table,
    condition_failed,
    retrying_conflicts,
)
from flowrelay.core.lifecycle import WAITING_STATES, RunState, Source, decide
from flowrelay.core.limits import clip
from flowrelay.core.modeling import Model
from flowrelay.core.runs import FlowRun, HistoryEntry

HISTORY_RETENTION = timedelta(days=90)


#: How far back ``Runs.recent`` looks by default.
RECENT_DAYS = 30
#: Runs a filtered page examines at most before it stops and says where to go on from.
PAGE_EXAMINES = 2000
#: Days (``recent`` index partitions) a page of every flow's runs reads at most.
PAGE_DAYS = 31


class LaunchClaim(Model):
    """The right to launch one attempt of a run (``RunStore.claim_launch``)."""

    attempt: int
    resumed: bool = False


class TransitionResult(Model):
    applied: bool
    run: FlowRun | None
    reason: str


class RunPage(Model):
    """One page of runs, newest first (``RunStore.page``); ``next``: the position to ask for
    the next page from (its ``before``), None when there is nothing older. ``more``: for a
    list that is one page (active runs, longest waiting first), how many it left out."""

    runs: list[FlowRun]
    next: str | None = None
    more: int = 0


class RunNotFoundError(LookupError):
    """No run with that id."""


class RunStore:
    """Runs in the flowrelay table.

    >>> runs = Store(boto3.client("dynamodb"), table_name).runs           # doctest: +SKIP
    >>> run, created = runs.create(run_id_for("k"), "etl")                # doctest: +SKIP
    """

    def __init__(self, table: Table) -> None:
        self.table = table

    def create(
        self,
        run_id: str,
        flow_name: str,
        *,
        flow_version: int | None = None,
        parameters: Mapping[str, Any] | None = None,
        labels: list[str] | None = None,
        run_config: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        timeout_seconds: float | None = None,
        restart_of: str | None = None,
        state: RunState = RunState.PENDING,
        message: str | None = None,
        source: Source = Source.DISPATCHER,
        details: Mapping[str, Any] | None = None,
        claim: tuple[int, timedelta] | None = None,
    ) -> tuple[FlowRun, bool]:
        """Create the run unless it exists; returns it and whether this call created it.
        ``message`` and ``details`` go with its first history item (a restart names the run it
        restarts there). ``claim`` (an attempt and a lease): the run is created with its
        launch claimed, as ``claim_launch`` would claim it, in the same write.

        A run created as dispatch creates it (Pending, by the dispatcher, saying only what it
        restarts) is one conditional ``PutItem``: its first history item is read from the run
        item (``first_entry``), not written beside it. When the run exists, the refusal brings
        the existing item back: no second call.

        Safe to call any number of times with the same ``run_id``: exactly one call creates.
        """
        now = self.table.clock()
        message = clip(message)
        run = FlowRun(
            run_id=run_id,
            flow_name=flow_name,
            flow_version=flow_version,
            parameters=dict(parameters or {}),
            labels=list(labels or []),
            run_config=dict(run_config) if run_config is not None else None,
            idempotency_key=idempotency_key,
            timeout_seconds=timeout_seconds,
            restart_of=restart_of,
            state=state,
            message=message,
            created_at=now,
            updated_at=now,
            state_entered_at=now,
        )
        entry = HistoryEntry(
            version=1,
            state=state,
            previous=None,
            source=source,
            message=message,
            at=now,
            details=dict(details or {}),
        )
        item = run_item(run)
        if claim is not None:
            attempt, lease = claim
            run.claimed_until = now + lease
            run.claimed_attempt = attempt
            item["claim_until"] = {"S": run.claimed_until.isoformat()}
            item["claim_attempt"] = {"N": str(attempt)}
        put = {
            "TableName": self.table.table_name,
            "Item": item,
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        try:
            if entry == first_entry(run):
                self.table.client.put_item(**put, ReturnValuesOnConditionCheckFailure="ALL_OLD")
            else:
                history = {
                    "TableName": self.table.table_name,
                    "Item": self._history_item(run_id, entry),
                }
                self.table.client.transact_write_items(
                    TransactItems=[
                        {"Put": {**put, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}},
                        {"Put": history},
                    ]
                )
        except self.table.client.exceptions.ConditionalCheckFailedException as exc:
            return self._existing(run_id, exc.response.get("Item")), False
        except self.table.client.exceptions.TransactionCanceledException as exc:
            if not condition_failed(exc):
                raise
            reasons = exc.response.get("CancellationReasons", [])
            return self._existing(run_id, reasons[0].get("Item") if reasons else None), False
        return run, True

    def _existing(self, run_id: str, item: Mapping[str, Any] | None) -> FlowRun:
        """The run a refused create found, from the refusal (read again if it had none)."""
        if item:
            return run_from_item(item)
        found = self.get(run_id)
        if found is None:  # pragma: no cover - a run is never deleted
            raise RunNotFoundError(f"no flow run {run_id!r}, yet it exists")
        return found

    def get(self, run_id: str) -> FlowRun | None:
        response = self.table.client.get_item(
            TableName=self.table.table_name, Key=run_key(run_id), ConsistentRead=True
        )
        item = response.get("Item")
        return run_from_item(item) if item else None

    def transition(
        self,
        run_id: str,
        proposed: RunState,
        source: Source,
        *,
        message: str | None = None,
        event_id: str | None = None,
        details: Mapping[str, Any] | None = None,
        infrastructure: Mapping[str, Any] | None = None,
        target: str | None = None,
        infra_ref: str | None = None,
        infra_sequence: int | None = None,
        updates: Mapping[str, Any] | None = None,
        unless_claimed: bool = False,
        held: FlowRun | None = None,
    ) -> TransitionResult:
        """Propose a new state for a run; it applies if the transition table allows it.

        ``infrastructure`` and ``target`` are recorded with the change (what a launch started,
        with Submitted); new infrastructure replaces the old, as it is a new launch.
        ``infra_ref`` names the launch an infrastructure event is about (``Launched.ref``): an
        event about another launch than the run's current one (an earlier attempt's) is
        ignored. ``infra_sequence`` orders the events of one launch (an ECS event's
        ``detail.version``): an event older than one already applied is ignored. ``updates``
        sets other fields of the run with the change (attempt, retry_at, timeouts).
        ``unless_claimed``: not while a dispatcher holds the launch claim (a cancel must not
        end a run whose task may be starting at this moment). ``held``: the run as the caller
        has just read or written it, decided from without reading it again (the write is
        conditional on its version, so a stale one only costs a second decision). What does
        not change the version (its slots, ``limits``; its claim; its heartbeat) is as
        ``held`` has it: a caller that gives back slots after a final state passes a run it
        has just read, or none.
        """
        for _ in range(MAX_RACES):
            run = held if held is not None and held.run_id == run_id else self.get(run_id)
            held = None
            if run is None:
                raise RunNotFoundError(f"no flow run {run_id!r}")
            current = run.infrastructure.get("ref")
            if infra_ref is not None and current is not None and infra_ref != current:
                return TransitionResult(
                    applied=False,
                    run=run,
                    reason=f"event of {infra_ref}, not of the run's current launch {current}",
                )
            if (
                infra_sequence is not None
                and run.infra_sequence is not None
                and infra_sequence <= run.infra_sequence
            ):
                return TransitionResult(
                    applied=False,
                    run=run,
                    reason=f"event number {infra_sequence} of its launch is not newer than "
                    f"{run.infra_sequence}",
                )
            decision = decide(run.state, proposed, source)
            if not decision.applies:
                return TransitionResult(applied=False, run=run, reason=decision.reason)
            now = self.table.clock()
            if unless_claimed and run.launch_claimed(now):
                return TransitionResult(
                    applied=False, run=run, reason="a dispatcher is launching the run"
                )
            changes: dict[str, Any] = {
                "state": decision.state,
                "message": message,
                "target": target or run.target,
                **(updates or {}),
            }
            if infrastructure is not None:
                changes["infrastructure"] = dict(infrastructure)
                changes["infra_sequence"] = None
            if infra_sequence is not None:
                changes["infra_sequence"] = infra_sequence
            history = {
                "source": source,
                "message": message,
                "event_id": event_id,
                "details": dict(details or {}),
            }
            # Back to Pending after a launch (a relaunch): the finished launch's claim goes, so
            # the next attempt can be claimed at once.
            relaunch = decision.state is RunState.PENDING and run.state not in WAITING_STATES
            updated = self._write(
                run,
                changes,
                history,
                now=now,
                unclaimed_at=now if unless_claimed else None,
                release_claim=relaunch,
            )
            if updated is not None:
                return TransitionResult(applied=True, run=updated, reason=decision.reason)
        raise RuntimeError(f"flow run {run_id!r}: {MAX_RACES} concurrent changes in a row")

    def fail_attempt(
        self,
        run: FlowRun,
        reason: str,
        retry_at: datetime,
        *,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> FlowRun | None:
        """Record that launch attempt ``run.attempt`` of a waiting run failed and will be tried
        again (as attempt + 1) no sooner than ``retry_at``; the reason goes in the history.
        Releases the launch claim. None when the run changed meanwhile (the newer state wins).
        """
        return self._back_off(
            run, reason, retry_at, message, details, {"attempt": run.attempt + 1, "unanswered": 0}
        )

    def note_throttled(
        self,
        run: FlowRun,
        reason: str,
        retry_at: datetime,
        *,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> FlowRun | None:
        """Record that the launch of attempt ``run.attempt`` was refused for the platform's
        request rate (it started nothing): counted in ``throttled``, not as an attempt, the
        reason in the history, tried again no sooner than ``retry_at``. Releases the launch
        claim. None when the run changed meanwhile (the newer state wins)."""
        counted = {"throttled": run.throttled + 1}
        return self._back_off(run, reason, retry_at, message, details, counted, counted)

    def note_unanswered(
        self,
        run: FlowRun,
        reason: str,
        retry_at: datetime,
        *,
        message: str,
        details: Mapping[str, Any] | None = None,
    ) -> FlowRun | None:
        """Record that a try of launch attempt ``run.attempt`` went unanswered (it may have
        started something): the try is counted (``unanswered``), the reason goes in the history,
        and the attempt is tried again, as the same attempt, no sooner than ``retry_at``. The
        claim is released but the claimed attempt kept, so the next try looks for what this one
        may have started before starting anything. None when the run changed meanwhile."""
        counted = {"unanswered": run.unanswered + 1}
        return self._back_off(
            run, reason, retry_at, message, details, counted, counted, keep_attempt=True
        )

    def _back_off(
        self,
        run: FlowRun,
        reason: str,
        retry_at: datetime,
        message: str,
        details: Mapping[str, Any] | None,
        changes: Mapping[str, Any],
        counted: Mapping[str, Any] | None = None,
        keep_attempt: bool = False,
    ) -> FlowRun | None:
        """A launch that did not happen: ``changes`` and the message on the run, which waits
        until ``retry_at``; a history item with the attempt, ``counted``, the reason and
        ``details``; the launch claim released (``keep_attempt``: its attempt remembered)."""
        history = {
            "source": Source.DISPATCHER,
            "message": message,
            "details": {
                "attempt": run.attempt,
                **(counted or {}),
                "reason": reason,
                **(details or {}),
            },
        }
        return self._write(
            run,
            {"message": message, "retry_at": retry_at, **changes},
            history,
            now=self.table.clock(),
            release_claim=True,
            keep_attempt=keep_attempt,
        )

    def amend(
        self,
        run: FlowRun,
        source: Source,
        message: str,
        changes: Mapping[str, Any],
        details: Mapping[str, Any] | None = None,
    ) -> FlowRun | None:
        """Change a run's fields without changing its state, with a history item saying why
        (e.g. the task a dispatcher launched just as the run was cancelled, and stopped). None
        when the run changed meanwhile."""
        history = {"source": source, "message": message, "details": dict(details or {})}
        return self._write(run, {**changes, "message": message}, history, now=self.table.clock())

    def _write(
        self,
        run: FlowRun,
        changes: Mapping[str, Any],
        history: Mapping[str, Any],
        *,
        now: datetime,
        unclaimed_at: datetime | None = None,
        release_claim: bool = False,
        keep_attempt: bool = False,
    ) -> FlowRun | None:
        """Write one change of a run (its new fields and a history item) in one transaction,
        conditional on the version it was decided from; None when another writer changed the
        run first. ``release_claim``: the launch claim goes (``keep_attempt``: but the claimed
        attempt is remembered, as its launch may have happened)."""
        state = changes.get("state", run.state)
        changes = {**changes, "message": clip(changes.get("message", run.message))}
        history = {**history, "message": clip(history.get("message"))}
        updated = run.model_copy(
            update={
                **changes,
                "version": run.version + 1,
                "updated_at": now,
                "state_entered_at": now if state is not run.state else run.state_entered_at,
            }
        )
        entry = HistoryEntry(
            version=updated.version, state=state, previous=run.state, at=now, **history
        )
        update = _transition_update(
            self.table.table_name,
            run.version,
            updated,
            remove=(
                (("claim_until",) if keep_attempt else ("claim_until", "claim_attempt"))
                if release_claim
                else ()
            ),
        )
        if unclaimed_at is not None:
            update["ConditionExpression"] += (
                " AND (attribute_not_exists(claim_until) OR claim_until < :unclaimed_at)"
            )
            update["ExpressionAttributeValues"][":unclaimed_at"] = {"S": unclaimed_at.isoformat()}
        items = [
            {"Update": update},
            {
                "Put": {
                    "TableName": self.table.table_name,
                    "Item": self._history_item(run.run_id, entry),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
        ]
        try:
            retrying_conflicts(lambda: self.table.client.transact_write_items(TransactItems=items))
        except self.table.client.exceptions.TransactionCanceledException as exc:
            if condition_failed(exc):
                return None
            raise
        return updated

    def claim_launch(
        self,
        run: FlowRun,
        attempt: int,
        lease: timedelta,
        slots: Sequence[str] = (),
    ) -> LaunchClaim | Refused | None:
        """Claim the right to launch a run that is waiting to be launched, for ``lease``, and a
        slot of each concurrency limit in ``slots``: all in one write, or nothing.

        Only one dispatcher holds the claim at a time, so two deliveries of the same request
        cannot both launch. A claim whose lease ran out (its dispatcher died mid-launch) can be
        taken over; the launch then reuses the attempt's ``clientToken``, so AWS returns the task
        the first dispatcher may already have started instead of starting another.

        Returns None when another dispatcher holds the claim or the run is no longer waiting;
        ``Refused`` (the first limit with no free slot, and its holders) when a slot could not
        be taken; otherwise the claim, ``resumed`` when this attempt was claimed before (so it
        may have started a task that must be looked for before starting one).
        """
        now = self.table.clock()
        key = {"pk": {"S": f"RUN#{run.run_id}"}, "sk": {"S": "RUN"}}
        condition = (
            "#state IN (:pending, :scheduled, :queued) "
            "AND (attribute_not_exists(claim_until) OR claim_until < :now)"
        )
        values: dict[str, Any] = {
            ":until": {"S": (now + lease).isoformat()},
            ":attempt": {"N": str(attempt)},
            ":now": {"S": now.isoformat()},
            ":pending": {"S": str(RunState.PENDING)},
            ":scheduled": {"S": str(RunState.SCHEDULED)},
            ":queued": {"S": str(RunState.QUEUED)},
        }
        if not slots:
            try:
                response = retrying_conflicts(
                    lambda: self.table.client.update_item(
                        TableName=self.table.table_name,
                        Key=key,
                        UpdateExpression="SET claim_until = :until, claim_attempt = :attempt",
                        ConditionExpression=condition,
                        ExpressionAttributeNames={"#state": "state"},
                        ExpressionAttributeValues=values,
                        # ALL_OLD, not UPDATED_OLD: an attribute set to the value it already
                        # had is not "updated" for some implementations (moto), which would
                        # hide a takeover.
                        ReturnValues="ALL_OLD",
                    )
                )
            except self.table.client.exceptions.ConditionalCheckFailedException:
                return None
            previous = response.get("Attributes", {}).get("claim_attempt", {}).get("N")
            return LaunchClaim(attempt=attempt, resumed=previous == str(attempt))
        # A transaction returns no old values: whether this attempt was claimed before is
        # read from ``run``, and the claim is conditional on that still being so.
        if run.claimed_attempt is None:
            condition += " AND attribute_not_exists(claim_attempt)"
        else:
            condition += " AND claim_attempt = :claimed"
            values[":claimed"] = {"N": str(run.claimed_attempt)}
        values[":slots"] = {"SS": sorted(slots)}
        claim = {
            "Update": {
                "TableName": self.table.table_name,
                "Key": key,
                "UpdateExpression": (
                    "SET claim_until = :until, claim_attempt = :attempt ADD #limits :slots"
                ),
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#state": "state", "#limits": "limits"},
                "ExpressionAttributeValues": values,
            }
        }
        limits = LimitStore(self.table)
        items = [claim, *limits.slot_updates(run.run_id, slots)]
        try:
            # A busy limit's item is written by many dispatches at once: on AWS a transaction
            # may collide with another and is then tried again (moto never collides).
            retrying_conflicts(lambda: self.table.client.transact_write_items(TransactItems=items))
        except self.table.client.exceptions.TransactionCanceledException as exc:
            reasons = exc.response.get("CancellationReasons", [])
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                return None  # not the run's slots to take: it is not this delivery's to launch
            refused = limits.refused_by(exc, slots, offset=1)
            if refused is not None:
                return refused
            raise
        return LaunchClaim(attempt=attempt, resumed=run.claimed_attempt == attempt)

    def note_waiting(self, run_id: str, message: str) -> bool:
        """Say why a waiting run (Pending or Queued) is still waiting (no change of state, no
        history item). False when the run changed meanwhile; the newer state wins."""
        run = self.get(run_id)
        if run is None or run.state not in (RunState.PENDING, RunState.QUEUED):
            return False
        noted = run.model_copy(update={"message": clip(message), "updated_at": self.table.clock()})
        try:
            self.table.client.update_item(
                TableName=self.table.table_name,
                Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
                UpdateExpression="SET #run = :run",
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={"#run": "run", "#version": "version"},
                ExpressionAttributeValues={
                    ":run": run_item(noted)["run"],
                    ":version": {"N": str(run.version)},
                },
            )
        except self.table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_launch(self, run_id: str, *, maybe_launched: bool = False) -> None:
        """Give up a launch claim, so a retry can claim at once. ``maybe_launched``: the launch
        went unanswered, so the attempt is remembered and its retry looks for its task first."""
        self.table.client.update_item(
            TableName=self.table.table_name,
            Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
            UpdateExpression=(
                "REMOVE claim_until" if maybe_launched else "REMOVE claim_until, claim_attempt"
            ),
        )

    def heartbeat(self, run_id: str) -> bool:
        """Record that the run's runner is alive; False when the run is final or unknown."""
        try:
            self.table.client.update_item(
                TableName=self.table.table_name,
                Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
                UpdateExpression="SET heartbeat_at = :now",
                ConditionExpression="attribute_exists(active_pk)",
                ExpressionAttributeValues={":now": {"S": self.table.clock().isoformat()}},
            )
        except self.table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def history(self, run_id: str) -> list[HistoryEntry]:
        """Every applied transition and every note of a run, oldest first."""
        items = self.table.query(
            # HIST#<version> and NOTE#<event id> sort before the run's own item, RUN, which
            # comes with them: it is the first transition's record (``first_entry``).
            KeyConditionExpression="pk = :pk AND sk <= :run",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}, ":run": {"S": "RUN"}},
            ConsistentRead=True,
        )
        entries = [
            HistoryEntry.model_validate_json(item["entry"]["S"])
            for item in items
            if item["sk"]["S"] != "RUN"
        ]
        run = next((run_from_item(item) for item in items if item["sk"]["S"] == "RUN"), None)
        if run is not None and not any(entry.version == 1 and not entry.note for entry in entries):
            entries.append(first_entry(run))
        # Transitions in version order, each note after the transitions recorded before it.
        return sorted(entries, key=lambda entry: (entry.version, entry.note, entry.at))

    def last_transition(self, run: FlowRun) -> HistoryEntry | None:
        """The history item of the change that made ``run`` what it is (its state, with the
        details of that change: a runner's final report says where its checkpoints are). One
        ``GetItem``: what a flow runner, which may only get items, can read. None once the
        history has expired."""
        response = self.table.client.get_item(
            TableName=self.table.table_name,
            Key={"pk": {"S": f"RUN#{run.run_id}"}, "sk": {"S": f"HIST#{run.version:08d}"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if item is None and run.version == 1:
            return first_entry(run)
        return HistoryEntry.model_validate_json(item["entry"]["S"]) if item else None

    def note(
        self,
        run: FlowRun,
        source: Source,
        message: str,
        *,
        at: datetime,
        event_id: str,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Add a note to a run's history (no change of state, the run item untouched); the
        same event noted twice is kept once. False when it was noted already."""
        entry = HistoryEntry(
            version=run.version,
            state=run.state,
            previous=run.state,
            source=source,
            message=clip(message),
            at=at,
            event_id=event_id,
            details=dict(details or {}),
            note=True,
        )
        item = self._history_item(run.run_id, entry)
        # Keyed by the event alone: a redelivered report is the same item, whenever it comes.
        item["sk"] = {"S": f"NOTE#{event_id}"}
        try:
            self.table.client.put_item(
                TableName=self.table.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self.table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def of_flow(self, flow_name: str, limit: int = 50) -> list[FlowRun]:
        """The flow's runs, newest first."""
        return self.page(limit=limit, flow_name=flow_name).runs

    def recent(
        self,
        limit: int = 50,
        days: int = RECENT_DAYS,
        keep: Callable[[FlowRun], bool] | None = None,
    ) -> list[FlowRun]:
        """Runs of every flow, newest first: at most ``limit`` of those created in the last
        ``days`` days (UTC) that ``keep`` accepts."""
        return self.page(limit=limit, days=days, keep=keep, examine=None).runs

    def page(
        self,
        *,
        limit: int = 50,
        flow_name: str | None = None,
        before: str | None = None,
        since: datetime | None = None,
        days: int = RECENT_DAYS,
        keep: Callable[[FlowRun], bool] | None = None,
        examine: int | None = PAGE_EXAMINES,
    ) -> RunPage:
        """One page of runs, newest first: one flow's (the ``by-flow`` index) or every flow's
        created in the last ``days`` days or since ``since`` (the ``recent`` index, one
        partition a day), at most ``limit`` that ``keep`` accepts, created at ``since`` or
        later, and older than the
        position ``before`` (a page's ``next``: where the page before it stopped).

        Reads index keys a page at a time, and the runs they name by ``BatchGetItem``, and
        stops once it has enough, or, with ``keep``, once it has examined ``examine`` runs (a
        filter few runs pass must not read a whole history for one page): ``next`` then says
        where to go on from, whether or not the page is full. ``next`` is None when there is
        nothing older.
        """
        found: list[FlowRun] = []
        examined = 0
        position: str | None = None
        since_key = since.astimezone(UTC).isoformat() if since is not None else None
        if since_key is not None and before is not None and since_key > before:
            return RunPage(runs=[])
        partitions = list(self._page_partitions(flow_name, before, since, days))
        for number, (index, partition_key, partition, sort_key, day) in enumerate(
            partitions, start=1
        ):
            if examine is not None and number > PAGE_DAYS and day is not None:
                # Days of few runs (a ``since`` years back): a page stops after a month of
                # them and says where to go on from (before the day it did not read).
                return RunPage(runs=found, next=f"{(day + timedelta(days=1)).isoformat()}#")
            condition = f"{partition_key} = :pk"
            values: dict[str, Any] = {":pk": {"S": partition}}
            if before is not None and since_key is not None:
                condition += f" AND {sort_key} BETWEEN :since AND :before"
                values[":since"] = {"S": since_key}
                values[":before"] = {"S": before}
            elif before is not None:
                condition += f" AND {sort_key} < :before"
                values[":before"] = {"S": before}
            elif since_key is not None:
                condition += f" AND {sort_key} >= :since"
                values[":since"] = {"S": since_key}
            paginator = self.table.client.get_paginator("query")
            pages = paginator.paginate(
                TableName=self.table.table_name,
                IndexName=index,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                # Filtered, a page reads many keys for each run it keeps: full pages then.
                PaginationConfig={
                    "PageSize": BATCH_GET_KEYS if keep else min(BATCH_GET_KEYS, max(limit, 10))
                },
            )
            for keys_page in pages:
                keys = [key for key in keys_page.get("Items", []) if key[sort_key]["S"] != before]
                items = self.table.get_many([{"pk": key["pk"], "sk": key["sk"]} for key in keys])
                for key in keys:
                    position = key[sort_key]["S"]
                    item = items.get(key["pk"]["S"])
                    if item is None:
                        continue
                    run = run_from_item(item)
                    examined += 1
                    if keep is None or keep(run):
                        found.append(run)
                        if len(found) >= limit:
                            return RunPage(runs=found, next=position)
                    if keep is not None and examine is not None and examined >= examine:
                        return RunPage(runs=found, next=position)
        return RunPage(runs=found, next=None)

    def _page_partitions(
        self, flow_name: str | None, before: str | None, since: datetime | None, days: int
    ) -> Iterator[tuple[str, str, str, str, datetime | None]]:
        """The index partitions a page reads, newest first: (index, its partition key, the
        partition, its sort key, the start of its day (UTC) when it holds one day's runs)."""
        if flow_name is not None:
            yield "by-flow", "flow_pk", f"FLOW#{flow_name}", "flow_sk", None
            return
        today = self.table.clock().astimezone(UTC)
        first = today
        if before is not None:
            moment, _, run_id = before.partition("#")
            until = datetime.fromisoformat(moment).astimezone(UTC)
            # A day's start with no run (where a page stopped between days): the day before.
            first = min(today, until - timedelta(microseconds=0 if run_id else 1))
        # ``since`` says how far back to look; ``days`` only when it does not.
        oldest = since.astimezone(UTC) if since is not None else today - timedelta(days=days - 1)
        day = first
        while day.date() >= oldest.date():
            start = datetime.combine(day.date(), datetime.min.time(), tzinfo=UTC)
            yield "recent", "recent_pk", _recent_bucket(day), "recent_sk", start
            day -= timedelta(days=1)

    def active(self, state: RunState, entered_before: datetime | None = None) -> list[FlowRun]:
        """Runs in ``state`` (not final), longest in it first; optionally only those that entered
        it before ``entered_before``. Reads the sparse index (each of its shards), then the runs
        it names (``BatchGetItem``), never the whole table; a run the index has not yet seen
        leave ``state`` is left out."""
        if state.is_final:
            raise ValueError(f"{state} is final: final runs are not in the active index")
        keys: list[dict[str, Any]] = []
        for shard in range(ACTIVE_SHARDS):
            condition = "active_pk = :pk"
            values: dict[str, Any] = {":pk": {"S": _active_partition(state, shard)}}
            if entered_before is not None:
                condition += " AND active_sk < :before"
                values[":before"] = {"S": entered_before.isoformat()}
            keys.extend(
                self.table.query(
                    IndexName="active",
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values,
                )
            )
        keys.sort(key=lambda item: item["active_sk"]["S"])
        return [
            run
            for run in self._runs_of(keys)
            if run.state is state
            and (entered_before is None or run.state_entered_at < entered_before)
        ]

    def _runs_of(self, keys: Iterable[Mapping[str, Any]]) -> list[FlowRun]:
        """The runs an index query named (the indexes keep only keys), in its order."""
        wanted = [{"pk": key["pk"], "sk": key["sk"]} for key in keys]
        items = self.table.get_many(wanted)
        return [run_from_item(items[key["pk"]["S"]]) for key in wanted if key["pk"]["S"] in items]

    def _history_item(self, run_id: str, entry: HistoryEntry) -> dict[str, Any]:
        expires = int((entry.at + HISTORY_RETENTION).timestamp())
        return {
            "pk": {"S": f"RUN#{run_id}"},
            "sk": {"S": f"HIST#{entry.version:08d}"},
            "entry": {"S": entry.model_dump_json()},
            "expires_at": {"N": str(expires)},
        }


def run_key(run_id: str) -> dict[str, Any]:
    """The key of a run's item."""
    return {"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}}


def _recent_bucket(at: datetime) -> str:
    """The ``recent`` index partition of a run created at ``at``: its UTC day. One partition a
    day keeps each query small; a day's runs share one partition's write rate (1,000 items a
    second; the index keeps keys only, written once per run: docs/scaling.md)."""
    return f"RECENT#{at.astimezone(UTC):%Y-%m-%d}"


#: Partitions of each state in the ``active`` index. Every run passes through Pending,
#: Submitted and Running: with one partition a state, each would take a put and a delete per run
#: (docs/scaling.md), one partition's worth of writes at the rates flowrelay is built for.
ACTIVE_SHARDS = 8


def _active_partition(state: RunState, shard: int) -> str:
    return f"ACTIVE#{state}#{shard}"


def _active_shard(run_id: str) -> int:
    """The run's shard of the ``active`` index: the same for its whole life."""
    return zlib.crc32(run_id.encode()) % ACTIVE_SHARDS


def encode_run(run: FlowRun) -> bytes:
    """The run as stored: its JSON without the fields at their defaults, compressed. A run item
    stays under 1 KB (one write unit) with an ECS task's ARNs in it (docs/decisions.md)."""
    return zlib.compress(run.model_dump_json(exclude_defaults=True).encode())


def decode_run(value: Mapping[str, Any]) -> FlowRun:
    """A run from its stored attribute: compressed JSON (``B``), or plain JSON (``S``) as
    runs written before compression are."""
    if "B" in value:
        return FlowRun.model_validate_json(zlib.decompress(value["B"]))
    return FlowRun.model_validate_json(value["S"])


def first_entry_message(restart_of: str | None) -> str | None:
    return f"restart of run {restart_of}" if restart_of else None


def first_entry(run: FlowRun) -> HistoryEntry:
    """The first history item of a run: its creation, Pending, by a dispatcher (a restart
    names the run it restarts), read from the run item rather than written beside it."""
    return HistoryEntry(
        version=1,
        state=RunState.PENDING,
        previous=None,
        source=Source.DISPATCHER,
        message=first_entry_message(run.restart_of),
        at=run.created_at,
        details={"restart_of": run.restart_of} if run.restart_of else {},
    )


def run_item(run: FlowRun) -> dict[str, Any]:
    """The run as a DynamoDB item: key and index attributes, plus the whole run as compressed
    JSON (``encode_run``; numbers in parameters stay exact, where DynamoDB would need
    Decimals)."""
    item: dict[str, Any] = {
        "pk": {"S": f"RUN#{run.run_id}"},
        "sk": {"S": "RUN"},
        "run": {"B": encode_run(run)},
        "version": {"N": str(run.version)},
        "state": {"S": str(run.state)},
        "flow_pk": {"S": f"FLOW#{run.flow_name}"},
        "flow_sk": {"S": f"{run.created_at.isoformat()}#{run.run_id}"},
        "recent_pk": {"S": _recent_bucket(run.created_at)},
        "recent_sk": {"S": f"{run.created_at.isoformat()}#{run.run_id}"},
    }
    if run.state.is_active:
        item["active_pk"] = {"S": _active_partition(run.state, _active_shard(run.run_id))}
        item["active_sk"] = {"S": f"{run.state_entered_at.isoformat()}#{run.run_id}"}
    if run.heartbeat_at is not None:
        item["heartbeat_at"] = {"S": run.heartbeat_at.isoformat()}
    return item


def _transition_update(
    table_name: str, expected_version: int, run: FlowRun, remove: Sequence[str] = ()
) -> dict[str, Any]:
    """An update of the run's attributes (not a whole-item put: ``heartbeat_at`` is written on
    its own and must survive), conditional on the version the change was decided from; the
    attributes in ``remove`` go."""
    item = run_item(run)
    names = {"#run": "run", "#version": "version", "#state": "state"}
    values = {
        ":run": item["run"],
        ":version": item["version"],
        ":state": item["state"],
        ":expected": {"N": str(expected_version)},
    }
    expression = "SET #run = :run, #version = :version, #state = :state"
    removed = list(remove)
    if run.state.is_active:
        expression += ", active_pk = :active_pk, active_sk = :active_sk"
        values[":active_pk"] = item["active_pk"]
        values[":active_sk"] = item["active_sk"]
    else:
        removed[:0] = ["active_pk", "active_sk"]
    if removed:
        expression += " REMOVE " + ", ".join(removed)
    return {
        "TableName": table_name,
        "Key": {"pk": item["pk"], "sk": item["sk"]},
        "UpdateExpression": expression,
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def run_from_item(item: Mapping[str, Any]) -> FlowRun:
    """A run from its item, with what is kept beside its JSON (heartbeat, claim, limits)."""
    run = decode_run(item["run"])
    heartbeat = item.get("heartbeat_at")
    if heartbeat is not None:
        run.heartbeat_at = datetime.fromisoformat(heartbeat["S"])
    claim = item.get("claim_until")
    if claim is not None:
        run.claimed_until = datetime.fromisoformat(claim["S"])
    attempt = item.get("claim_attempt")
    if attempt is not None:
        run.claimed_attempt = int(attempt["N"])
    limits = item.get("limits")
    if limits is not None:
        run.limits = sorted(limits["SS"])
    return run
