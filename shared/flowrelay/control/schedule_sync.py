"""A flow registration's schedule as EventBridge Scheduler schedules: one per clock, in the stack's
schedule group, each putting a "Flow Run Requested" on the flowrelay bus when it fires.

Registering is idempotent: ``sync`` creates the schedules a registration's clocks need, updates
those whose expression, time zone, dates or input changed (keeping a paused schedule paused),
and deletes the flow's schedules no clock needs any more; registering the same flow twice changes
nothing. A fire becomes exactly one run, however often it is delivered: the request's
idempotency key is ``schedule:<schedule name>:<aws.scheduler.scheduled-time>``, which EventBridge
Scheduler fills with the fire's scheduled time, the same on every retry and redelivery.

>>> schedule_name("nightly-etl", "clock-1")
'fr-nightly-etl-1074352f-clock-1'
>>> scheduled_by("schedule:fr-nightly-etl-1074352f-clock-1:2026-11-29T09:00:00Z")
('fr-nightly-etl-1074352f-clock-1', '2026-11-29T09:00:00Z')
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field

from flowrelay.control.fire_times import fire_times
from flowrelay.core.events import SOURCE, FlowRunRequested
from flowrelay.core.modeling import Model
from flowrelay.core.registration import FlowRegistration
from flowrelay.core.schedules import ClockSpec, rate_interval

#: Every schedule flowrelay makes starts with this (and a flow's with its own prefix).
NAME_PREFIX = "fr-"
#: EventBridge Scheduler's limit on a schedule's name.
MAX_NAME = 64
#: The placeholder EventBridge Scheduler fills with a fire's scheduled time.
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
KEY_PREFIX = "schedule:"
_NOT_NAME = re.compile(r"[^0-9A-Za-z_.-]+")


class ScheduleTarget(Model):
    """Where a stack's schedules live and what they do: its schedule group, the bus they put
    requests on, the role EventBridge Scheduler assumes for it, and the queue for fires it could
    not deliver (the stack's ``ScheduleGroupName``, ``BusArn``, ``SchedulerRoleArn`` and
    ``ScheduleDLQArn`` outputs)."""

    group: str = Field(min_length=1)
    bus_arn: str = Field(min_length=1)
    role_arn: str = Field(min_length=1)
    dlq_arn: str | None = None

    @classmethod
    def of_stack(cls, outputs: Mapping[str, str]) -> ScheduleTarget | None:
        """The stack's, from its outputs; None for a stack without a schedule group."""
        if not outputs.get("ScheduleGroupName"):
            return None
        return cls(
            group=outputs["ScheduleGroupName"],
            bus_arn=outputs["BusArn"],
            role_arn=outputs["SchedulerRoleArn"],
            dlq_arn=outputs.get("ScheduleDLQArn") or None,
        )


class SyncReport(Model):
    """What a sync did, by schedule name."""

    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    deleted: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)
    skipped: list[str] = Field(
        default_factory=list, description="Clocks that need no schedule, each with why."
    )

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted)


def flow_prefix(flow_name: str) -> str:
    """The prefix of every schedule of ``flow_name``: ``fr-<cleaned name>-<8 hex of its
    sha256>-`` (the hash tells apart flows whose names clean to the same text)."""
    slug = _NOT_NAME.sub("-", flow_name).strip("-")[:30].strip("-") or "flow"
    digest = hashlib.sha256(flow_name.encode("utf-8")).hexdigest()[:8]
    return f"{NAME_PREFIX}{slug}-{digest}-"


def schedule_name(flow_name: str, clock_name: str) -> str:
    """The schedule of one clock of a flow (at most 64 characters)."""
    prefix = flow_prefix(flow_name)
    clock = _NOT_NAME.sub("-", clock_name).strip("-") or "clock"
    name = prefix + clock
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(clock_name.encode("utf-8")).hexdigest()[:8]
        name = prefix + clock[: MAX_NAME - len(prefix) - 9] + "-" + digest
    return name


def scheduled_by(idempotency_key: str | None) -> tuple[str, str] | None:
    """The schedule and scheduled time a run's idempotency key says it came from; None for a
    run that did not come from a schedule."""
    if not idempotency_key or not idempotency_key.startswith(KEY_PREFIX):
        return None
    schedule, _, scheduled = idempotency_key[len(KEY_PREFIX) :].partition(":")
    return (schedule, scheduled) if schedule and scheduled else None


def request_input(registration: FlowRegistration, name: str, clock: ClockSpec) -> str:
    """The "Flow Run Requested" detail a clock's schedule puts on the bus, as the schedule's
    Input (with the scheduled-time placeholder in its idempotency key)."""
    request = FlowRunRequested(
        flow=registration.name,
        version=registration.version,
        parameters=dict(clock.parameters),
        labels=list(clock.labels) if clock.labels else None,
        idempotency_key=f"{KEY_PREFIX}{name}:{SCHEDULED_TIME}",
        requested_by=f"schedule {name}",
    )
    detail = request.model_dump(mode="json", exclude_none=True)
    return json.dumps(detail, sort_keys=True, separators=(",", ":"))


#: Where a rate clock without a start counts from (the seeds' engine's anchor): a fixed phase,
#: so a schedule made again (a new version) keeps its times instead of starting anew.
RATE_ANCHOR = datetime(2019, 1, 1, tzinfo=UTC)


def effective(clock: ClockSpec) -> ClockSpec:
    """``clock`` as its schedule is made: a rate clock without a start is anchored."""
    if clock.kind == "rate" and clock.start_date is None:
        return clock.model_copy(update={"start_date": RATE_ANCHOR})
    return clock


def why_none(clock: ClockSpec, now: datetime) -> str | None:
    """Why ``clock`` needs no schedule at ``now`` (nothing is left for it to fire), or None."""
    if clock.end_date is not None and clock.end_date <= now:
        return f"{clock.name}: its end date {clock.end_date.isoformat()} has passed"
    start = clock.start_date_for(now)
    if start is not None and clock.end_date is not None and start > clock.end_date:
        return f"{clock.name}: it would next fire after its end date"
    if clock.kind == "at" and not fire_times(clock.expression, clock.timezone, after=now, count=1):
        return f"{clock.name}: {clock.expression} is past, or a local time that does not exist"
    return None


def desired(
    registration: FlowRegistration | None,
    target: ScheduleTarget,
    now: datetime,
    skipped: list[str] | None = None,
) -> dict[str, tuple[ClockSpec, dict[str, Any]]]:
    """The schedules a registration needs at ``now``, by name: each clock (as its schedule is
    made) and CreateSchedule's arguments for it. A clock with nothing left to fire (its end
    date passed, a one-time moment past) needs none; why goes in ``skipped``."""
    schedule = registration.schedule if registration is not None else None
    if registration is None or schedule is None:
        return {}
    wanted: dict[str, tuple[ClockSpec, dict[str, Any]]] = {}
    for given in schedule.clocks:
        clock = effective(given)
        why = why_none(clock, now)
        if why is not None:
            if skipped is not None:
                skipped.append(why)
            continue
        name = schedule_name(registration.name, clock.name)
        if name in wanted:
            raise ValueError(
                f"clocks {wanted[name][0].name!r} and {clock.name!r} would share schedule "
                f"{name!r}: rename one"
            )
        request: dict[str, Any] = {
            "Name": name,
            "GroupName": target.group,
            "ScheduleExpression": clock.expression,
            "ScheduleExpressionTimezone": clock.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Description": f"flowrelay: flow {registration.name!r} version "
            f"{registration.version}, clock {clock.name!r}"[:512],
            "Target": {
                "Arn": target.bus_arn,
                "RoleArn": target.role_arn,
                "Input": request_input(registration, name, clock),
                "EventBridgeParameters": {
                    "DetailType": FlowRunRequested.DETAIL_TYPE,
                    "Source": SOURCE,
                },
                # Retried for a day; what still cannot be delivered goes to the DLQ.
                "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
            },
        }
        if target.dlq_arn:
            request["Target"]["DeadLetterConfig"] = {"Arn": target.dlq_arn}
        start = clock.start_date_for(now)
        if start is not None:
            # Whole seconds, as AWS keeps them (a start rounded up, an end down: never wider).
            request["StartDate"] = _whole_second(start, up=True)
        if clock.end_date is not None:
            request["EndDate"] = _whole_second(clock.end_date, up=False)
        if clock.kind == "at":
            request["ActionAfterCompletion"] = "DELETE"
        wanted[name] = (clock, request)
    return wanted


def sync(
    scheduler: Any,
    flow_name: str,
    registration: FlowRegistration | None,
    target: ScheduleTarget,
    now: datetime | None = None,
) -> SyncReport:
    """Make the flow's schedules in ``target.group`` what ``registration`` says (None, or a
    registration without a schedule: none). Idempotent."""
    report = SyncReport()
    wanted = desired(registration, target, now or datetime.now(UTC), report.skipped)
    existing = {item["Name"]: item for item in _owned(scheduler, target.group, flow_name)}
    for name, (clock, request) in wanted.items():
        current = existing.get(name)
        if current is None:
            scheduler.create_schedule(State="ENABLED", **request)
            report.created.append(name)
            continue
        if _same(current, request, clock):
            report.unchanged.append(name)
            continue
        # A paused schedule stays paused: registering a new version is not resuming it.
        scheduler.update_schedule(State=current.get("State") or "ENABLED", **request)
        report.updated.append(name)
    for name in existing:
        if name not in wanted:
            scheduler.delete_schedule(GroupName=target.group, Name=name)
            report.deleted.append(name)
    return report


def set_state(
    scheduler: Any, target: ScheduleTarget, flow_name: str, clock: str | None, enabled: bool
) -> list[str]:
    """Pause (``enabled=False``) or resume a flow's schedules, or one clock's; the names
    changed. ``LookupError`` naming the flow or clock when there is no such schedule."""
    owned = _owned(scheduler, target.group, flow_name)
    if clock is not None:
        wanted = schedule_name(flow_name, clock)
        owned = [current for current in owned if current["Name"] == wanted]
    if not owned:
        what = f"clock {clock!r} of flow {flow_name!r}" if clock else f"flow {flow_name!r}"
        raise LookupError(f"no schedule for {what} in schedule group {target.group!r}")
    changed = []
    state = "ENABLED" if enabled else "DISABLED"
    for current in owned:
        name = current["Name"]
        if current.get("State") == state:
            continue
        keep = {
            key: current[key]
            for key in (
                "ScheduleExpression",
                "ScheduleExpressionTimezone",
                "FlexibleTimeWindow",
                "Target",
                "EndDate",
                "Description",
                "ActionAfterCompletion",
            )
            if current.get(key) is not None
        }
        # AWS refuses a start more than 5 minutes past: moved on as registration moves it.
        start = _instant(current.get("StartDate"))
        if start is not None and not current["ScheduleExpression"].startswith("at("):
            moved = ClockSpec(
                name="clock", expression=current["ScheduleExpression"], start_date=start
            ).start_date_for(datetime.now(UTC))
            if moved is not None:
                keep["StartDate"] = _whole_second(moved, up=True)
        scheduler.update_schedule(GroupName=target.group, Name=name, State=state, **keep)
        changed.append(name)
    return changed


def schedules_of(
    scheduler: Any, target: ScheduleTarget, flow_name: str | None
) -> list[dict[str, Any]]:
    """The stack's flowrelay schedules (of one flow), each as GetSchedule describes it."""
    if flow_name:
        return _owned(scheduler, target.group, flow_name)
    return [
        scheduler.get_schedule(GroupName=target.group, Name=item["Name"])
        for item in _list(scheduler, target.group, NAME_PREFIX)
    ]


def _owned(scheduler: Any, group: str, flow_name: str) -> list[dict[str, Any]]:
    """The flow's schedules, as GetSchedule describes them: its prefix, and a request for this
    very flow (another flow's name may be made to start with this one's prefix: its schedules
    are not this flow's)."""
    owned = []
    for item in _list(scheduler, group, flow_prefix(flow_name)):
        schedule = scheduler.get_schedule(GroupName=group, Name=item["Name"])
        try:
            request = json.loads((schedule.get("Target") or {}).get("Input") or "{}")
        except ValueError:
            continue
        if isinstance(request, dict) and request.get("flow") == flow_name:
            owned.append(schedule)
    return owned


def _whole_second(moment: datetime, *, up: bool) -> datetime:
    whole = moment.replace(microsecond=0)
    return whole + timedelta(seconds=1) if up and whole < moment else whole


def _list(scheduler: Any, group: str, prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    paginator = scheduler.get_paginator("list_schedules")
    for page in paginator.paginate(GroupName=group, NamePrefix=prefix):
        items.extend(page.get("Schedules", []))
    return items


def _same(current: Mapping[str, Any], request: Mapping[str, Any], clock: ClockSpec) -> bool:
    """Whether an existing schedule already is what ``request`` asks (the fields a sync sets).
    A rate clock that started in the past is given the next start in its phase, which moves
    with time: any start in the same phase is the same schedule."""
    for key in ("ScheduleExpression", "ScheduleExpressionTimezone", "Description"):
        if (current.get(key) or None) != (request.get(key) or None):
            return False
    if _instant(current.get("EndDate")) != _instant(request.get("EndDate")):
        return False
    have_start, want_start = _instant(current.get("StartDate")), _instant(request.get("StartDate"))
    if have_start != want_start and not _in_phase(have_start, want_start, clock):
        return False
    if (current.get("ActionAfterCompletion") or "NONE") != request.get(
        "ActionAfterCompletion", "NONE"
    ):
        return False
    have, want = current.get("Target") or {}, request["Target"]
    return all(have.get(key) == want.get(key) for key in want)


def _in_phase(have: Any, want: Any, clock: ClockSpec) -> bool:
    if not (isinstance(have, datetime) and isinstance(want, datetime)) or clock.kind != "rate":
        return False
    return (want - have) % rate_interval(clock.expression) == timedelta(0)


def _instant(value: Any) -> Any:
    """A date as an instant, whichever form (datetime or text) a client returns it in."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return value
