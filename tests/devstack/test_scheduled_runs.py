"""Schedules end to end on the dev stack: a registration synced to EventBridge Scheduler, its
fires delivered by the dev stack's scheduler loop onto the bus, dispatch making runs of them.
One fire is one run however often it is delivered; a fire for a flow that is no longer
registered is a Failed run saying so, not lost.

One stack serves the module, under names of its own (moto's state outlives a stack in this
process).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrelay.control.fire_times import scheduled_time_text
from flowrelay.control.schedule_sync import (
    KEY_PREFIX,
    ScheduleTarget,
    schedule_name,
    set_state,
    sync,
)
from flowrelay.control.store import Store
from flowrelay.core.registration import FlowRegistration
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun, run_id_for
from flowrelay.core.schedules import ClockSpec, ScheduleSpec
from flowrelay.core.storage import Module
from flowrelay.devstack import DevStack
from flowrelay.launchers.kinds import checked_target
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow
from tests.support.devstack import clients_of

ROOT = Path(__file__).resolve().parents[2]
SCHEDULED = Module("flowrelay.sdk.examples.scheduled:flow")

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation")


class Stack:
    def __init__(self, dev: DevStack) -> None:
        self.dev = dev
        self.client: Callable[[str], Any] = clients_of(dev)
        self.store = Store(self.client("dynamodb"), dev.outputs["TableName"])
        self.scheduler = self.client("scheduler")
        target = ScheduleTarget.of_stack(dev.outputs)
        assert target is not None
        self.target = target

    def wait_final(self, run_id: str, timeout: float = 40.0) -> FlowRun:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.store.runs.get(run_id)
            if run is not None and run.state.is_final:
                return run
            time.sleep(0.1)
        raise AssertionError(f"run {run_id} not final: {self.store.runs.get(run_id)}")

    def fire(self, flow: str, clock: str, deliveries: int = 1) -> str:
        """Fire ``clock``'s next occurrence now, delivered ``deliveries`` times; the run id
        its idempotency key gives."""
        loop = self.dev.scheduler_loop
        name = schedule_name(flow, clock)
        when = loop.fire_next(self.target.group, name)
        for _ in range(deliveries - 1):
            loop.redeliver(self.target.group, name, when)
        return run_id_for(f"{KEY_PREFIX}{name}:{scheduled_time_text(when)}")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    dev = DevStack(
        ROOT / "template.yaml",
        stack_name=f"flowrelay-sched-{suffix}",
        parameters={"BusName": f"flowrelay-sched-{suffix}"},
        poll_seconds=0.1,
        schedule_seconds=1,
        # Schedules' own time all but stopped: only the fires a test makes (fire_next), none
        # by the clock while it runs.
        clock_speed=1e-6,
    )
    dev.start()
    try:
        running = Stack(dev)
        settings = dev.ecs_target_settings()
        running.store.targets.put(
            checked_target(Target(name="fargate", kind="ecs", settings=settings))
        )
        running.store.targets.put(
            checked_target(Target(name="gpu", kind="ecs", labels=["gpu"], settings=settings))
        )
        registration, _ = running.store.flows.register(
            registration_for(load_flow(SCHEDULED), storage=SCHEDULED)
        )
        report = sync(running.scheduler, "scheduled", registration, running.target)
        assert len(report.created) == 2
        yield running
    finally:
        dev.stop()


def test_a_fire_delivered_five_times_is_one_run_with_its_clocks_parameters(stack: Stack) -> None:
    before = {r.run_id for r in stack.store.runs.of_flow("scheduled")}
    run_id = stack.fire("scheduled", "clock-1", deliveries=5)
    run = stack.wait_final(run_id)

    assert str(run.state) == "Success", run.message
    assert run.parameters == {"region": "eu"}
    assert stack.dev.wait_idle(timeout=20)  # every delivery was taken
    # One more run of the flow, whatever key a second one would have had.
    after = {r.run_id for r in stack.store.runs.of_flow("scheduled")}
    assert after - before == {run_id}


def test_each_clock_brings_its_own_parameters_and_labels(stack: Stack) -> None:
    run = stack.wait_final(stack.fire("scheduled", "clock-2"))

    assert str(run.state) == "Success", run.message
    assert run.parameters == {"region": "us"}
    assert run.labels == ["gpu"]
    assert run.target == "gpu"


def test_a_paused_schedule_does_not_fire(stack: Stack) -> None:
    set_state(stack.scheduler, stack.target, "scheduled", "clock-2", enabled=False)
    try:
        with pytest.raises(ValueError, match="DISABLED"):
            stack.fire("scheduled", "clock-2")
    finally:
        set_state(stack.scheduler, stack.target, "scheduled", "clock-2", enabled=True)


def test_a_fire_for_a_flow_no_longer_registered_is_a_failed_run_saying_why(stack: Stack) -> None:
    # A schedule whose flow the table does not know (registered on another stack, or deleted).
    gone = FlowRegistration(
        name="vanished",
        version=1,
        storage=SCHEDULED,
        schedule=ScheduleSpec(clocks=[ClockSpec(name="clock-1", expression="rate(1 hour)")]),
    )
    sync(stack.scheduler, "vanished", gone, stack.target)
    run = stack.wait_final(stack.fire("vanished", "clock-1"))

    assert str(run.state) == "Failed"
    assert "flow 'vanished' version 1 is not registered" in (run.message or "")
