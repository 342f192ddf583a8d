"""EventBridge Scheduler for the dev stack: the schedules moto stores, fired as AWS fires them.

moto keeps schedules and schedule groups (CreateSchedule, GetSchedule, ListSchedules, ...) but
never fires one. ``SchedulerLoop`` does: every tick it lists each schedule group's ENABLED
schedules through the Scheduler API, computes each one's fire times since it last looked
(``flowrelay.control.fire_times``: cron in the schedule's time zone with AWS's daylight-saving
rule, rate from StartDate or creation, at once), and delivers each fire as EventBridge Scheduler
delivers it:

- the target's ``Input`` with the context attributes filled in: ``<aws.scheduler.schedule-arn>``
  (the schedule's ARN), ``<aws.scheduler.scheduled-time>`` (the fire's time, UTC to the second:
  ``2026-03-29T02:30:00Z``), ``<aws.scheduler.execution-id>`` (16 hex digits, new for every
  attempt) and ``<aws.scheduler.attempt-number>`` (``1``);
- to an EventBridge bus (templated target: Arn ``arn:aws:events:...:event-bus/<name>`` with
  ``EventBridgeParameters`` {DetailType, Source}) as one PutEvents entry whose Detail is that
  input; to an SQS queue (``arn:aws:sqs:...``) as one SendMessage whose body it is;
- a fire it cannot deliver (PutEvents or SendMessage refused, a target kind the dev stack does
  not emulate) goes to the schedule's ``DeadLetterConfig`` queue when it has one, with the
  message attributes EventBridge Scheduler puts on a dead-letter event (ERROR_CODE,
  ERROR_MESSAGE, EXECUTION_ID, IS_PAYLOAD_TRUNCATED, RETRY_ATTEMPTS, SCHEDULED_TIME, SCHEDULE_ARN,
  TARGET_ARN; the body is the payload), else it is logged and dropped;
- a one-time ``at(...)`` schedule with ``ActionAfterCompletion`` DELETE is deleted once it fired.

Time runs on a ``VirtualClock``: ``clock_speed`` times faster than real time from the moment the
stack started, so with 3600 an hourly schedule fires every second. StartDate, EndDate and at()
times are dates on that clock (it reads the real date at start); CreationDate and
LastModificationDate, which moto stamps in real time, are mapped onto it. Fires come in ticks
(every ``tick_seconds``): a fire is delivered at the first tick at or after its time, with its
own scheduled time. A schedule is looked at from its last modification (or the stack's start,
whichever is later): what it would have fired while DISABLED, or before it existed, is not
delivered.

For tests and the demo: ``fire_next(group, name)`` delivers a schedule's next fire now (after
catching up with what is due), and ``redeliver(group, name, scheduled_time)`` sends a fire
again with the same scheduled time, as EventBridge Scheduler's at-least-once delivery may.

What differs from AWS is in docs/devstack.md ("EventBridge Scheduler"): no retries (a failure is
dead-lettered at once, RETRY_ATTEMPTS 0), FlexibleTimeWindow ignored (every fire at its time),
only bus and queue targets.

>>> clock = VirtualClock(3600, origin=datetime(2026, 1, 1, tzinfo=UTC))
>>> clock.virtual(datetime(2026, 1, 1, 0, 0, 2, tzinfo=UTC)).isoformat()
'2026-01-01T02:00:00+00:00'
>>> fill_input('{"at": "<aws.scheduler.scheduled-time>", "try": <aws.scheduler.attempt-number>}',
...     schedule_arn="arn:aws:scheduler:us-east-1:123456789012:schedule/g/s",
...     scheduled_time=datetime(2026, 3, 29, 0, 30, tzinfo=UTC), execution_id="0f3a", attempt=1)
'{"at": "2026-03-29T00:30:00Z", "try": 1}'
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from flowrelay.control.fire_times import fire_times, scheduled_time_text

#: The context attributes EventBridge Scheduler fills in a target's input.
SCHEDULE_ARN = "<aws.scheduler.schedule-arn>"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
EXECUTION_ID = "<aws.scheduler.execution-id>"
ATTEMPT_NUMBER = "<aws.scheduler.attempt-number>"
#: The dead-letter event's ERROR_CODE for a target the dev stack does not deliver to (on AWS
#: Scheduler would; this is the dev stack's own code, so it is not mistaken for an AWS answer).
NOT_EMULATED = "FlowrelayDevStack.TargetNotEmulated"
#: At most this many fires of one schedule per tick: a faster clock catches up over more ticks.
MAX_FIRES_PER_TICK = 1000
#: How many fires the loop remembers (``fires``), for ``redeliver`` and tests.
HISTORY = 10_000
_BEFORE = timedelta(microseconds=1)

Outcome = Literal["delivered", "dead-lettered", "dropped"]


def fill_input(
    text: str,
    *,
    schedule_arn: str,
    scheduled_time: datetime,
    execution_id: str,
    attempt: int,
) -> str:
    """``text`` (a target's Input) with the ``<aws.scheduler.*>`` keywords replaced, as plain
    text wherever they are (AWS replaces "each keyword with its respective value")."""
    return (
        text.replace(SCHEDULE_ARN, schedule_arn)
        .replace(SCHEDULED_TIME, scheduled_time_text(scheduled_time))
        .replace(EXECUTION_ID, execution_id)
        .replace(ATTEMPT_NUMBER, str(attempt))
    )


def new_execution_id() -> str:
    """An execution id as EventBridge Scheduler's look (``ad06616e51cdf74a``): 16 hex digits."""
    return secrets.token_hex(8)


class VirtualClock:
    """Time ``speed`` times faster than real time from ``origin`` (default: now): at real time
    ``origin + s`` it is ``origin + speed * s``.

    >>> VirtualClock(60, origin=datetime(2026, 1, 1, tzinfo=UTC)).virtual(
    ...     datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)).isoformat()
    '2026-01-01T00:30:00+00:00'
    """

    def __init__(
        self,
        speed: float = 1.0,
        *,
        origin: datetime | None = None,
        real: Callable[[], datetime] | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"clock speed must be more than 0, not {speed}")
        self.speed = speed
        self._real = real or (lambda: datetime.now(UTC))
        self.origin = (origin or self._real()).astimezone(UTC)

    def virtual(self, real: datetime) -> datetime:
        """The clock's time when the real time is ``real``."""
        return self.origin + (real.astimezone(UTC) - self.origin) * self.speed

    def now(self) -> datetime:
        """The clock's time now. Real wall time, not monotonic time, is scaled, so that a
        schedule's CreationDate (wall time, from moto) lands where ``now()`` was then."""
        return self.virtual(self._real())


@dataclass(frozen=True)
class Fire:
    """One delivery of one fire: which schedule, its scheduled time, and what became of it."""

    group: str
    name: str
    schedule_arn: str
    scheduled_time: datetime
    execution_id: str
    attempt: int
    outcome: Outcome
    #: Why it was not delivered (``ERROR_CODE: ERROR_MESSAGE``); None when it was.
    reason: str | None = None
    #: What was sent (the filled Input).
    payload: str = ""
    #: The schedule as GetSchedule described it when it fired (for ``redeliver``).
    schedule: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def scheduled_time_text(self) -> str:
        return scheduled_time_text(self.scheduled_time)


class Undeliverable(Exception):
    """A target refused a fire, or cannot be reached from here: AWS's error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SchedulerLoop(threading.Thread):
    """Fires the schedules moto stores (module docstring). ``client(service)`` makes boto3
    clients for the stack's moto.

    >>> loop = SchedulerLoop(client, stopping=stopping, say=print,   # doctest: +SKIP
    ...                      clock=VirtualClock(3600))
    >>> loop.start(); loop.fire_next("my-group", "nightly")          # doctest: +SKIP
    datetime.datetime(2026, 3, 30, 0, 30, tzinfo=datetime.timezone.utc)
    """

    def __init__(
        self,
        client: Callable[[str], Any],
        *,
        stopping: threading.Event,
        say: Callable[[str], None],
        clock: VirtualClock,
        tick_seconds: float = 0.2,
    ) -> None:
        super().__init__(name="devstack-eventbridge-scheduler", daemon=True)
        self.scheduler = client("scheduler")
        self.events = client("events")
        self.sqs = client("sqs")
        self.stopping = stopping
        self.say = say
        self.clock = clock
        self.tick_seconds = tick_seconds
        #: Every fire delivered, dead-lettered or dropped, oldest first (the last ``HISTORY``).
        self.fires: list[Fire] = []
        self._lock = threading.RLock()
        #: Per schedule ARN: the clock time up to which its fires are done.
        self._done: dict[str, datetime] = {}
        #: Per schedule ARN: (LastModificationDate, GetSchedule's answer).
        self._definitions: dict[str, tuple[Any, dict[str, Any]]] = {}
        #: Schedules whose expression could not be read, told once each.
        self._told: set[tuple[str, Any]] = set()

    # --- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.tick()
            except Exception as exc:  # a dev stack must not die on one error
                if self.stopping.is_set():
                    return
                self.say(f"scheduler: tick failed: {exc!r}")
            self.stopping.wait(self.tick_seconds)

    def tick(self) -> list[Fire]:
        """One pass: deliver every ENABLED schedule's fires up to the clock's now."""
        fired: list[Fire] = []
        enabled: set[str] = set()
        # The whole pass under the lock: a fire_next between the listing and the forgetting
        # below would otherwise be forgotten, and its fires delivered again.
        with self._lock:
            now = self.clock.now()
            for summary in self._enabled_summaries():
                enabled.add(summary["Arn"])
                try:
                    schedule = self._definition(summary)
                except self.scheduler.exceptions.ResourceNotFoundException:
                    continue  # deleted since it was listed
                fired += self._catch_up(schedule, now)
            # A schedule disabled or deleted is looked at afresh from its next modification.
            for arn in set(self._done) - enabled:
                self._done.pop(arn, None)
                self._definitions.pop(arn, None)
        return fired

    # --- for tests and the demo ---------------------------------------------------------------

    def fire_next(self, group: str, name: str) -> datetime:
        """Deliver the schedule's next fire now, before the clock reaches it (what is due is
        delivered first); its scheduled time. ``LookupError`` when it has no next fire,
        ``ValueError`` when it is DISABLED (a disabled schedule does not fire)."""
        schedule = self.scheduler.get_schedule(GroupName=group, Name=name)
        if schedule.get("State", "ENABLED") == "DISABLED":
            raise ValueError(
                f"schedule {group}/{name} is DISABLED: a disabled schedule does not fire"
            )
        with self._lock:
            now = self.clock.now()
            self._catch_up(schedule, now)
            if self._gone(schedule):
                raise LookupError(f"schedule {group}/{name} fired its last fire and was deleted")
            after = max(now, self._after(schedule))
            following = self._fire_times(schedule, after=after, count=1)
            if not following:
                raise LookupError(f"schedule {group}/{name} has no fire after {after.isoformat()}")
            self._deliver_all(schedule, following)
            return following[0]

    def redeliver(
        self,
        group: str,
        name: str,
        scheduled_time: datetime | None = None,
        *,
        attempt: int | None = None,
    ) -> Fire:
        """Send a fire of the schedule again, with the same scheduled time (default: its last
        fire) and a new execution id, as the schedule was when it first fired (even if it was
        deleted since). ``attempt`` defaults to the earlier delivery's plus one, as a retry's.
        ``LookupError`` when the loop has not delivered that fire."""
        with self._lock:
            earlier = [
                fire
                for fire in self.fires
                if fire.group == group
                and fire.name == name
                and (scheduled_time is None or fire.scheduled_time == scheduled_time)
            ]
            if not earlier:
                when = (
                    "" if scheduled_time is None else f" at {scheduled_time_text(scheduled_time)}"
                )
                raise LookupError(f"schedule {group}/{name} has no fire{when} to deliver again")
            first = earlier[-1]
            return self._deliver(
                first.schedule,
                first.scheduled_time,
                attempt=attempt if attempt is not None else first.attempt + 1,
            )

    def fires_of(self, group: str, name: str) -> list[Fire]:
        """The schedule's fires so far, oldest first."""
        with self._lock:
            return [fire for fire in self.fires if fire.group == group and fire.name == name]

    # --- schedules ----------------------------------------------------------------------------

    def _enabled_summaries(self) -> Iterator[dict[str, Any]]:
        groups = self.scheduler.get_paginator("list_schedule_groups")
        schedules = self.scheduler.get_paginator("list_schedules")
        for page in groups.paginate():
            for group in page.get("ScheduleGroups", []):
                for listed in schedules.paginate(GroupName=group["Name"], State="ENABLED"):
                    yield from listed.get("Schedules", [])

    def _definition(self, summary: dict[str, Any]) -> dict[str, Any]:
        """GetSchedule's answer for a listed schedule (ListSchedules leaves out the target),
        asked again only when the schedule was modified."""
        arn = summary["Arn"]
        modified = summary.get("LastModificationDate")
        cached = self._definitions.get(arn)
        if cached is not None and cached[0] == modified:
            return cached[1]
        schedule: dict[str, Any] = self.scheduler.get_schedule(
            GroupName=summary["GroupName"], Name=summary["Name"]
        )
        schedule.pop("ResponseMetadata", None)
        self._definitions[arn] = (modified, schedule)
        return schedule

    def _after(self, schedule: dict[str, Any]) -> datetime:
        """The clock time after which the schedule's fires are still to deliver: where the loop
        left off, else its last modification (creation) on this clock, but not before the
        stack started."""
        done = self._done.get(schedule["Arn"])
        if done is not None:
            return done
        modified = schedule.get("LastModificationDate") or schedule.get("CreationDate")
        since = self.clock.virtual(modified) if isinstance(modified, datetime) else self.clock.now()
        return max(since, self.clock.origin) - _BEFORE

    def _fire_times(
        self,
        schedule: dict[str, Any],
        *,
        after: datetime,
        until: datetime | None = None,
        count: int | None = None,
    ) -> list[datetime]:
        expression = str(schedule.get("ScheduleExpression", ""))
        start = schedule.get("StartDate")
        if start is None and expression.startswith("rate("):
            # "If you do not provide a StartDate for a rate-based schedule, your schedule starts
            # invoking the target immediately": at its creation, on this clock.
            created = schedule.get("CreationDate")
            start = self.clock.virtual(created) if isinstance(created, datetime) else None
        try:
            return fire_times(
                expression,
                schedule.get("ScheduleExpressionTimezone") or "UTC",
                after=after,
                until=until,
                count=count,
                start_date=start,
                end_date=schedule.get("EndDate"),
            )
        except ValueError as exc:
            told = (schedule["Arn"], schedule.get("LastModificationDate"))
            if told not in self._told:
                self._told.add(told)
                self.say(f"scheduler: {_label(schedule)}: not fired: {exc}")
            return []

    def _catch_up(self, schedule: dict[str, Any], now: datetime) -> list[Fire]:
        """Deliver the schedule's fires up to ``now`` (at most ``MAX_FIRES_PER_TICK``)."""
        arn = schedule["Arn"]
        after = self._after(schedule)
        due = self._fire_times(schedule, after=after, until=now, count=MAX_FIRES_PER_TICK)
        fired = self._deliver_all(schedule, due)
        if len(due) < MAX_FIRES_PER_TICK:  # all that was due: done up to now (or later, when
            # fire_next delivered a fire ahead of the clock)
            self._done[arn] = max(self._done.get(arn, after), now)
        return fired

    def _deliver_all(self, schedule: dict[str, Any], times: list[datetime]) -> list[Fire]:
        fired = [self._deliver(schedule, when, attempt=1) for when in times]
        if times:
            self._done[schedule["Arn"]] = max(self._done.get(schedule["Arn"], times[-1]), times[-1])
            delivered = sum(fire.outcome == "delivered" for fire in fired)
            span = scheduled_time_text(times[0])
            if len(times) > 1:
                span += f" .. {scheduled_time_text(times[-1])}"
            self.say(
                f"scheduler: {_label(schedule)}: {len(times)} fire(s) {span}, {delivered} "
                f"delivered to {_short_arn(schedule.get('Target', {}).get('Arn', '?'))}"
            )
            self._complete(schedule)
        return fired

    def _complete(self, schedule: dict[str, Any]) -> None:
        """A one-time schedule that fired, with ActionAfterCompletion DELETE, is deleted."""
        expression = str(schedule.get("ScheduleExpression", ""))
        if not expression.startswith("at(") or schedule.get("ActionAfterCompletion") != "DELETE":
            return
        with contextlib.suppress(self.scheduler.exceptions.ResourceNotFoundException):
            self.scheduler.delete_schedule(GroupName=schedule["GroupName"], Name=schedule["Name"])
        self._definitions.pop(schedule["Arn"], None)
        self.say(f"scheduler: {_label(schedule)}: completed and deleted (ActionAfterCompletion)")

    def _gone(self, schedule: dict[str, Any]) -> bool:
        try:
            self.scheduler.get_schedule(GroupName=schedule["GroupName"], Name=schedule["Name"])
        except self.scheduler.exceptions.ResourceNotFoundException:
            return True
        return False

    # --- delivery -----------------------------------------------------------------------------

    def _deliver(self, schedule: dict[str, Any], scheduled: datetime, *, attempt: int) -> Fire:
        target: dict[str, Any] = schedule.get("Target") or {}
        execution_id = new_execution_id()
        payload = fill_input(
            str(target.get("Input") or ""),
            schedule_arn=schedule["Arn"],
            scheduled_time=scheduled,
            execution_id=execution_id,
            attempt=attempt,
        )
        outcome: Outcome = "delivered"
        reason: str | None = None
        try:
            self._invoke(target, payload)
        except Undeliverable as failed:
            reason = str(failed)
            outcome = self._dead_letter(schedule, scheduled, execution_id, payload, failed)
        fire = Fire(
            group=str(schedule.get("GroupName") or "default"),
            name=str(schedule.get("Name")),
            schedule_arn=schedule["Arn"],
            scheduled_time=scheduled,
            execution_id=execution_id,
            attempt=attempt,
            outcome=outcome,
            reason=reason,
            payload=payload,
            schedule=schedule,
        )
        self.fires.append(fire)
        del self.fires[:-HISTORY]
        if outcome != "delivered":
            self.say(
                f"scheduler: {_label(schedule)}: fire {fire.scheduled_time_text} not delivered "
                f"({reason}): {outcome}"
            )
        return fire

    def _invoke(self, target: dict[str, Any], payload: str) -> None:
        """Call the target as EventBridge Scheduler's templated target does; ``Undeliverable``
        with the service's error code and message when it refuses."""
        arn = str(target.get("Arn", ""))
        parts = arn.split(":", 5)
        service = parts[2] if len(parts) == 6 else ""
        resource = parts[5] if len(parts) == 6 else ""
        try:
            if service == "events" and resource.startswith("event-bus/"):
                self._put_event(arn, target, payload)
            elif service == "sqs":
                url = self.sqs.get_queue_url(QueueName=resource, QueueOwnerAWSAccountId=parts[4])
                message: dict[str, Any] = {"QueueUrl": url["QueueUrl"], "MessageBody": payload}
                group = (target.get("SqsParameters") or {}).get("MessageGroupId")
                if group:
                    message["MessageGroupId"] = group
                self.sqs.send_message(**message)
            else:
                raise Undeliverable(
                    NOT_EMULATED,
                    f"the dev stack delivers schedule fires to EventBridge buses and SQS queues "
                    f"only, not to {arn or 'a target without an Arn'}",
                )
        except Undeliverable:
            raise
        except Exception as exc:  # botocore's ClientError and the like: the service said no
            response = getattr(exc, "response", None) or {}
            error = response.get("Error", {}) if isinstance(response, dict) else {}
            raise Undeliverable(
                str(error.get("Code") or type(exc).__name__),
                str(error.get("Message") or exc),
            ) from exc

    def _put_event(self, bus_arn: str, target: dict[str, Any], payload: str) -> None:
        parameters = target.get("EventBridgeParameters") or {}
        if not parameters.get("DetailType") or not parameters.get("Source"):
            raise Undeliverable(
                "ValidationException",
                "an EventBridge target needs EventBridgeParameters with DetailType and Source",
            )
        answer = self.events.put_events(
            Entries=[
                {
                    "EventBusName": bus_arn,
                    "Source": parameters["Source"],
                    "DetailType": parameters["DetailType"],
                    "Detail": payload or "{}",
                }
            ]
        )
        if answer.get("FailedEntryCount"):
            (entry,) = answer["Entries"]
            raise Undeliverable(
                str(entry.get("ErrorCode") or "FailedEntry"), str(entry.get("ErrorMessage") or "")
            )

    def _dead_letter(
        self,
        schedule: dict[str, Any],
        scheduled: datetime,
        execution_id: str,
        payload: str,
        failed: Undeliverable,
    ) -> Outcome:
        """Send the failed fire to the schedule's DLQ as EventBridge Scheduler's dead-letter
        event; "dead-lettered", or "dropped" when there is no DLQ or it cannot be reached."""
        target = schedule.get("Target") or {}
        dlq = str((target.get("DeadLetterConfig") or {}).get("Arn") or "")
        if not dlq:
            return "dropped"
        attributes = {
            "ERROR_CODE": failed.code,
            "ERROR_MESSAGE": failed.message or failed.code,
            "EXECUTION_ID": execution_id,
            # No retries here: every failure is dead-lettered at its first attempt, and AWS sets
            # EXHAUSTED_RETRY_CONDITION only once retries of a retryable error ran out.
            "IS_PAYLOAD_TRUNCATED": "false",
            "RETRY_ATTEMPTS": "0",
            "SCHEDULED_TIME": scheduled_time_text(scheduled),
            "SCHEDULE_ARN": schedule["Arn"],
            "TARGET_ARN": str(target.get("Arn", "")),
        }
        parts = dlq.split(":", 5)
        try:
            url = self.sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])
            self.sqs.send_message(
                QueueUrl=url["QueueUrl"],
                MessageBody=payload or "{}",
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in attributes.items()
                },
            )
        except Exception as exc:
            self.say(f"scheduler: {_label(schedule)}: dead-letter queue {dlq} refused: {exc!r}")
            return "dropped"
        return "dead-lettered"


def _label(schedule: dict[str, Any]) -> str:
    return f"{schedule.get('GroupName') or 'default'}/{schedule.get('Name')}"


def _short_arn(arn: str) -> str:
    """``event-bus/<name>`` or the queue's name: enough to tell targets apart in a log line."""
    return arn.split(":", 5)[-1] if arn.count(":") >= 5 else arn


def wait_for_fires(
    loop: SchedulerLoop, group: str, name: str, count: int, timeout: float = 30.0
) -> list[Fire]:
    """The schedule's first ``count`` fires once the loop has made them; ``TimeoutError`` after
    ``timeout`` real seconds."""
    deadline = time.monotonic() + timeout
    while True:
        fires = loop.fires_of(group, name)
        if len(fires) >= count:
            return fires[:count]
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"schedule {group}/{name} fired {len(fires)} time(s) in {timeout:g} s, not {count}"
            )
        time.sleep(0.05)


__all__ = [
    "Fire",
    "SchedulerLoop",
    "Undeliverable",
    "VirtualClock",
    "fill_input",
    "wait_for_fires",
]
