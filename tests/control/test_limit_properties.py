"""Concurrency limits under any interleaving (hypothesis), through the real control plane against
moto over HTTP: requests (and their redeliveries), runners' final reports (duplicated, late,
for any run), cancels, woken requests delivered late, out of order or lost, and monitor passes.

After every step no limit has more holders than its ``max_runs``, and every launched run of a
limit holds its slot. After a monitor pass (and the delivery of the requests it published), no
slot is held by a run that ended, and no run waits in Queued while every slot it needs is free.

The bus is the one boundary replaced: woken runs' requests are kept in a list the test delivers
from (in an order hypothesis picks), or drops (a lost event).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowrelay.control.cancel import Canceller
from flowrelay.control.dispatch import Dispatcher, RetryLater
from flowrelay.control.monitor import Monitor, waking_by
from flowrelay.control.recorder import StateRecorder
from flowrelay.control.slots import Slots
from flowrelay.control.store import Store
from flowrelay.core.concurrency import ConcurrencyLimit, applicable
from flowrelay.core.events import (
    FlowRunCancelRequested,
    FlowRunRequested,
    FlowRunStateChanged,
    parse_event,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.routing import Target
from flowrelay.launchers.ecs import EcsLauncher
from tests.control.test_concurrency import envelope, event
from tests.support.aws import create_run_table, register_etl, report_figures

RUNS = 6
#: What the figures count, over every example.
FIGURES: dict[str, int] = {
    "examples": 0,
    "steps": 0,
    "monitor passes": 0,
    "runs launched": 0,
    "runs queued": 0,
    "over-limit launches": 0,
    "slots held by ended runs after a pass": 0,
    "runs stuck in Queued after a pass": 0,
}


class Bus:
    """The bus, as far as the control plane is concerned: what it publishes is kept here."""

    def __init__(self) -> None:
        self.requests: list[FlowRunRequested] = []

    def publish(self, *events: Any) -> None:
        self.requests.extend(events)


STEP = st.one_of(
    st.tuples(st.just("request"), st.integers(0, RUNS - 1)),
    st.tuples(st.just("end"), st.integers(0, RUNS - 1), st.sampled_from(["Success", "Failed"])),
    st.tuples(st.just("late running"), st.integers(0, RUNS - 1)),
    # record_state made the run final and died before giving its slots back (no redelivery).
    st.tuples(st.just("end, died releasing"), st.integers(0, RUNS - 1)),
    # a run lost its place in a waiting list (as if a write of it had been undone).
    st.tuples(st.just("lose its place"), st.integers(0, RUNS - 1)),
    st.tuples(st.just("cancel"), st.integers(0, RUNS - 1)),
    st.tuples(st.just("deliver"), st.integers(0, 5)),
    st.tuples(st.just("lose"), st.integers(0, 5)),
    st.tuples(st.just("monitor")),
)


@pytest.fixture(scope="module")
def figures(pytestconfig: pytest.Config) -> Iterator[dict[str, int]]:
    yield FIGURES
    report_figures(
        pytestconfig,
        "concurrency limits under any interleaving (hypothesis)",
        [f"{name}: {count}" for name, count in FIGURES.items()],
    )


class World:
    """One example: its own labels, target and limits, over the shared table and cluster."""

    def __init__(self, store: Store, ecs: Any, cluster: str, network: dict[str, Any]) -> None:
        tag = uuid.uuid4().hex[:8]
        self.store = store
        self.tag = tag
        self.x, self.y = f"x-{tag}", f"y-{tag}"
        self.target = f"t-{tag}"
        store.targets.put(
            Target(
                name=self.target,
                kind="ecs",
                labels=[self.x, self.y],
                settings={"cluster": cluster, "image": "example/flows:1", **network},
            )
        )
        self.limits = [
            ConcurrencyLimit(name=f"x-{tag}", kind="label", value=self.x, max_runs=1),
            ConcurrencyLimit(name=f"y-{tag}", kind="label", value=self.y, max_runs=2),
            ConcurrencyLimit(name=f"t-{tag}", kind="target", value=self.target, max_runs=2),
        ]
        self.bus = Bus()
        self.slots = Slots(store, wake=waking_by(self.bus, "woken"))
        for limit in self.limits:
            self.slots.put(limit)
        launcher = EcsLauncher(ecs, table_name=store.table_name, bus_name="bus")
        self.dispatcher = Dispatcher(store, {"ecs": launcher}, slots=self.slots)
        self.recorder = StateRecorder(store, slots=self.slots)
        self.monitor = Monitor(store, {"ecs": launcher}, self.bus, slots=self.slots)
        self.canceller = Canceller(store, {"ecs": launcher}, slots=self.slots)
        # Run i's labels: x, y, or both.
        self.labels = [[self.x], [self.y], [self.x, self.y]]

    def run_id(self, index: int) -> str:
        return f"{self.tag}-{index}"

    def request(self, index: int) -> None:
        labels = self.labels[index % 3]
        detail = {"flow": "etl", "flow_run_id": self.run_id(index), "labels": labels}
        self.dispatch(parse_event(envelope(detail)))

    def dispatch(self, parsed: Any) -> None:
        # RetryLater: another delivery holds the claim (nothing in these steps leaves one).
        with contextlib.suppress(RetryLater):
            self.dispatcher.handle_request(parsed)

    def deliver(self, pick: int) -> None:
        if self.bus.requests:
            request = self.bus.requests.pop(pick % len(self.bus.requests))
            entry = request.entry("bus")
            self.dispatch(parse_event(envelope(json.loads(entry["Detail"]))))

    def report(self, index: int, state: RunState, source: Source = Source.RUNNER) -> None:
        run = self.store.runs.get(self.run_id(index))
        if run is None or not run.infrastructure:
            return  # a runner reports only once launched (its reports may come late, twice)
        change = FlowRunStateChanged(flow_run_id=run.run_id, state=state, source=source)
        self.recorder.handle(event(change))

    def end_without_release(self, index: int) -> None:
        run = self.store.runs.get(self.run_id(index))
        if run is not None and run.infrastructure:
            self.store.runs.transition(run.run_id, RunState.FAILED, Source.RUNNER)

    def cancel(self, index: int) -> None:
        if self.store.runs.get(self.run_id(index)) is not None:
            self.canceller.cancel(FlowRunCancelRequested(flow_run_id=self.run_id(index)))

    def monitor_pass(self) -> None:
        self.bus.requests.clear()  # older wakes are lost: the pass must make up for them
        self.monitor.run_once()
        while self.bus.requests:
            self.deliver(0)

    # --- the properties -----------------------------------------------------------------

    def runs(self) -> list[Any]:
        found = [self.store.runs.get(self.run_id(index)) for index in range(RUNS)]
        return [run for run in found if run is not None]

    def check_always(self) -> None:
        states = {limit.name: self.store.limits.get(limit.name) for limit in self.limits}
        runs = self.runs()
        for limit in self.limits:
            state = states[limit.name]
            assert state is not None
            assert len(state.holders) <= limit.max_runs, (limit.name, state.holders)
            launched = [
                run
                for run in runs
                if run.state in (RunState.SUBMITTED, RunState.RUNNING, RunState.CANCELLING)
                and limit in applicable(self.limits, run.labels, run.flow_name, run.target)
            ]
            if len(launched) > limit.max_runs:
                FIGURES["over-limit launches"] += 1
            assert len(launched) <= limit.max_runs, (limit.name, [r.run_id for r in launched])
            for run in launched:
                assert run.run_id in state.holders, (limit.name, run.run_id, state.holders)

    def check_after_a_pass(self) -> None:
        states = {limit.name: self.store.limits.get(limit.name) for limit in self.limits}
        by_id = {run.run_id: run for run in self.runs()}
        for state in states.values():
            assert state is not None
            for holder in state.holders:
                run = by_id.get(holder) or self.store.runs.get(holder)
                if run is None or run.state.is_final:
                    FIGURES["slots held by ended runs after a pass"] += 1
                assert run is not None, holder
                assert not run.state.is_final, (holder, run)
        for run in by_id.values():
            if run.state is not RunState.QUEUED:
                continue
            needed = applicable(self.limits, run.labels, run.flow_name, self.target)
            takeable = all(
                run.run_id in (state := states[limit.name]).holders or state.free > 0  # type: ignore[union-attr]
                for limit in needed
            )
            if takeable:
                FIGURES["runs stuck in Queued after a pass"] += 1
            assert not takeable, (run.run_id, run.message, states)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(burst=st.permutations(range(RUNS)), steps=st.lists(STEP, min_size=1, max_size=30))
def test_limits_hold_under_any_interleaving(
    store: Store,
    ecs: Any,
    cluster: str,
    network: dict[str, Any],
    figures: dict[str, int],
    burst: list[int],
    steps: list[tuple[Any, ...]],
) -> None:
    # A table of its own per example: moto copies a table for each transaction, so one that
    # grew over the examples would make each slower than the last.
    client = store.client
    table = f"flowrelay-prop-{uuid.uuid4().hex[:8]}"
    create_run_table(client, table)
    world = World(register_etl(Store(client, table)), ecs, cluster, network)
    try:
        play(world, figures, burst, steps)
    finally:
        client.delete_table(TableName=table)


def play(world: World, figures: dict[str, int], burst: list[int], steps: list[Any]) -> None:
    """One example: the burst, the steps, a last monitor pass, each step checked."""
    store = world.store
    figures["examples"] += 1
    # A burst of every run's request first (in any order), so that the limits are full and
    # runs wait; then anything.
    for step in [*(("request", index) for index in burst), *steps, ("monitor",)]:
        figures["steps"] += 1
        kind = step[0]
        if kind == "request":
            world.request(step[1])
        elif kind == "end":
            world.report(step[1], RunState(step[2]))
        elif kind == "late running":
            world.report(step[1], RunState.RUNNING)
        elif kind == "end, died releasing":
            world.end_without_release(step[1])
        elif kind == "lose its place":
            for limit in world.limits:
                store.limits.drop_waiter(limit.name, world.run_id(step[1]))
        elif kind == "cancel":
            world.cancel(step[1])
        elif kind == "deliver":
            world.deliver(step[1])
        elif kind == "lose":
            if world.bus.requests:
                world.bus.requests.pop(step[1] % len(world.bus.requests))
        else:
            figures["monitor passes"] += 1
            world.monitor_pass()
        world.check_always()
        if kind == "monitor":
            world.check_after_a_pass()
    runs = world.runs()
    figures["runs launched"] += sum(1 for run in runs if run.infrastructure)
    figures["runs queued"] += sum(
        1 for run in runs if any(e.state is RunState.QUEUED for e in store.runs.history(run.run_id))
    )


def test_the_figures_are_all_zero(figures: dict[str, int]) -> None:
    """Held after the property test (same module, run after it); and the examples did make
    runs wait (each burst fills the limit of 1 with four runs that carry its label)."""
    assert figures["runs queued"] >= 2 * figures["examples"] > 0
    for name in (
        "over-limit launches",
        "slots held by ended runs after a pass",
        "runs stuck in Queued after a pass",
    ):
        assert figures[name] == 0, name
