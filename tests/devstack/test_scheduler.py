"""The dev stack fires EventBridge Scheduler schedules (flowrelay.devstack.scheduler): moto only
stores them. Schedules are made here with boto3, as any client of the stack would, in a schedule
group of this module's; each puts an event on a test bus, which a rule sends to an SQS queue of
the test's own, and the test reads what arrived: the target's input with the
``<aws.scheduler.*>`` keywords filled, once per fire, at the fire's scheduled time.

One stack serves the module, under names of its own (moto's state outlives a stack in this
process: see test_fargate_cluster.py), with its clock 3600 times real time: an hour of schedules
passes every second.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowrelay.devstack import DevStack
from flowrelay.devstack.scheduler import (
    NOT_EMULATED,
    SchedulerLoop,
    VirtualClock,
    fill_input,
    wait_for_fires,
)
from flowrelay.devstack.stack import DevStackError
from tests.support.cli import invoke, one_error_line
from tests.support.devstack import clients_of

ROOT = Path(__file__).resolve().parents[2]
SPEED = 3600.0
SOURCE = "flowrelay.scheduler-test"
ROLE = "arn:aws:iam::123456789012:role/scheduler"
#: The target input every test schedule has: each keyword, and the schedule's name to route by.
INPUT = {
    "schedule": "{name}",
    "arn": "<aws.scheduler.schedule-arn>",
    "scheduled": "<aws.scheduler.scheduled-time>",
    "execution": "<aws.scheduler.execution-id>",
    "attempt": "<aws.scheduler.attempt-number>",
}
SCHEDULED = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation")


@dataclass
class Stack:
    dev: DevStack
    client: Callable[[str], Any]
    group: str
    bus_arn: str
    lines: list[str] = field(default_factory=list)

    @property
    def loop(self) -> SchedulerLoop:
        return self.dev.scheduler_loop

    def queue(self, name: str) -> str:
        """A queue receiving what the test bus gets from schedule ``name``; its URL."""
        sqs, events = self.client("sqs"), self.client("events")
        url: str = sqs.create_queue(QueueName=f"q-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = self.bus_arn.rsplit("/", 1)[1]
        pattern = {"source": [SOURCE], "detail": {"schedule": [name]}}
        events.put_rule(Name=f"r-{name}", EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=f"r-{name}", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        return url

    def schedule(self, name: str, expression: str, **extra: Any) -> dict[str, Any]:
        """Create schedule ``name`` in the module's group, putting INPUT on the test bus."""
        target = {
            "Arn": self.bus_arn,
            "RoleArn": ROLE,
            "Input": json.dumps(INPUT).replace("{name}", name),
            "EventBridgeParameters": {"DetailType": "Flow Run Requested", "Source": SOURCE},
            **extra.pop("Target", {}),
        }
        scheduler = self.client("scheduler")
        scheduler.create_schedule(
            Name=name,
            GroupName=self.group,
            ScheduleExpression=expression,
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=target,
            **extra,
        )
        described: dict[str, Any] = scheduler.get_schedule(GroupName=self.group, Name=name)
        return described

    def received(self, url: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        """At least ``count`` messages of the queue (their bodies as JSON, and attributes)."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count and time.monotonic() < deadline:
            for message in sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
            ).get("Messages", []):
                found.append(message)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            if len(found) < count:
                time.sleep(0.1)
        assert len(found) >= count, f"{len(found)} message(s) in {timeout:g} s, not {count}"
        return found

    def drain(self, url: str, seconds: float) -> list[dict[str, Any]]:
        """Every message the queue gets in the next ``seconds``."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for message in sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", []):
                found.append(message)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            time.sleep(0.1)
        return found


def details(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The EventBridge events' details, by scheduled time."""
    found = [json.loads(message["Body"])["detail"] for message in messages]
    return sorted(found, key=lambda detail: str(detail["scheduled"]))


def to_second(when: datetime) -> datetime:
    return when.replace(microsecond=0)


def parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    lines: list[str] = []
    dev = DevStack(
        ROOT / "template.yaml",
        stack_name=f"flowrelay-sched-{suffix}",
        parameters={"BusName": f"flowrelay-sched-{suffix}"},
        poll_seconds=0.1,
        clock_speed=SPEED,
        log=lines.append,
    )
    dev.start()
    client = clients_of(dev)
    group = f"tests-{suffix}"
    client("scheduler").create_schedule_group(Name=group)
    bus_arn = client("events").create_event_bus(Name=f"schedules-{suffix}")["EventBusArn"]
    try:
        yield Stack(dev, client, group, bus_arn, lines)
    finally:
        # Schedules outlive the stack in moto's memory; another stack in this process would
        # fire them.
        client("scheduler").delete_schedule_group(Name=group)
        dev.stop()


def name_of(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# --- the clock --------------------------------------------------------------------------------


def test_the_virtual_clock_runs_clock_speed_times_real_time(stack: Stack) -> None:
    clock = stack.loop.clock
    assert clock.speed == SPEED
    first, began = clock.now(), time.monotonic()
    time.sleep(0.5)
    second, elapsed = clock.now(), time.monotonic() - began
    # Within a fifth of a real second, for a busy machine between the two readings.
    assert abs((second - first).total_seconds() - SPEED * elapsed) < SPEED * 0.2
    # It started with the stack, from the real date.
    assert abs((clock.origin - datetime.now(UTC)).total_seconds()) < 120


def test_a_virtual_clock_maps_real_time() -> None:
    real = [datetime(2026, 5, 1, 12, tzinfo=UTC)]
    clock = VirtualClock(60, real=lambda: real[0])
    real[0] += timedelta(seconds=90)
    assert clock.now() == datetime(2026, 5, 1, 13, 30, tzinfo=UTC)
    assert clock.virtual(datetime(2026, 5, 1, 11, 59, tzinfo=UTC)) == datetime(
        2026, 5, 1, 11, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="more than 0"):
        VirtualClock(0)


def test_a_clock_speed_of_zero_or_less_is_refused() -> None:
    with pytest.raises(DevStackError, match="clock speed must be more than 0"):
        DevStack(clock_speed=0)
    assert "0.0 is not in the range x>0" in one_error_line(
        invoke("dev", "up", "--clock-speed", "0"), 2
    )


# --- fires on their own -----------------------------------------------------------------------


def test_an_hourly_schedule_fires_every_hour_of_the_virtual_clock(stack: Stack) -> None:
    name = name_of("hourly")
    url = stack.queue(name)
    schedule = stack.schedule(name, "cron(0 * * * ? *)")
    created = stack.loop.clock.virtual(schedule["CreationDate"])
    got = details(stack.received(url, 3))
    scheduled = [parse(detail["scheduled"]) for detail in got]
    # Whole hours, one apart, after the schedule was made (UTC has no daylight saving).
    assert all(when.minute == when.second == 0 for when in scheduled)
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(scheduled))
    assert scheduled[0] > created
    assert scheduled[0] - created <= timedelta(hours=1)
    assert scheduled[-1] <= stack.loop.clock.now()
    for detail in got:
        assert detail["schedule"] == name
        assert detail["arn"] == schedule["Arn"]
        assert detail["arn"].endswith(f":schedule/{stack.group}/{name}")
        assert SCHEDULED.match(detail["scheduled"])
        assert re.fullmatch(r"[0-9a-f]{16}", detail["execution"])
        assert detail["attempt"] == "1"
    assert len({detail["execution"] for detail in got}) == len(got)
    # One message per fire: what the loop fired is what arrived, no more.
    stack.client("scheduler").delete_schedule(GroupName=stack.group, Name=name)
    time.sleep(0.5)  # the loop's ticks have seen it gone
    fired = [fire.scheduled_time_text for fire in stack.loop.fires_of(stack.group, name)]
    rest = details(stack.drain(url, 0.5))
    assert sorted(detail["scheduled"] for detail in got + rest) == fired
    assert len(set(fired)) == len(fired)
    assert any(f"scheduler: {stack.group}/{name}: 1 fire(s)" in line for line in stack.lines)


def test_a_rate_schedule_without_start_date_fires_at_once_then_every_rate(stack: Stack) -> None:
    name = name_of("rate")
    url = stack.queue(name)
    before = stack.loop.clock.now()
    stack.schedule(name, "rate(1 hour)")
    after = stack.loop.clock.now()
    scheduled = [parse(detail["scheduled"]) for detail in details(stack.received(url, 2))]
    # "If you do not provide a StartDate for a rate-based schedule, your schedule starts
    # invoking the target immediately": at its creation, then every hour.
    assert before - timedelta(seconds=1) <= scheduled[0] <= after + timedelta(seconds=1)
    assert scheduled[1] - scheduled[0] == timedelta(hours=1)
    stack.client("scheduler").delete_schedule(GroupName=stack.group, Name=name)


def test_a_disabled_schedule_does_not_fire_and_once_enabled_fires_from_then(stack: Stack) -> None:
    name = name_of("paused")
    url = stack.queue(name)
    schedule = stack.schedule(name, "cron(0 * * * ? *)", State="DISABLED")
    time.sleep(2.5)  # two and a half hours on the clock
    assert stack.loop.fires_of(stack.group, name) == []
    assert stack.drain(url, 0.3) == []
    with pytest.raises(ValueError, match="DISABLED"):
        stack.loop.fire_next(stack.group, name)
    scheduler = stack.client("scheduler")
    scheduler.update_schedule(
        Name=name,
        GroupName=stack.group,
        ScheduleExpression=schedule["ScheduleExpression"],
        FlexibleTimeWindow={"Mode": "OFF"},
        Target=schedule["Target"],
        State="ENABLED",
    )
    enabled = stack.loop.clock.virtual(
        scheduler.get_schedule(GroupName=stack.group, Name=name)["LastModificationDate"]
    )
    first = parse(details(stack.received(url, 1))[0]["scheduled"])
    assert enabled < first <= enabled + timedelta(hours=1)  # nothing of the paused hours
    scheduler.delete_schedule(GroupName=stack.group, Name=name)


def test_a_one_time_schedule_fires_once_and_deletes_itself(stack: Stack) -> None:
    name = name_of("once")
    url = stack.queue(name)
    # Two hours ahead on the clock, in New York time: two seconds from now.
    when = to_second(stack.loop.clock.now() + timedelta(hours=2))
    local = when.astimezone(ZoneInfo("America/New_York"))
    stack.schedule(
        name,
        f"at({local:%Y-%m-%dT%H:%M:%S})",
        ScheduleExpressionTimezone="America/New_York",
        ActionAfterCompletion="DELETE",
    )
    (detail,) = details(stack.received(url, 1))
    assert parse(detail["scheduled"]) == when
    scheduler = stack.client("scheduler")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            scheduler.get_schedule(GroupName=stack.group, Name=name)
        except scheduler.exceptions.ResourceNotFoundException:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the completed one-time schedule was not deleted")
    assert stack.drain(url, 1.0) == []  # an hour on the clock: nothing more
    assert len(stack.loop.fires_of(stack.group, name)) == 1


# --- fire now, again ----------------------------------------------------------------------------


def test_fire_next_delivers_the_next_fire_now_and_redeliver_sends_it_again(stack: Stack) -> None:
    name = name_of("berlin")
    url = stack.queue(name)
    # Daily at 02:30 in Berlin from a StartDate years ahead (the clock never gets there here):
    # 2030's spring-forward day, 31 March, has no 02:30.
    stack.schedule(
        name,
        "cron(30 2 * * ? *)",
        ScheduleExpressionTimezone="Europe/Berlin",
        StartDate=datetime(2030, 3, 30, 12, tzinfo=UTC),
    )
    first = stack.loop.fire_next(stack.group, name)
    second = stack.loop.fire_next(stack.group, name)
    assert first == datetime(2030, 4, 1, 0, 30, tzinfo=UTC)  # 02:30 CEST; none on 31 March
    assert second == datetime(2030, 4, 2, 0, 30, tzinfo=UTC)
    again = stack.loop.redeliver(stack.group, name, first)
    assert again.attempt == 2
    got = details(stack.received(url, 3))
    assert [detail["scheduled"] for detail in got] == [
        "2030-04-01T00:30:00Z",
        "2030-04-01T00:30:00Z",
        "2030-04-02T00:30:00Z",
    ]
    assert sorted(detail["attempt"] for detail in got[:2]) == ["1", "2"]
    assert got[0]["execution"] != got[1]["execution"]  # a new id for every attempt
    assert [fire.outcome for fire in stack.loop.fires_of(stack.group, name)] == ["delivered"] * 3
    stack.client("scheduler").delete_schedule(GroupName=stack.group, Name=name)
    with pytest.raises(LookupError):
        stack.loop.redeliver(stack.group, "never-fired")


def test_a_queue_target_gets_the_input_as_its_body(stack: Stack) -> None:
    name = name_of("sqs")
    sqs = stack.client("sqs")
    url = sqs.create_queue(QueueName=f"direct-{name}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    stack.schedule(
        name,
        "cron(0 12 1 1 ? 2031)",
        Target={"Arn": arn, "Input": "at <aws.scheduler.scheduled-time>"},
    )
    stack.loop.fire_next(stack.group, name)
    (message,) = stack.received(url, 1)
    assert message["Body"] == "at 2031-01-01T12:00:00Z"


# --- what cannot be delivered -------------------------------------------------------------------


def dead_letter_queue(stack: Stack, name: str) -> tuple[str, str]:
    sqs = stack.client("sqs")
    url: str = sqs.create_queue(QueueName=f"dlq-{name}")["QueueUrl"]
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def test_a_fire_the_bus_refuses_goes_to_the_dead_letter_queue_with_the_reason(
    stack: Stack,
) -> None:
    name = name_of("lost")
    dlq_url, dlq_arn = dead_letter_queue(stack, name)
    missing_bus = stack.bus_arn.rsplit("/", 1)[0] + "/no-such-bus"
    schedule = stack.schedule(
        name,
        "cron(0 9 ? * 3#2 2031)",
        Target={"Arn": missing_bus, "DeadLetterConfig": {"Arn": dlq_arn}},
    )
    scheduled = stack.loop.fire_next(stack.group, name)
    assert scheduled == datetime(2031, 1, 14, 9, tzinfo=UTC)  # the second Tuesday of 2031
    (message,) = stack.received(dlq_url, 1)
    attributes = {key: value["StringValue"] for key, value in message["MessageAttributes"].items()}
    execution = attributes.pop("EXECUTION_ID")
    assert re.fullmatch(r"[0-9a-f]{16}", execution)
    message_text = attributes.pop("ERROR_MESSAGE")
    assert "no-such-bus" in message_text
    assert attributes == {
        "ERROR_CODE": "ResourceNotFoundException",
        "IS_PAYLOAD_TRUNCATED": "false",
        "RETRY_ATTEMPTS": "0",
        "SCHEDULED_TIME": "2031-01-14T09:00:00Z",
        "SCHEDULE_ARN": schedule["Arn"],
        "TARGET_ARN": missing_bus,
    }  # no EXHAUSTED_RETRY_CONDITION: nothing was retried
    body = json.loads(message["Body"])
    assert body["scheduled"] == "2031-01-14T09:00:00Z"
    assert body["execution"] == execution
    (fire,) = stack.loop.fires_of(stack.group, name)
    assert fire.outcome == "dead-lettered"
    assert fire.reason is not None
    assert fire.reason.startswith("ResourceNotFoundException: ")


def test_a_target_the_dev_stack_does_not_emulate_is_dead_lettered_or_dropped(
    stack: Stack,
) -> None:
    name = name_of("lambda")
    dlq_url, dlq_arn = dead_letter_queue(stack, name)
    function = "arn:aws:lambda:us-east-1:123456789012:function:somewhere"
    stack.schedule(
        name,
        "cron(0 12 1 1 ? 2031)",
        Target={"Arn": function, "DeadLetterConfig": {"Arn": dlq_arn}},
    )
    stack.loop.fire_next(stack.group, name)
    (message,) = stack.received(dlq_url, 1)
    assert message["MessageAttributes"]["ERROR_CODE"]["StringValue"] == NOT_EMULATED
    assert function in message["MessageAttributes"]["ERROR_MESSAGE"]["StringValue"]

    dropped = name_of("dropped")
    stack.schedule(dropped, "cron(0 12 1 1 ? 2031)", Target={"Arn": function})
    stack.loop.fire_next(stack.group, dropped)
    (fire,) = stack.loop.fires_of(stack.group, dropped)
    assert fire.outcome == "dropped"
    assert any(
        f"{stack.group}/{dropped}: fire 2031-01-01T12:00:00Z not delivered" in line
        and "dropped" in line
        for line in stack.lines
    )


def test_wait_for_fires_says_when_they_do_not_come(stack: Stack) -> None:
    with pytest.raises(TimeoutError, match="fired 0 time"):
        wait_for_fires(stack.loop, stack.group, "nothing", 1, timeout=0.2)


def test_fill_input_replaces_every_keyword_wherever_it_is() -> None:
    text = fill_input(
        "<aws.scheduler.schedule-arn> <aws.scheduler.execution-id> "
        "<aws.scheduler.attempt-number> <aws.scheduler.scheduled-time> "
        "<aws.scheduler.scheduled-time>",
        schedule_arn="arn:x",
        scheduled_time=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        execution_id="e1",
        attempt=3,
    )
    assert text == "arn:x e1 3 2026-01-02T03:04:05Z 2026-01-02T03:04:05Z"


@pytest.mark.slow  # a dev stack of its own: about 6 s
def test_dev_up_says_its_clock_speed(tmp_path: Path) -> None:
    """``flowrelay dev up --clock-speed 3600`` says the schedules fire, on which clock."""
    flowrelay = Path(sys.executable).parent / "flowrelay"
    process = subprocess.Popen(
        [str(flowrelay), "dev", "up", "--clock-speed", "3600", "--no-target"],
        # A temporary directory of its own: the next dev up looks at what dead stacks left there.
        env={**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            if "dev stack running" in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    said = [line for line in lines if "EventBridge Scheduler" in line]
    assert len(said) == 1, lines
    assert said[0].endswith(
        "EventBridge Scheduler schedules fire in the dev stack (moto only stores them), clock "
        "speed 3600x: an hour of schedules every 1 s of real time"
    )
