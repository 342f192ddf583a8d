"""The single DynamoDB table: flow runs and their state history (flows and targets follow).

Keys follow the access patterns (the table is defined in template.yaml):

- run: ``pk = RUN#<id>``, ``sk = RUN``; index ``by-flow``: ``FLOW#<name>`` / ``<created>#<id>``
  (a flow's runs, newest first); sparse index ``active``, present only while the run is not
  final: ``ACTIVE#<state>`` / ``<entered state at>#<id>`` (what the monitor reads).
- history: ``pk = RUN#<id>``, ``sk = HIST#<version>``: one per applied transition, removed by TTL
  (``expires_at``) after ``HISTORY_RETENTION``.

Every change of state is one ``TransactWriteItems``: the run update, conditional on the version it
was decided from, and the history item. A duplicate or late event either fails the transition
table (``flowrelay.core.lifecycle``) and writes nothing, or loses the race on the version and is
decided again against the newer state.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field

from flowrelay.core.lifecycle import WAITING_STATES, RunState, Source, decide
from flowrelay.core.modeling import Model
from flowrelay.core.timeouts import Timeouts

if TYPE_CHECKING:
    # Loaded where used: the record_state function never reads flows or targets.
    from flowrelay.core.registration import FlowRegistration
    from flowrelay.core.routing import Target

HISTORY_RETENTION = timedelta(days=90)
_RUN_ID_NAMESPACE = uuid.UUID("6f1c1f0e-3a59-4d2e-9a63-1c5d0d7f6b21")
_MAX_RACES = 5


def run_id_for(idempotency_key: str) -> str:
    """The run id a request with this idempotency key always gets: the same key can create only
    one run, with no extra item or lookup.

    >>> run_id_for("nightly-2026-11-23") == run_id_for("nightly-2026-11-23")
    True
    """
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, idempotency_key))


def requested_run_id(flow_run_id: str | None, idempotency_key: str | None, event_id: str) -> str:
    """The run a "Flow Run Requested" event makes: its ``flow_run_id``, else the id its
    idempotency key always gets, else one from its EventBridge event id (so redeliveries of one
    event make one run).

    >>> requested_run_id(None, "nightly-2026-11-23", "e-1") == run_id_for("nightly-2026-11-23")
    True
    """
    return flow_run_id or run_id_for(idempotency_key or f"event:{event_id}")


class FlowRun(Model):
    """A flow run as the control plane records it."""

    run_id: str
    flow_name: str
    flow_version: int | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)
    run_config: dict[str, Any] | None = None
    idempotency_key: str | None = None
    state: RunState = RunState.PENDING
    message: str | None = None
    version: int = 1
    created_at: datetime
    updated_at: datetime
    state_entered_at: datetime
    heartbeat_at: datetime | None = None
    target: str | None = None
    infrastructure: dict[str, Any] = Field(default_factory=dict)
    ecs_version: int | None = None
    attempt: int = Field(default=1, ge=1, description="The launch attempt now under way.")
    retry_at: datetime | None = Field(
        default=None, description="A failed attempt's backoff: not launched again before this."
    )
    timeout_seconds: float | None = Field(default=None, description="The run's own time limit.")
    launched_at: datetime | None = Field(default=None, description="When its task was started.")
    timeouts: Timeouts | None = Field(
        default=None, description="The limits the monitor holds the run to (set at launch)."
    )
    claimed_until: datetime | None = Field(
        default=None,
        exclude=True,
        description="A dispatcher is launching the run until then (kept outside the run JSON).",
    )
    claimed_attempt: int | None = Field(
        default=None,
        exclude=True,
        description=(
            "The attempt a dispatcher claimed and did not finish: it may have started a task "
            "it never recorded (kept outside the run JSON)."
        ),
    )

    def launch_claimed(self, now: datetime) -> bool:
        """Whether a dispatcher holds the claim to launch this run at ``now``."""
        return self.claimed_until is not None and self.claimed_until > now


class HistoryEntry(Model):
    """One applied transition."""

    version: int
    state: RunState
    previous: RunState | None
    source: Source
    message: str | None = None
    at: datetime
    event_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class LaunchClaim(Model):
    """The right to launch one attempt of a run (``RunStore.claim_launch``)."""

    attempt: int
    resumed: bool = False


class TransitionResult(Model):
    applied: bool
    run: FlowRun | None
    reason: str


class RunNotFoundError(LookupError):
    """No run with that id."""


class RunStore:
    """Runs in the flowrelay table. ``client`` is a boto3 DynamoDB client.

    >>> store = RunStore(boto3.client("dynamodb"), table_name)        # doctest: +SKIP
    >>> run, created = store.create_run(run_id_for("k"), "etl")        # doctest: +SKIP
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.clock = clock or (lambda: datetime.now(UTC))

    # --- runs ----------------------------------------------------------------------------------

    def create_run(
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
        state: RunState = RunState.PENDING,
        message: str | None = None,
        source: Source = Source.DISPATCHER,
    ) -> tuple[FlowRun, bool]:
        """Create the run unless it exists; returns it and whether this call created it.

        Safe to call any number of times with the same ``run_id``: exactly one call creates.
        """
        now = self.clock()
        run = FlowRun(
            run_id=run_id,
            flow_name=flow_name,
            flow_version=flow_version,
            parameters=dict(parameters or {}),
            labels=list(labels or []),
            run_config=dict(run_config) if run_config is not None else None,
            idempotency_key=idempotency_key,
            timeout_seconds=timeout_seconds,
            state=state,
            message=message,
            created_at=now,
            updated_at=now,
            state_entered_at=now,
        )
        history = HistoryEntry(
            version=1, state=state, previous=None, source=source, message=message, at=now
        )
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": _run_item(run),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": self._history_item(run_id, history),
                        }
                    },
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            if not _condition_failed(exc):
                raise
            existing = self.get_run(run_id)
            if existing is None:  # pragma: no cover - a run is never deleted
                raise
            return existing, False
        return run, True

    def get_run(self, run_id: str) -> FlowRun | None:
        response = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _run_from_item(item) if item else None

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
        ecs_version: int | None = None,
        task_arn: str | None = None,
        updates: Mapping[str, Any] | None = None,
        unless_claimed: bool = False,
    ) -> TransitionResult:
        """Propose a new state for a run; it applies if the transition table allows it.

        ``infrastructure`` and ``target`` are recorded with the change (the ECS task ARN with
        Submitted); new infrastructure replaces the old, as it is a new task. ``task_arn`` names
        the task an infrastructure event is about: an event about another task than the run's
        current one (an earlier attempt's) is ignored. ``ecs_version`` is the ECS event's
        ``detail.version``: an event older than one already applied for the same task is
        ignored. ``updates`` sets other fields of the run with the change (attempt, retry_at,
        timeouts). ``unless_claimed``: not while a dispatcher holds the launch claim (a cancel
        must not end a run whose task may be starting at this moment).
        """
        for _ in range(_MAX_RACES):
            run = self.get_run(run_id)
            if run is None:
                raise RunNotFoundError(f"no flow run {run_id!r}")
            current_task = run.infrastructure.get("task_arn")
            if task_arn is not None and current_task is not None and task_arn != current_task:
                return TransitionResult(
                    applied=False,
                    run=run,
                    reason=f"event of task {task_arn}, not of the run's task {current_task}",
                )
            if (
                ecs_version is not None
                and run.ecs_version is not None
                and ecs_version <= run.ecs_version
            ):
                return TransitionResult(
                    applied=False,
                    run=run,
                    reason=f"ECS event version {ecs_version} is not newer than {run.ecs_version}",
                )
            decision = decide(run.state, proposed, source)
            if not decision.applies:
                return TransitionResult(applied=False, run=run, reason=decision.reason)
            now = self.clock()
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
                changes["ecs_version"] = None
            if ecs_version is not None:
                changes["ecs_version"] = ecs_version
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
        raise RuntimeError(f"flow run {run_id!r}: {_MAX_RACES} concurrent changes in a row")

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
        changes = {
            "message": message,
            "attempt": run.attempt + 1,
            "retry_at": retry_at,
        }
        history = {
            "source": Source.DISPATCHER,
            "message": message,
            "details": {"attempt": run.attempt, "reason": reason, **(details or {})},
        }
        return self._write(run, changes, history, now=self.clock(), release_claim=True)

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
        return self._write(run, {**changes, "message": message}, history, now=self.clock())

    def _write(
        self,
        run: FlowRun,
        changes: Mapping[str, Any],
        history: Mapping[str, Any],
        *,
        now: datetime,
        unclaimed_at: datetime | None = None,
        release_claim: bool = False,
    ) -> FlowRun | None:
        """Write one change of a run (its new fields and a history item) in one transaction,
        conditional on the version it was decided from; None when another writer changed the
        run first."""
        state = changes.get("state", run.state)
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
            self.table_name,
            run.version,
            updated,
            remove=("claim_until", "claim_attempt") if release_claim else (),
        )
        if unclaimed_at is not None:
            update["ConditionExpression"] += (
                " AND (attribute_not_exists(claim_until) OR claim_until < :unclaimed_at)"
            )
            update["ExpressionAttributeValues"][":unclaimed_at"] = {"S": unclaimed_at.isoformat()}
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {"Update": update},
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": self._history_item(run.run_id, entry),
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        except self.client.exceptions.TransactionCanceledException as exc:
            if _condition_failed(exc):
                return None
            raise
        return updated

    def claim_launch(self, run_id: str, attempt: int, lease: timedelta) -> LaunchClaim | None:
        """Claim the right to launch a run that is waiting to be launched, for ``lease``.

        Only one dispatcher holds the claim at a time, so two deliveries of the same request
        cannot both launch. A claim whose lease ran out (its dispatcher died mid-launch) can be
        taken over; the launch then reuses the attempt's ``clientToken``, so AWS returns the task
        the first dispatcher may already have started instead of starting another.

        Returns None when another dispatcher holds the claim or the run is no longer waiting;
        otherwise the claim, ``resumed`` when this attempt was claimed before (so it may have
        started a task that must be looked for before starting one).
        """
        now = self.clock()
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
                UpdateExpression="SET claim_until = :until, claim_attempt = :attempt",
                ConditionExpression=(
                    "#state IN (:pending, :scheduled) "
                    "AND (attribute_not_exists(claim_until) OR claim_until < :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":until": {"S": (now + lease).isoformat()},
                    ":attempt": {"N": str(attempt)},
                    ":now": {"S": now.isoformat()},
                    ":pending": {"S": str(RunState.PENDING)},
                    ":scheduled": {"S": str(RunState.SCHEDULED)},
                },
                # ALL_OLD, not UPDATED_OLD: an attribute set to the value it already had is not
                # "updated" for some implementations (moto), which would hide a takeover.
                ReturnValues="ALL_OLD",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        previous = response.get("Attributes", {}).get("claim_attempt", {}).get("N")
        return LaunchClaim(attempt=attempt, resumed=previous == str(attempt))

    def note_pending(self, run_id: str, message: str) -> bool:
        """Say why a waiting run is still waiting (no change of state, no history item).
        False when the run changed meanwhile; the newer state wins."""
        run = self.get_run(run_id)
        if run is None or run.state is not RunState.PENDING:
            return False
        noted = run.model_copy(update={"message": message, "updated_at": self.clock()})
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
                UpdateExpression="SET #run = :run",
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={"#run": "run", "#version": "version"},
                ExpressionAttributeValues={
                    ":run": {"S": noted.model_dump_json()},
                    ":version": {"N": str(run.version)},
                },
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def release_launch(self, run_id: str, *, maybe_launched: bool = False) -> None:
        """Give up a launch claim, so a retry can claim at once. ``maybe_launched``: the launch
        went unanswered, so the attempt is remembered and its retry looks for its task first."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
            UpdateExpression=(
                "REMOVE claim_until" if maybe_launched else "REMOVE claim_until, claim_attempt"
            ),
        )

    def heartbeat(self, run_id: str) -> bool:
        """Record that the run's runner is alive; False when the run is final or unknown."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
                UpdateExpression="SET heartbeat_at = :now",
                ConditionExpression="attribute_exists(active_pk)",
                ExpressionAttributeValues={":now": {"S": self.clock().isoformat()}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def history(self, run_id: str) -> list[HistoryEntry]:
        """Every applied transition of a run, oldest first."""
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}, ":prefix": {"S": "HIST#"}},
            ConsistentRead=True,
        )
        return [HistoryEntry.model_validate_json(item["entry"]["S"]) for item in items]

    def runs_of_flow(self, flow_name: str, limit: int = 50) -> list[FlowRun]:
        """The flow's runs, newest first."""
        items = self._query(
            IndexName="by-flow",
            KeyConditionExpression="flow_pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"FLOW#{flow_name}"}},
            ScanIndexForward=False,
            limit=limit,
        )
        return [_run_from_item(item) for item in items]

    def active_runs(self, state: RunState, entered_before: datetime | None = None) -> list[FlowRun]:
        """Runs in ``state`` (not final), longest in it first; optionally only those that entered
        it before ``entered_before``. Reads the sparse index, never the table."""
        if state.is_final:
            raise ValueError(f"{state} is final: final runs are not in the active index")
        condition = "active_pk = :pk"
        values: dict[str, Any] = {":pk": {"S": f"ACTIVE#{state}"}}
        if entered_before is not None:
            condition += " AND active_sk < :before"
            values[":before"] = {"S": entered_before.isoformat()}
        items = self._query(
            IndexName="active", KeyConditionExpression=condition, ExpressionAttributeValues=values
        )
        return [_run_from_item(item) for item in items]

    # --- flows ---------------------------------------------------------------------------------

    def register_flow(self, registration: FlowRegistration) -> tuple[FlowRegistration, bool]:
        """Store a new version of a flow, or return the latest when its content is unchanged.
        Returns the registration (with its version) and whether a new version was made."""
        registration = registration.with_content_hash()
        for _ in range(_MAX_RACES):
            latest = self.get_flow(registration.name)
            if latest is not None and latest.content_hash == registration.content_hash:
                return latest, False
            version = (latest.version if latest else 0) + 1
            stored = registration.model_copy(
                update={"version": version, "registered_at": self.clock()}
            )
            body = {"S": stored.model_dump_json()}
            pointer_condition = (
                "attribute_not_exists(pk)" if latest is None else "latest_version = :previous"
            )
            pointer: dict[str, Any] = {
                "TableName": self.table_name,
                "Item": {
                    "pk": {"S": f"FLOW#{registration.name}"},
                    "sk": {"S": "LATEST"},
                    "latest_version": {"N": str(version)},
                    "registration": body,
                },
                "ConditionExpression": pointer_condition,
            }
            if latest is not None:
                pointer["ExpressionAttributeValues"] = {":previous": {"N": str(latest.version)}}
            try:
                self.client.transact_write_items(
                    TransactItems=[
                        {"Put": pointer},
                        {
                            "Put": {
                                "TableName": self.table_name,
                                "Item": {
                                    "pk": {"S": f"FLOW#{registration.name}"},
                                    "sk": {"S": f"VERSION#{version:08d}"},
                                    "registration": body,
                                },
                                "ConditionExpression": "attribute_not_exists(pk)",
                            }
                        },
                    ]
                )
            except self.client.exceptions.TransactionCanceledException as exc:
                if _condition_failed(exc):
                    continue
                raise
            return stored, True
        raise RuntimeError(f"flow {registration.name!r}: {_MAX_RACES} concurrent registrations")

    def get_flow(self, name: str, version: int | None = None) -> FlowRegistration | None:
        """A registered flow: the given version, or the latest."""
        sk = "LATEST" if version is None else f"VERSION#{version:08d}"
        item = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"FLOW#{name}"}, "sk": {"S": sk}},
            ConsistentRead=True,
        ).get("Item")
        from flowrelay.core.registration import FlowRegistration

        return FlowRegistration.model_validate_json(item["registration"]["S"]) if item else None

    # --- targets -------------------------------------------------------------------------------

    def put_target(self, target: Target) -> None:
        """Create or replace a launch target."""
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": "TARGET"},
                "sk": {"S": target.name},
                "target": {"S": target.model_dump_json()},
            },
        )

    def get_target(self, name: str) -> Target | None:
        item = self.client.get_item(
            TableName=self.table_name,
            Key={"pk": {"S": "TARGET"}, "sk": {"S": name}},
            ConsistentRead=True,
        ).get("Item")
        from flowrelay.core.routing import Target

        return Target.model_validate_json(item["target"]["S"]) if item else None

    def list_targets(self) -> list[Target]:
        """Every launch target, by name."""
        items = self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "TARGET"}},
            ConsistentRead=True,
        )
        from flowrelay.core.routing import Target

        return [Target.model_validate_json(item["target"]["S"]) for item in items]

    def delete_target(self, name: str) -> bool:
        """Remove a target; False when there was none."""
        response = self.client.delete_item(
            TableName=self.table_name,
            Key={"pk": {"S": "TARGET"}, "sk": {"S": name}},
            ReturnValues="ALL_OLD",
        )
        return "Attributes" in response

    def _query(self, limit: int | None = None, **query: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, **query):
            items.extend(page.get("Items", []))
            if limit is not None and len(items) >= limit:
                return items[:limit]
        return items

    def _history_item(self, run_id: str, entry: HistoryEntry) -> dict[str, Any]:
        expires = int((entry.at + HISTORY_RETENTION).timestamp())
        return {
            "pk": {"S": f"RUN#{run_id}"},
            "sk": {"S": f"HIST#{entry.version:08d}"},
            "entry": {"S": entry.model_dump_json()},
            "expires_at": {"N": str(expires)},
        }


def _run_item(run: FlowRun) -> dict[str, Any]:
    """The run as a DynamoDB item: key and index attributes, plus the whole run as JSON (numbers
    in parameters stay exact; DynamoDB would need Decimals for them)."""
    item: dict[str, Any] = {
        "pk": {"S": f"RUN#{run.run_id}"},
        "sk": {"S": "RUN"},
        "run": {"S": run.model_dump_json()},
        "version": {"N": str(run.version)},
        "state": {"S": str(run.state)},
        "flow_pk": {"S": f"FLOW#{run.flow_name}"},
        "flow_sk": {"S": f"{run.created_at.isoformat()}#{run.run_id}"},
    }
    if run.state.is_active:
        item["active_pk"] = {"S": f"ACTIVE#{run.state}"}
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
    item = _run_item(run)
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


def _run_from_item(item: Mapping[str, Any]) -> FlowRun:
    run = FlowRun.model_validate_json(item["run"]["S"])
    heartbeat = item.get("heartbeat_at")
    if heartbeat is not None:
        run.heartbeat_at = datetime.fromisoformat(heartbeat["S"])
    claim = item.get("claim_until")
    if claim is not None:
        run.claimed_until = datetime.fromisoformat(claim["S"])
    attempt = item.get("claim_attempt")
    if attempt is not None:
        run.claimed_attempt = int(attempt["N"])
    return run


def _condition_failed(exc: Any) -> bool:
    reasons = exc.response.get("CancellationReasons", [])
    return any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons)
