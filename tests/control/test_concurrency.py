"""Concurrency limits through the control plane, against moto over HTTP: the real store, the real
ECS launcher, the real recorder, monitor and canceller, and a real EventBridge bus whose rule
routes woken runs' requests to a queue, from which they are dispatched as the Dispatch function
would.

A limit of one runs three requests one after another, first come first served; a newcomer does
not overtake a waiting run; every way a run ends gives its slot back and wakes the next; the
monitor repairs what a crash left behind.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from flowrelay.aws.bus import Publisher
from flowrelay.control.cancel import Canceller
from flowrelay.control.dispatch import TARGETS_TTL_SECONDS, Dispatcher
from flowrelay.control.monitor import Monitor, waking_by
from flowrelay.control.recorder import StateRecorder
from flowrelay.control.slots import Slots
from flowrelay.control.store import Store
from flowrelay.core.concurrency import ConcurrencyLimit
from flowrelay.core.events import (
    FlowRunCancelRequested,
    FlowRunStateChanged,
    ParsedEvent,
    parse_event,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.ecs import EcsLauncher
from tests.support.aws import Clock
from tests.support.cli import routed_queue
from tests.support.strategies import envelope as support_envelope

LABEL = "warehouse"


@pytest.fixture
def requests_queue(bus: str) -> Iterator[str]:
    yield from routed_queue(bus, "Flow Run Requested")


@dataclass
class Plane:
    """The control plane's parts over one table, bus and cluster, as the functions wire them."""

    store: Store
    dispatcher: Dispatcher
    recorder: StateRecorder
    monitor: Monitor
    canceller: Canceller
    slots: Slots
    queue: str
    clock: Clock
    ecs: Any
    cluster: str

    def request(self, run_id: str, labels: list[str] | None = None, **detail: Any) -> Any:
        """Dispatch a new request for run ``run_id`` (a second later than the one before)."""
        self.clock.advance(1)
        body = {"flow": "etl", "flow_run_id": run_id, "labels": labels or [LABEL], **detail}
        return self.dispatcher.handle_request(parse_event(envelope(body)))

    def end(self, run_id: str, state: RunState = RunState.SUCCESS) -> None:
        """The runner's final report, recorded."""
        self.clock.advance(1)
        self.recorder.handle(
            event(FlowRunStateChanged(flow_run_id=run_id, state=state, source=Source.RUNNER))
        )

    def woken(self) -> list[str]:
        """Dispatch every request waiting on the bus's queue (the runs woken by a freed slot);
        the ids of the runs they were for."""
        sqs = boto3.client("sqs")
        seen: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return seen
            for message in messages:
                parsed: ParsedEvent = parse_event(message["Body"])
                seen.append(parsed.detail.flow_run_id)
                self.dispatcher.handle_request(parsed)
                sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def state(self, run_id: str) -> FlowRun:
        run = self.store.runs.get(run_id)
        assert run is not None
        return run

    def holders(self, name: str = LABEL) -> set[str]:
        limit = self.store.limits.get(name)
        assert limit is not None
        return set(limit.holders)

    def waiting(self, name: str = LABEL) -> list[str]:
        limit = self.store.limits.get(name)
        assert limit is not None
        return [run_id for run_id, _ in limit.waiting]

    def tasks(self) -> int:
        return len(self.ecs.list_tasks(cluster=self.cluster)["taskArns"])


def envelope(detail: dict[str, Any], detail_type: str = "Flow Run Requested") -> dict[str, Any]:
    """An EventBridge event of its own (a new event id) as the functions receive it."""
    return support_envelope(detail_type, detail, event_id=str(uuid.uuid4()))


def event(detail: Any) -> Any:
    """A flowrelay event as record_state receives it."""
    entry = detail.entry("bus")
    return parse_event(envelope(json.loads(entry["Detail"]), entry["DetailType"]))


@pytest.fixture
def plane(
    store: Store,
    ecs: Any,
    cluster: str,
    network: dict[str, Any],
    bus: str,
    requests_queue: str,
    clock: Clock,
) -> Plane:
    store.clock = clock
    publisher = Publisher(boto3.client("events"), bus)
    slots = Slots(store, wake=waking_by(publisher))
    launcher = EcsLauncher(ecs, table_name=store.table_name, bus_name=bus)
    store.targets.put(
        Target(
            name="fargate",
            kind="ecs",
            labels=[LABEL, "gpu"],
            settings={"cluster": cluster, "image": "example/flows:1", **network},
        )
    )
    return Plane(
        store=store,
        dispatcher=Dispatcher(store, {"ecs": launcher}, slots=slots),
        recorder=StateRecorder(store, slots=slots),
        monitor=Monitor(store, {"ecs": launcher}, publisher, slots=slots),
        canceller=Canceller(store, {"ecs": launcher}, slots=slots),
        slots=slots,
        queue=requests_queue,
        clock=clock,
        ecs=ecs,
        cluster=cluster,
    )


def limit(max_runs: int, name: str = LABEL, kind: str = "label", value: str = LABEL) -> Any:
    return ConcurrencyLimit(name=name, kind=kind, value=value, max_runs=max_runs)


def test_a_limit_of_one_runs_three_requests_one_after_another(plane: Plane) -> None:
    plane.slots.put(limit(1))
    first, second, third = (plane.request(run_id) for run_id in ("r-1", "r-2", "r-3"))
    assert (first.state, first.launched) == (RunState.SUBMITTED, True)
    assert second.state is third.state is RunState.QUEUED
    assert second.message == "waiting for a slot: label 'warehouse' 1/1: runs r-1"
    assert plane.state("r-3").message == second.message
    assert plane.holders() == {"r-1"}
    assert plane.waiting() == ["r-2", "r-3"]
    assert plane.tasks() == 1

    plane.end("r-1")
    assert plane.holders() == {"r-2"}  # handed over at once: nobody can take it in between
    assert plane.woken() == ["r-2"]
    assert plane.state("r-2").state is RunState.SUBMITTED
    assert plane.state("r-3").state is RunState.QUEUED

    plane.end("r-2", RunState.FAILED)
    assert plane.woken() == ["r-3"]
    plane.end("r-3")
    assert plane.holders() == set()
    assert plane.waiting() == []
    assert plane.tasks() == 3
    history = [entry.state for entry in plane.store.runs.history("r-3") if not entry.note]
    assert history == [RunState.PENDING, RunState.QUEUED, RunState.SUBMITTED, RunState.SUCCESS]


def test_a_newcomer_does_not_overtake_a_run_that_waits(plane: Plane) -> None:
    plane.slots.put(limit(1))
    plane.request("old-1")
    plane.request("old-2")
    plane.end("old-1")  # the slot is handed to old-2; its wake is still on its way
    newcomer = plane.request("new-1")
    assert newcomer.state is RunState.QUEUED
    assert newcomer.message == "waiting for a slot: label 'warehouse' 1/1: runs old-2"
    assert plane.woken() == ["old-2"]
    assert plane.state("old-2").state is RunState.SUBMITTED


def test_the_same_request_delivered_again_while_queued_changes_nothing(plane: Plane) -> None:
    plane.slots.put(limit(1))
    plane.request("a")
    queued = plane.request("b")
    again = plane.request("b")
    assert again.state is RunState.QUEUED
    assert again.message == queued.message
    assert [e.state for e in plane.store.runs.history("b")] == [RunState.PENDING, RunState.QUEUED]
    assert plane.waiting() == ["b"]


def test_a_cancelled_queued_run_ends_at_once_and_leaves_the_line(plane: Plane) -> None:
    plane.slots.put(limit(1))
    for run_id in ("c-1", "c-2", "c-3"):
        plane.request(run_id)
    outcome = plane.canceller.cancel(FlowRunCancelRequested(flow_run_id="c-2", reason="not now"))
    assert outcome.state is RunState.CANCELLED
    assert plane.waiting() == ["c-3"]
    plane.end("c-1")
    assert plane.woken() == ["c-3"]  # the cancelled run is skipped


def test_a_run_handed_a_slot_and_cancelled_before_it_launches_passes_the_slot_on(
    plane: Plane,
) -> None:
    plane.slots.put(limit(1))
    for run_id in ("h-1", "h-2", "h-3"):
        plane.request(run_id)
    plane.end("h-1")  # h-2 holds the slot now, Queued until its wake is dispatched
    assert plane.holders() == {"h-2"}
    plane.canceller.cancel(FlowRunCancelRequested(flow_run_id="h-2"))
    assert plane.holders() == {"h-3"}
    # h-2's wake finds it Cancelled: giving back again what it held, it wakes h-3 again (a
    # run handed a slot is woken again by a give-back until it launches: what finishes a
    # hand-over whose wake was lost); the second wake of h-3 finds it launched.
    assert plane.woken() == ["h-2", "h-3", "h-3"]
    assert plane.state("h-2").state is RunState.CANCELLED
    assert plane.state("h-3").state is RunState.SUBMITTED
    assert plane.tasks() == 2


def test_max_zero_pauses_and_a_higher_max_wakes_the_oldest_at_once(plane: Plane) -> None:
    plane.slots.put(limit(0))
    paused = plane.request("p-1")
    assert paused.message == "waiting for a slot: label 'warehouse' is paused (max 0)"
    plane.request("p-2")
    plane.request("p-3")
    assert plane.slots.put(limit(2)) == ["p-1", "p-2"]
    assert sorted(plane.woken()) == ["p-1", "p-2"]
    assert plane.state("p-3").state is RunState.QUEUED
    assert plane.tasks() == 2


def test_a_removed_limit_wakes_its_waiting_runs(plane: Plane) -> None:
    plane.slots.put(limit(1))
    plane.request("x-1")
    plane.request("x-2")
    removed = plane.slots.remove(LABEL)
    assert removed is not None
    assert plane.woken() == ["x-2"]
    assert plane.state("x-2").state is RunState.SUBMITTED
    plane.end("x-1")  # nothing to give back: the limit is gone, and it is not made again
    assert plane.store.limits.get(LABEL) is None


def test_flow_and_target_limits_and_a_run_takes_all_of_its_slots_or_none(plane: Plane) -> None:
    plane.slots.put(limit(5, name="gpus", value="gpu"))
    plane.slots.put(limit(1, name="etl-once", kind="flow", value="etl"))
    plane.slots.put(limit(10, name="fargate-cap", kind="target", value="fargate"))
    plane.request("f-1", labels=["gpu"])
    queued = plane.request("f-2", labels=["gpu"])
    assert queued.message == "waiting for a slot: flow 'etl' 1/1: runs f-1"
    assert plane.holders("gpus") == {"f-1"}  # f-2 took none of its other slots
    assert plane.holders("fargate-cap") == {"f-1"}
    assert plane.state("f-1").limits == ["etl-once", "fargate-cap", "gpus"]
    plane.end("f-1")
    assert plane.woken() == ["f-2"]
    assert plane.holders("gpus") == plane.holders("fargate-cap") == {"f-2"}


def test_a_run_that_fails_before_its_launch_gives_its_slot_to_the_next(
    plane: Plane, network: dict[str, Any]
) -> None:
    plane.store.targets.put(
        Target(
            name="zz-broken",  # after "fargate": chosen only for what fargate does not fit
            kind="ecs",
            labels=[LABEL, "broken"],
            settings={"cluster": "no-such-cluster", "image": "example/flows:1", **network},
        )
    )
    plane.slots.put(limit(1))
    plane.request("b-0")
    plane.request("b-1", labels=[LABEL, "broken"])  # its launch will be refused for good
    plane.request("b-2")
    plane.end("b-0")
    assert plane.woken() == ["b-1", "b-2"]  # b-1 failed, handing its slot to b-2
    assert plane.state("b-1").state is RunState.FAILED
    assert plane.state("b-2").state is RunState.SUBMITTED
    assert plane.holders() == {"b-2"}


def test_every_ending_gives_the_slot_back(plane: Plane) -> None:
    """Success, Failed, Cancelled (confirmed by the infrastructure), Crashed (by the monitor),
    TimedOut: each hands the slot to the next in line."""
    plane.slots.put(limit(1))
    plane.request("e-0")
    for number in range(1, 5):
        plane.request(f"e-{number}")
    plane.end("e-0", RunState.SUCCESS)
    assert plane.woken() == ["e-1"]
    plane.end("e-1", RunState.FAILED)
    assert plane.woken() == ["e-2"]
    plane.canceller.cancel(FlowRunCancelRequested(flow_run_id="e-2"))
    assert plane.state("e-2").state is RunState.CANCELLING
    plane.store.runs.transition("e-2", RunState.RUNNING, Source.RUNNER)  # ignored: cancelling
    plane.ecs.stop_task(cluster=plane.cluster, task=plane.state("e-2").infrastructure["task_arn"])
    plane.clock.advance(120)
    report = plane.monitor.run_once()
    assert report.count("cancelled") == 1
    assert plane.woken() == ["e-3"]
    plane.ecs.stop_task(cluster=plane.cluster, task=plane.state("e-3").infrastructure["task_arn"])
    plane.clock.advance(3600)
    report = plane.monitor.run_once()
    assert plane.state("e-3").state is RunState.CRASHED
    assert plane.woken() == ["e-4"]
    plane.end("e-4", RunState.TIMED_OUT)
    assert plane.holders() == set()
    assert plane.waiting() == []


def test_a_duplicate_final_event_after_a_crash_while_releasing_finishes_the_release(
    plane: Plane,
) -> None:
    """record_state made the run final and died before giving its slot back: the redelivered
    event (not applied again) gives it back and wakes the next."""
    plane.slots.put(limit(1))
    plane.request("d-1")
    plane.request("d-2")
    plane.store.runs.transition("d-1", RunState.SUCCESS, Source.RUNNER)  # and then it died
    assert plane.holders() == {"d-1"}
    plane.end("d-1")  # the redelivery
    assert plane.holders() == {"d-2"}
    assert plane.woken() == ["d-2"]


def test_one_monitor_pass_repairs_leaked_slots_lost_waits_and_lost_wakes(plane: Plane) -> None:
    plane.slots.put(limit(2))
    plane.request("m-1")
    plane.request("m-2")
    plane.request("m-3")
    plane.request("m-4")
    # m-1 ended, and whatever ended it died before giving its slot back;
    plane.store.runs.transition("m-1", RunState.CRASHED, Source.INFRASTRUCTURE)
    # a slot held by a run that does not exist (the table was edited by hand);
    plane.store.client.update_item(
        TableName=plane.store.table_name,
        Key={"pk": {"S": "LIMIT"}, "sk": {"S": LABEL}},
        UpdateExpression="SET holders.#ghost = :at",
        ExpressionAttributeNames={"#ghost": "ghost"},
        ExpressionAttributeValues={":at": {"S": "2026-11-30T00:00:00+00:00"}},
    )
    # and m-4 lost its place in the line.
    plane.store.limits.drop_waiter(LABEL, "m-4")
    assert plane.holders() == {"m-1", "m-2", "ghost"}
    report = plane.monitor.run_once()
    released = sorted(a.run_id for a in report.actions if a.action == "slot_released")
    assert released == ["ghost", "m-1"]
    woken = sorted(a.run_id for a in report.actions if a.action == "woken")
    assert woken == ["m-3", "m-4"]  # m-3 handed a slot, m-4 offered (nothing holds it back)
    assert sorted(plane.woken()) == ["m-3", "m-4"]
    assert plane.holders() == {"m-2", "m-3"}
    assert plane.state("m-3").state is RunState.SUBMITTED
    assert plane.state("m-4").state is RunState.QUEUED  # refused again: 2/2 held by m-2, m-3
    assert plane.waiting() == ["m-4"]
    assert plane.monitor.run_once().actions == []  # nothing left to repair


# --- found by review: interleavings and changes under the runs' feet -------------------------


def test_a_duplicate_delivery_never_takes_the_slots_of_a_launch_the_other_made(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """r needs a and b. Handed a, it is woken; a duplicate of its request, refused by b, would
    give a back while it waits for b, just as the wake's delivery launches r with both: the
    give-back is conditional on r still waiting and unclaimed, so it does not happen."""
    plane.slots.put(limit(1, name="a-lim", value=LABEL))
    plane.slots.put(limit(1, name="b-lim", value="gpu"))
    plane.request("x", labels=[LABEL])
    plane.request("y", labels=["gpu"])
    plane.request("r", labels=[LABEL, "gpu"])
    plane.request("z", labels=[LABEL])
    plane.end("x")  # a is handed to r
    real = plane.store.runs.claim_launch
    interleaved: list[Any] = []

    def claim_then_the_wake_launches_r(run: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(run, *args, **kwargs)
        if run.run_id == "r" and not interleaved:
            interleaved.append(result)  # the duplicate was refused by b-lim; meanwhile:
            plane.end("y")  # b is handed to r too,
            plane.woken()  # and the wake's delivery launches r with both
        return result

    monkeypatch.setattr(plane.store.runs, "claim_launch", claim_then_the_wake_launches_r)
    plane.request("r", labels=[LABEL, "gpu"])  # the duplicate delivery
    plane.woken()
    assert plane.state("r").state is RunState.SUBMITTED
    assert plane.state("z").state is RunState.QUEUED  # never two runs under a-lim (max 1)
    assert plane.holders("a-lim") == {"r"}
    assert plane.waiting("a-lim") == ["z"]


def test_a_limit_that_comes_to_cover_something_else_lets_its_waiting_runs_go(
    plane: Plane,
) -> None:
    plane.slots.put(limit(0, name="L", value=LABEL))
    plane.request("r")
    assert plane.state("r").state is RunState.QUEUED
    assert plane.slots.put(limit(0, name="L", kind="flow", value="other")) == ["r"]
    assert plane.woken() == ["r"]
    assert plane.state("r").state is RunState.SUBMITTED
    assert plane.waiting("L") == []  # its place in the line it no longer needs is given up


def test_a_run_queued_for_a_deleted_targets_limit_goes_to_another_target(
    plane: Plane, network: dict[str, Any]
) -> None:
    plane.store.targets.put(
        Target(
            name="other",
            kind="ecs",
            labels=[LABEL],
            settings={"cluster": plane.cluster, "image": "example/flows:1", **network},
        )
    )
    plane.slots.put(limit(1, name="T", kind="target", value="fargate"))
    plane.request("x")
    plane.request("r")
    assert plane.state("r").state is RunState.QUEUED
    plane.store.targets.delete("fargate")
    plane.clock.advance(TARGETS_TTL_SECONDS)  # a dispatcher sees a removed target this late
    report = plane.monitor.run_once()
    assert [a.run_id for a in report.actions if a.action == "woken"] == ["r"]
    plane.woken()
    assert (plane.state("r").state, plane.state("r").target) == (RunState.SUBMITTED, "other")
    assert plane.waiting("T") == []


def test_a_redelivered_cancel_finishes_giving_back_what_its_first_delivery_did_not(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    plane.slots.put(limit(1))
    plane.request("a")
    plane.request("b")
    plane.end("a")  # b is handed the slot
    assert plane.woken() == ["b"]

    def killed(run: Any) -> list[str]:
        raise KeyboardInterrupt("the canceller died before giving back")

    with monkeypatch.context() as patch:
        patch.setattr(plane.canceller.slots, "give_back", killed)
        plane.canceller.cancel(FlowRunCancelRequested(flow_run_id="b"))  # Cancelling: launched
        plane.ecs.stop_task(cluster=plane.cluster, task=plane.state("b").infrastructure["task_arn"])
        plane.clock.advance(120)
        with pytest.raises(KeyboardInterrupt):
            plane.monitor.run_once()  # confirms the stop: Cancelled, then dies giving back
    assert plane.state("b").state is RunState.CANCELLED
    assert plane.holders() == {"b"}
    outcome = plane.canceller.cancel(FlowRunCancelRequested(flow_run_id="b"))  # redelivered
    assert outcome.message == "run b is already Cancelled; nothing to cancel"
    assert plane.holders() == set()
    assert plane.request("c").state is RunState.SUBMITTED


def test_a_run_under_two_limits_always_ends_its_dispatch_in_a_line(
    plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """r needs a and b; while it dispatches, slots free and are taken around it so that each
    try is refused by the other limit. However it ends, it waits in the line of the limit that
    refused it last, so a younger run cannot overtake it there."""
    plane.slots.put(limit(1, name="a-lim", value=LABEL))
    plane.slots.put(limit(1, name="b-lim", value="gpu"))
    plane.request("x", labels=[LABEL])
    real = plane.store.runs.claim_launch
    claims: list[Any] = []

    def with_others_around(run: Any, *args: Any, **kwargs: Any) -> Any:
        if run.run_id != "r":
            return real(run, *args, **kwargs)
        claims.append(run.run_id)
        if len(claims) == 3:
            plane.request("q", labels=[LABEL])  # takes a-lim if it is free and nobody waits
        result = real(run, *args, **kwargs)
        if len(claims) == 1:
            plane.end("x")
            plane.request("p", labels=["gpu"])
        elif len(claims) == 2:
            plane.end("p")
        return result

    with monkeypatch.context() as patch:
        patch.setattr(plane.store.runs, "claim_launch", with_others_around)
        outcome = plane.request("r", labels=[LABEL, "gpu"])
    if outcome.state is RunState.QUEUED:
        lines = {name: plane.waiting(name) for name in ("a-lim", "b-lim")}
        assert any("r" in line for line in lines.values()), lines
    plane.request("s", labels=[LABEL])
    for holder in sorted(plane.holders("a-lim") | plane.holders("b-lim")):
        if holder != "r" and plane.state(holder).state is RunState.SUBMITTED:
            plane.end(holder)
    plane.woken()
    for holder in sorted(plane.holders("a-lim") | plane.holders("b-lim")):
        if holder not in ("r", "s") and plane.state(holder).state is RunState.SUBMITTED:
            plane.end(holder)
    plane.woken()
    assert plane.state("r").state is RunState.SUBMITTED  # r first: it asked before s
