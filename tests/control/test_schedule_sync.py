"""Registrations synced to EventBridge Scheduler schedules (moto over HTTP): one per clock, made,
changed and removed idempotently, each putting the clock's request on the bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from flowrelay.control.schedule_sync import (
    ScheduleTarget,
    flow_prefix,
    schedule_name,
    scheduled_by,
    schedules_of,
    set_state,
    sync,
)
from flowrelay.core.registration import FlowRegistration
from flowrelay.core.schedules import ClockSpec, ScheduleSpec
from flowrelay.core.storage import Module

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture
def scheduler(aws_env: str) -> Any:
    return boto3.client("scheduler")


@pytest.fixture
def target(scheduler: Any) -> Iterator[ScheduleTarget]:
    group = f"flows-{uuid.uuid4().hex[:8]}"
    scheduler.create_schedule_group(Name=group)
    yield ScheduleTarget(
        group=group,
        bus_arn="arn:aws:events:us-east-1:123456789012:event-bus/flowrelay",
        role_arn="arn:aws:iam::123456789012:role/scheduler",
        dlq_arn="arn:aws:sqs:us-east-1:123456789012:schedule-dlq",
    )
    scheduler.delete_schedule_group(Name=group)


def registration(version: int, *clocks: ClockSpec) -> FlowRegistration:
    return FlowRegistration(
        name="nightly-etl",
        version=version,
        storage=Module("flowrelay.sdk.examples.etl:flow"),
        schedule=ScheduleSpec(clocks=list(clocks)) if clocks else None,
    )


EU = ClockSpec(
    name="clock-1",
    expression="cron(0 9 ? * MON-FRI *)",
    timezone="Europe/Berlin",
    parameters={"region": "eu"},
    labels=["eu"],
)
US = ClockSpec(
    name="clock-2",
    expression="cron(0 9 ? * MON-FRI *)",
    timezone="America/New_York",
    parameters={"region": "us"},
)


def test_each_clock_is_one_schedule_putting_its_own_request_on_the_bus(
    scheduler: Any, target: ScheduleTarget
) -> None:
    report = sync(scheduler, "nightly-etl", registration(1, EU, US), target, NOW)

    names = [schedule_name("nightly-etl", "clock-1"), schedule_name("nightly-etl", "clock-2")]
    assert sorted(report.created) == names
    eu = scheduler.get_schedule(GroupName=target.group, Name=names[0])
    assert eu["ScheduleExpression"] == "cron(0 9 ? * MON-FRI *)"
    assert eu["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert eu["State"] == "ENABLED"
    assert eu["Target"]["Arn"] == target.bus_arn
    assert eu["Target"]["EventBridgeParameters"] == {
        "DetailType": "Flow Run Requested",
        "Source": "flowrelay",
    }
    assert eu["Target"]["DeadLetterConfig"] == {"Arn": target.dlq_arn}
    request = json.loads(eu["Target"]["Input"])
    assert request == {
        "flow": "nightly-etl",
        "version": 1,
        "parameters": {"region": "eu"},
        "labels": ["eu"],
        "idempotency_key": f"schedule:{names[0]}:<aws.scheduler.scheduled-time>",
        "requested_by": f"schedule {names[0]}",
        "schema_version": request["schema_version"],
    }
    us = json.loads(
        scheduler.get_schedule(GroupName=target.group, Name=names[1])["Target"]["Input"]
    )
    assert us["parameters"] == {"region": "us"}
    assert "labels" not in us  # the registered labels
    # What a fire's idempotency key says, once AWS has filled it.
    assert scheduled_by(
        request["idempotency_key"].replace("<aws.scheduler.scheduled-time>", "2026-11-30T08:00:00Z")
    ) == (names[0], "2026-11-30T08:00:00Z")


def test_registering_the_same_flow_again_changes_nothing_and_keeps_a_pause(
    scheduler: Any, target: ScheduleTarget
) -> None:
    sync(scheduler, "nightly-etl", registration(1, EU, US), target, NOW)
    assert set_state(scheduler, target, "nightly-etl", "clock-2", enabled=False) == [
        schedule_name("nightly-etl", "clock-2")
    ]

    again = sync(scheduler, "nightly-etl", registration(1, EU, US), target, NOW)
    assert not again.changed
    assert len(again.unchanged) == 2
    # A new version moves the schedules (their requests name it), a paused one stays paused.
    moved = sync(scheduler, "nightly-etl", registration(2, EU, US), target, NOW)
    assert sorted(moved.updated) == sorted(again.unchanged)
    states = {s["Name"]: s["State"] for s in schedules_of(scheduler, target, "nightly-etl")}
    assert states[schedule_name("nightly-etl", "clock-2")] == "DISABLED"
    assert states[schedule_name("nightly-etl", "clock-1")] == "ENABLED"
    for schedule in schedules_of(scheduler, target, "nightly-etl"):
        assert json.loads(schedule["Target"]["Input"])["version"] == 2


def test_a_rate_clock_that_started_long_ago_keeps_its_phase_and_stays_unchanged(
    scheduler: Any, target: ScheduleTarget
) -> None:
    hourly = ClockSpec(
        name="hourly", expression="rate(1 hour)", start_date=datetime(2020, 1, 1, 9, 30)
    )
    sync(scheduler, "nightly-etl", registration(1, hourly), target, NOW)
    (created,) = schedules_of(scheduler, target, "nightly-etl")
    assert created["StartDate"].astimezone(UTC) == datetime(2026, 11, 29, 12, 30, tzinfo=UTC)
    # Hours later the next start in phase differs, but it is the same schedule.
    later = sync(
        scheduler, "nightly-etl", registration(1, hourly), target, NOW + timedelta(hours=5)
    )
    assert not later.changed


def test_removing_a_clock_or_the_schedule_removes_its_schedules_only(
    scheduler: Any, target: ScheduleTarget
) -> None:
    sync(scheduler, "nightly-etl", registration(1, EU, US), target, NOW)
    sync(
        scheduler,
        "other-flow",
        registration(1, EU).model_copy(update={"name": "other-flow"}),
        target,
        NOW,
    )

    fewer = sync(scheduler, "nightly-etl", registration(2, EU), target, NOW)
    assert fewer.deleted == [schedule_name("nightly-etl", "clock-2")]
    none = sync(scheduler, "nightly-etl", registration(3), target, NOW)
    assert none.deleted == [schedule_name("nightly-etl", "clock-1")]
    assert schedules_of(scheduler, target, "nightly-etl") == []
    # Another flow's schedules (another prefix) are not touched.
    assert len(schedules_of(scheduler, target, "other-flow")) == 1


def test_a_one_time_clock_in_the_past_makes_no_schedule(
    scheduler: Any, target: ScheduleTarget
) -> None:
    once = ClockSpec(name="once", expression="at(2026-01-01T09:00:00)")
    soon = ClockSpec(name="soon", expression="at(2027-01-01T09:00:00)")
    report = sync(scheduler, "nightly-etl", registration(1, once, soon), target, NOW)
    assert report.created == [schedule_name("nightly-etl", "soon")]
    (made,) = schedules_of(scheduler, target, "nightly-etl")
    assert made["ActionAfterCompletion"] == "DELETE"


def test_pausing_an_unknown_flow_or_clock_says_which(
    scheduler: Any, target: ScheduleTarget
) -> None:
    sync(scheduler, "nightly-etl", registration(1, EU), target, NOW)
    with pytest.raises(LookupError, match="no schedule for clock 'clock-9' of flow 'nightly-etl'"):
        set_state(scheduler, target, "nightly-etl", "clock-9", enabled=False)
    with pytest.raises(LookupError, match="no schedule for flow 'nobody'"):
        set_state(scheduler, target, "nobody", None, enabled=True)


def test_schedule_names_fit_aws_for_any_flow_and_clock_name() -> None:
    long = schedule_name("f" * 256, "c" * 64)
    assert len(long) <= 64
    assert long.startswith(flow_prefix("f" * 256))
    assert schedule_name("a b", "x") != schedule_name("a_b", "x")  # cleaned alike, hashed apart


def test_a_flow_whose_name_starts_with_another_flows_prefix_keeps_its_schedules(
    scheduler: Any, target: ScheduleTarget
) -> None:
    # "a"'s prefix is fr-a-<8 hex>-; a flow named after it shares that prefix, never its schedules.
    crafted = flow_prefix("a").removeprefix("fr-") + "x"
    sync(scheduler, crafted, registration(1, EU).model_copy(update={"name": crafted}), target, NOW)
    sync(scheduler, "a", registration(1, EU).model_copy(update={"name": "a"}), target, NOW)

    removed = sync(scheduler, "a", registration(2).model_copy(update={"name": "a"}), target, NOW)
    assert removed.deleted == [schedule_name("a", "clock-1")]
    assert len(schedules_of(scheduler, target, crafted)) == 1  # still there
    with pytest.raises(LookupError):
        set_state(scheduler, target, "a", None, enabled=False)


def test_a_clock_with_nothing_left_to_fire_makes_no_schedule_and_says_why(
    scheduler: Any, target: ScheduleTarget
) -> None:
    ended = ClockSpec(
        name="ended",
        expression="rate(1 hour)",
        start_date=datetime(2020, 1, 1),
        end_date=datetime(2021, 1, 1),
    )
    report = sync(scheduler, "nightly-etl", registration(1, ended, EU), target, NOW)
    assert report.created == [schedule_name("nightly-etl", "clock-1")]
    assert report.skipped == ["ended: its end date 2021-01-01T00:00:00+00:00 has passed"]


def test_a_rate_clock_without_a_start_keeps_one_phase_across_versions(
    scheduler: Any, target: ScheduleTarget
) -> None:
    every_90 = ClockSpec(name="clock-1", expression="rate(90 minutes)")
    sync(scheduler, "nightly-etl", registration(1, every_90), target, NOW)
    (first,) = schedules_of(scheduler, target, "nightly-etl")
    sync(scheduler, "nightly-etl", registration(2, every_90), target, NOW + timedelta(minutes=17))
    (second,) = schedules_of(scheduler, target, "nightly-etl")
    # Anchored on 2019-01-01 (as the seeds' engine anchored intervals): the same times.
    assert (second["StartDate"] - first["StartDate"]) % timedelta(minutes=90) == timedelta(0)
