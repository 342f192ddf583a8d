"""Concurrency limits under fault injection: the dispatcher killed at every AWS call it makes
while it takes a slot, record_state killed at every AWS call it makes while it gives one back,
then the message delivered again (or, for record_state, lost), every run ended, and one monitor
pass.

As in ``test_fault_injection_dispatch`` (whose ``CallTrace``, ``Fault`` and ``Killed`` are used
here), ``before`` means the call never reached AWS, ``after`` that AWS did it and the process died
before it saw the answer; the kill is a ``BaseException`` raised from botocore's events on the
real clients (DynamoDB, ECS, EventBridge), against moto over HTTP; nothing of flowrelay is
mocked. Killed before call N (N > 0) is the same point as killed after call N - 1 (only the
process's own memory, lost with it, changes between them), so each delivery is killed before
its first call and after every call (``kills``). Woken runs' requests go through a real bus,
whose rule routes them to a queue that the test delivers from, as the Dispatch function would.

Each case has its own limit (of its own label), its own ECS cluster and its own runs; the
table, bus and queue are the module's (each case's items are deleted when it ends). The shapes:

- dispatch (family A), the run under test requested while its limit (a) has a free slot (max 2,
  one holder), (b) is full, behind an older waiting run (max 1), (c) is full, and its holder
  ends while the run is being dispatched: before the run joins the waiting list (the second try
  finds the slot free), or after it joined (the slot is handed to it, and it is woken). Killed
  at every call of its clean dispatch (both "frees" shapes from the first call where they differ
  from the others), then delivered again until it settles (time moves past the launch lease
  where a claim was left).
- record_state (family B): the holder's final report (Success from its runner), with one
  waiting run (max 1) or two (max 2, two holders), killed at every call, then delivered again
  to a new recorder; and, with two waiting runs (max 1), the report never delivered again after
  the kill (the monitor alone repairs).

Then every launched run is ended (its task stopped, its runner's Success recorded), the woken
runs' requests are delivered, time moves an hour on, one monitor pass runs and its requests are
delivered; then what was launched meanwhile is ended too. What every case must show:

- over-limit launches: 0. After every step that can launch (each dispatch, the monitor pass)
  the case's runs in Submitted or Running, its RUNNING ECS tasks and the limit's holders are
  each at most ``max_runs``; and by the runs' histories, at no moment were more runs launched
  (from Submitted to their end) than ``max_runs``. At most one ECS task per run and attempt.
- leaked slots: 0. After the monitor pass, no holder is a run that ended or does not exist; at
  the end, no holder and no waiter is left.
- stuck runs: 0. After the monitor pass (and its requests), no run is Queued while its limit has
  a free slot, holding one, or in no waiting list; no run is Pending with nothing due; at the
  end, every run has ended.
- the runs that waited were given their slots in the order they were requested (oldest first).
  When they launched is reported (``launched_out_of_order``), not held: a run handed its slot
  whose wake was lost for good (its event never delivered again) launches at the monitor's
  pass, possibly after a younger run handed one later. A redelivery wakes it again at once
  (``Slots.release`` wakes the holders still marked handed).

The figures (by family, shape and phase) are printed when the module ends, written to
``fault-injection-limits.json`` in pytest's base temporary directory, and held by
``test_figures``.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import boto3
import pytest
from botocore.config import Config

from flowrelay.aws.bus import Publisher
from flowrelay.control.dispatch import LAUNCH_LEASE, Dispatcher, DispatchOutcome, RetryLater
from flowrelay.control.monitor import Monitor, request_for
from flowrelay.control.recorder import RecordOutcome, StateRecorder
from flowrelay.control.slots import Slots
from flowrelay.control.store import Store
from flowrelay.control.store.limits import HANDED
from flowrelay.control.store.runs import run_from_item
from flowrelay.core.concurrency import ConcurrencyLimit
from flowrelay.core.events import FlowRunStateChanged, ParsedEvent, parse_event
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun, HistoryEntry
from flowrelay.launchers.ecs import EcsLauncher
from flowrelay.launchers.ecs.names import ATTEMPT_TAG, GROUP_PREFIX
from tests.control.test_fault_injection_dispatch import PHASES, CallTrace, Fault, Killed, Phase
from tests.support.aws import (
    Clock,
    aligned,
    create_run_table,
    default_network,
    ecs_tasks_kept_running,
    point_boto3_at,
    register_etl,
    report_figures,
    violation_lines,
)
from tests.support.cli import routed_queue
from tests.support.strategies import envelope

Family = Literal["dispatch", "record_state"]
#: Clean deliveries of the request after the faulted one, at most, before the run must settle.
MAX_REDELIVERIES = 4
#: Rounds of delivering woken runs' requests (a request told RetryLater comes back in the next).
MAX_WAKE_ROUNDS = 4
#: How far time moves before the monitor pass: past the start timeout of a run whose final
#: report was lost (its task stopped), so that the pass finds it ended.
BEFORE_THE_MONITOR = timedelta(hours=1)
LAUNCHED = frozenset({RunState.SUBMITTED, RunState.RUNNING})

_PREFIX = (
    "dynamodb:BatchGetItem",  # 0 the run (not there yet) and its registered flow
    "dynamodb:Query",  # 1 the launch targets (a new dispatcher: its cache is empty)
    "dynamodb:Query",  # 2 the concurrency limits (Slots.needed_for)
    "dynamodb:PutItem",  # 3 create the run (unclaimed: a limit applies)
    "dynamodb:TransactWriteItems",  # 4 claim the launch and take the slot, in one write
)
_LAUNCH = (
    "ecs:DescribeTaskDefinition",  # the run's own image: its family is not registered yet
    "ecs:RegisterTaskDefinition",
    "ecs:RunTask",
    "dynamodb:TransactWriteItems",  # record Submitted and the task (from the run held)
)
_REFUSED = (
    "dynamodb:GetItem",  # 5 the claim was cancelled: the limit, for its holders (refused_by)
    "dynamodb:TransactWriteItems",  # 6 join the limit's waiting list, and name it on the run
    "dynamodb:GetItem",  # 7 the limit again: a slot freed meanwhile, with nobody to hand it to?
)
#: A new run's clean dispatch by a new dispatcher, a slot of its limit free: 0-4, then 5-8.
TAKES_A_FREE_SLOT = (*_PREFIX, *_LAUNCH)
#: The limit is full (call 4 is cancelled), and still full once the run is in line (call 7).
REFUSED_AND_QUEUED = (
    *_PREFIX,
    *_REFUSED,
    "dynamodb:TransactWriteItems",  # 8 record Queued, with the limit and its holders
)
#: The limit is full at call 4; its holder ends before the run joins the line (call 6), with
#: nobody to hand its slot to: the run hands it to the oldest in line, itself, and takes it.
REFUSED_THEN_A_SLOT_FREES = (
    *_PREFIX,
    *_REFUSED,
    "dynamodb:GetItem",  # 8 the oldest waiting run (itself), still waiting? (Slots.hand_over)
    "dynamodb:UpdateItem",  # 9 hand it the slot (LimitStore.give); no wake: it is dispatching
    "dynamodb:GetItem",  # 10 the limit after the hand-over: the run holds the slot
    "dynamodb:TransactWriteItems",  # 11 claim again, the slot a repeat
    *_LAUNCH,
)
#: The limit is full at call 4; its holder ends once the run is in line (before call 7), and
#: its record_state hands the slot to the run: call 7 finds it a holder, and it claims again.
REFUSED_THEN_HANDED = (
    *_PREFIX,
    *_REFUSED,
    "dynamodb:TransactWriteItems",  # 8 claim again, the slot handed to it a repeat
    *_LAUNCH,
)
#: record_state handling the holder's Success (from its runner), a run waiting for its slot.
RECORD_AND_RELEASE = (
    "dynamodb:GetItem",  # 0 the run (RunStore.transition)
    "dynamodb:TransactWriteItems",  # 1 record Success
    "dynamodb:UpdateItem",  # 2 give the slot back (LimitStore.release)
    "dynamodb:GetItem",  # 3 the oldest waiting run, still waiting? (Slots.hand_over)
    "dynamodb:UpdateItem",  # 4 hand it the slot (LimitStore.give)
    "events:PutEvents",  # 5 wake it: a request on the bus
)


# --- the shapes and the scenarios -----------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """A limit and its runs as a case finds them, and the delivery the case faults."""

    name: str
    family: Family
    max_runs: int
    holders: int
    waiters: int  # Queued before the delivery under test, oldest first
    calls: tuple[str, ...]  # the clean delivery's AWS calls
    #: dispatch: the first holder ends (its Success recorded) just before this call of the
    #: delivery (or at once if the delivery was killed before it)
    frees_at: int | None = None
    #: record_state: the report is never delivered again (the monitor alone repairs)
    lost: bool = False
    #: The first kill (call, phase): the kills before it are those of another shape.
    kills_from: tuple[int, Phase] = (0, "before")


FREE = Shape("free slot", "dispatch", 2, 1, 0, TAKES_A_FREE_SLOT)
FULL = Shape("full, queued behind a waiter", "dispatch", 1, 1, 1, REFUSED_AND_QUEUED)
#: Killed before the claim (calls 0-3: the run at most created), the holder ends at once after
#: the kill and the redelivery finds a free slot: FREE's kills at those calls, not repeated.
FREES_BEFORE_LINE = Shape(
    "full, frees before it joins the line",
    "dispatch",
    1,
    1,
    0,
    REFUSED_THEN_A_SLOT_FREES,
    frees_at=6,
    kills_from=(4, "before"),
)
#: Killed before it joined the line (before call 6 is done), the holder ends at once after the
#: kill in both "frees" shapes: those kills are FREES_BEFORE_LINE's, and are not repeated here.
FREES_IN_LINE = Shape(
    "full, handed to it in line",
    "dispatch",
    1,
    1,
    0,
    REFUSED_THEN_HANDED,
    frees_at=7,
    kills_from=(6, "after"),
)
ONE_WAITER = Shape("max 1, one waiter", "record_state", 1, 1, 1, RECORD_AND_RELEASE)
#: Two holders, two waiters: the slot the first holder gives back goes to the older waiter,
#: while the second holder keeps its own.
MAX_TWO = Shape("max 2, two waiters", "record_state", 2, 2, 2, RECORD_AND_RELEASE)
LOST = Shape("max 1, two waiters, lost", "record_state", 1, 1, 2, RECORD_AND_RELEASE, lost=True)
SHAPES = (FREE, FULL, FREES_BEFORE_LINE, FREES_IN_LINE, ONE_WAITER, MAX_TWO, LOST)


@dataclass(frozen=True)
class Scenario:
    shape: Shape
    fault: Fault | None  # None: the clean delivery

    @property
    def name(self) -> str:
        return f"{self.shape.name}: {self.fault.label if self.fault else 'clean'}"

    @property
    def phase(self) -> str:
        return self.fault.phase if self.fault else "clean"


def kills(shape: Shape) -> list[Scenario]:
    """A kill at every point of the shape's clean delivery (from ``kills_from``): before its
    first call, and after each call. Killed before call N (N > 0) is the same point as killed
    after call N - 1: nothing but the process's own memory, lost with it, happens between
    the two, so those cases are not run twice."""
    first, phase = shape.kills_from
    start = 2 * first + PHASES.index(phase)
    every = [
        Scenario(shape, Fault(index, phase, call))
        for index, call in enumerate(shape.calls)
        for phase in PHASES
    ][start:]
    return [s for s in every if s.fault is None or s.fault.phase == "after" or s.fault.index == 0]


def params(scenarios: Sequence[Scenario]) -> list[Any]:
    return [pytest.param(scenario, id=scenario.name) for scenario in scenarios]


DISPATCH_KILLS = [s for shape in SHAPES if shape.family == "dispatch" for s in kills(shape)]
RECORD_KILLS = [s for shape in SHAPES if shape.family == "record_state" for s in kills(shape)]
CLEAN = [Scenario(shape, None) for shape in SHAPES]


# --- the world ------------------------------------------------------------------------------


@dataclass
class World:
    """One table, bus and queue (routed woken requests) in moto, shared by every case of the
    module, and the clients every process of the module uses."""

    dynamodb: Any
    ecs: Any
    events: Any
    sqs: Any
    table: str
    bus: str
    queue: str
    network: dict[str, Any]
    clock: Clock
    cases: int = 0
    puts: int = 0  # PutEvents calls made (or about to be): requests may be on the queue
    received: int = 0  # the value of ``puts`` when the queue was last emptied

    def count_put(self, **_: Any) -> None:
        self.puts += 1

    def store(self) -> Store:
        return Store(self.dynamodb, self.table, clock=self.clock)

    def process(self) -> Process:
        """The control plane's parts as a new process wires them (nothing kept in memory)."""
        store = self.store()
        publisher = Publisher(self.events, self.bus)
        slots = Slots(store, wake=lambda run: publisher.publish(request_for(run, "a freed slot")))
        launcher = EcsLauncher(self.ecs, table_name=self.table, bus_name=self.bus)
        return Process(
            dispatcher=Dispatcher(store, {"ecs": launcher}, slots=slots),
            recorder=StateRecorder(store, slots=slots),
            monitor=Monitor(store, {"ecs": launcher}, publisher, slots=slots),
        )


@dataclass
class Process:
    dispatcher: Dispatcher
    recorder: StateRecorder
    monitor: Monitor


@pytest.fixture(scope="module")
def world(moto_server: str) -> Iterator[World]:
    """What ``aws_env``, ``run_table``, ``ecs``, ``network`` and ``bus`` give one test, made once
    for the module (each case makes its own cluster and limit)."""
    with (
        pytest.MonkeyPatch.context() as env,
        ecs_tasks_kept_running(moto_server),
    ):
        point_boto3_at(env, moto_server, "/nonexistent/flowrelay-no-aws-config")
        dynamodb = boto3.client("dynamodb")
        events = boto3.client("events")
        table = f"flowrelay-limit-faults-{uuid.uuid4().hex[:8]}"
        bus = f"flowrelay-limit-faults-{uuid.uuid4().hex[:8]}"
        create_run_table(dynamodb, table)
        events.create_event_bus(Name=bus)
        routed = routed_queue(bus, "Flow Run Requested")
        queue = next(routed)
        try:
            world = World(
                dynamodb=dynamodb,
                ecs=boto3.client("ecs", config=Config(retries={"mode": "standard"})),
                events=events,
                sqs=boto3.client("sqs"),
                table=table,
                bus=bus,
                queue=queue,
                network=default_network(),
                clock=Clock(),
            )
            events.meta.events.register("before-call.events.PutEvents", world.count_put)
            register_etl(world.store())
            yield world
        finally:
            next(routed, None)  # the queue and its rule deleted
            events.delete_event_bus(Name=bus)
            dynamodb.delete_table(TableName=table)


# --- deliveries -----------------------------------------------------------------------------


class Trace(CallTrace):
    """``CallTrace``, and ``interpose`` run once just before call ``at`` of the delivery (what
    another process does at that moment); its own calls are neither recorded nor faulted."""

    def __init__(
        self,
        faults: Sequence[Fault],
        at: int | None = None,
        interpose: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(faults)
        self.at = at
        self.interpose = interpose
        self.interposed = False
        self.paused = False

    def before(self, model: Any, **kwargs: Any) -> None:
        if self.paused:
            return
        if self.at is not None and len(self.calls) == self.at:
            self.run_interposed()
        super().before(model, **kwargs)

    def after(self, model: Any, **kwargs: Any) -> None:
        if not self.paused:
            super().after(model, **kwargs)

    def run_interposed(self) -> None:
        if self.interpose is None or self.interposed:
            return
        self.interposed = True
        self.paused = True
        try:
            self.interpose()
        finally:
            self.paused = False


@dataclass
class Delivery:
    """One delivery to a new process: its AWS calls, those AWS answered, how it ended."""

    what: str
    calls: list[str]
    answered: list[str]
    ended: DispatchOutcome | RecordOutcome | BaseException

    def describe(self) -> str:
        if isinstance(self.ended, DispatchOutcome):
            ended = str(self.ended.state) + (" (launched)" if self.ended.launched else "")
        elif isinstance(self.ended, RecordOutcome):
            ended = f"{self.ended.state} ({'applied' if self.ended.applied else 'not applied'})"
        elif isinstance(self.ended, RetryLater):
            ended = f"RetryLater({self.ended.reason})"
        else:
            ended = f"{type(self.ended).__name__}({self.ended})"
        return f"{self.what}: {ended} [{len(self.calls)} calls]"


def success(run_id: str) -> ParsedEvent:
    """The run's runner reports Success, as record_state receives it (one event id: a
    redelivery is the same event)."""
    detail = FlowRunStateChanged(flow_run_id=run_id, state=RunState.SUCCESS, source=Source.RUNNER)
    entry = detail.entry("bus")
    return parse_event(
        envelope(entry["DetailType"], json.loads(entry["Detail"]), event_id=str(uuid.uuid4()))
    )


# --- one case ---------------------------------------------------------------------------------


@dataclass
class CaseResult:
    case: str
    family: str
    shape: str
    phase: str
    limit: str
    deliveries: list[str]
    states: dict[str, str]
    ecs_tasks: int
    over_limit_launches: int = 0
    double_launches: int = 0
    leaked_slots: int = 0
    stuck_runs: int = 0
    fifo_violations: int = 0
    launched_out_of_order: int = 0
    repaired_by_monitor: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Snapshot:
    """The case's runs and its limit, read in one consistent ``BatchGetItem``."""

    runs: dict[str, FlowRun]
    limit: bool  # whether the limit exists
    holders: dict[str, str]  # run id -> when it took or was handed its slot
    waiting: tuple[str, ...]  # oldest first
    max_runs: int

    @property
    def free(self) -> int:
        return max(0, self.max_runs - len(self.holders))

    def launched(self) -> list[FlowRun]:
        return [run for run in self.runs.values() if run.state in LAUNCHED]


class Case:
    """One limit (of its own label, with its own cluster), its runs, and what was seen."""

    def __init__(self, world: World, scenario: Scenario) -> None:
        world.cases += 1
        self.world = world
        self.scenario = scenario
        self.shape = scenario.shape
        self.name = f"lim-{world.cases:03d}-{uuid.uuid4().hex[:6]}"
        self.cluster = f"faults-{self.name}"
        self.runs: list[str] = []  # in the order they were requested
        self.lost: set[str] = set()  # runs whose final report is lost: the monitor ends them
        self.deliveries: list[Delivery] = []
        self.problems: list[str] = []
        self.peak = {"launched runs": 0, "running tasks": 0, "holders": 0}
        self.leaked: set[str] = set()
        self.stuck: set[str] = set()
        self.repaired = 0
        self.ended: set[str] = set()  # runs whose end the test recorded
        self.last = Snapshot({}, False, {}, (), self.shape.max_runs)
        self.slot_since: dict[str, str] = {}  # when each run first held a slot (as seen)

    @property
    def store(self) -> Store:
        return self.world.store()

    # --- steps ----------------------------------------------------------------------------

    def set_up(self) -> None:
        """The case's cluster, a target taking its label, its limit, then its holders
        (launched) and its waiters (Queued), each dispatched cleanly."""
        self.world.ecs.create_cluster(clusterName=self.cluster)
        settings = {"cluster": self.cluster, "image": "example/flows:1", **self.world.network}
        self.store.targets.put(
            Target(name="fargate", kind="ecs", labels=[self.name], settings=settings)
        )
        self.store.limits.put(
            ConcurrencyLimit(
                name=self.name, kind="label", value=self.name, max_runs=self.shape.max_runs
            )
        )
        for number in range(1, self.shape.holders + 1):
            ended = self.dispatch(self.request(f"h{number}"), check=False).ended
            assert isinstance(ended, DispatchOutcome), ended
            assert ended.launched, ended
        for number in range(1, self.shape.waiters + 1):
            ended = self.dispatch(self.request(f"w{number}"), check=False).ended
            assert isinstance(ended, DispatchOutcome), ended
            assert ended.state is RunState.QUEUED, ended
        self.check("set up", tasks=False)

    def request(self, suffix: str, own_image: bool = False) -> ParsedEvent:
        """A request for a new run of the case; ``own_image``: its own task definition (so
        that its dispatch registers one), else the target's image, the module's runs share."""
        run_id = f"{self.name}-{suffix}"
        detail: dict[str, Any] = {"flow": "etl", "flow_run_id": run_id, "labels": [self.name]}
        if own_image:
            detail["run_config"] = {"type": "ECSRun", "image": f"example/flows:{run_id}"}
        self.runs.append(run_id)
        return parse_event(envelope("Flow Run Requested", detail, event_id=str(uuid.uuid4())))

    def deliver(
        self,
        what: str,
        handle: Callable[[Process], DispatchOutcome | RecordOutcome],
        faults: Sequence[Fault] = (),
        at: int | None = None,
        interpose: Callable[[], None] | None = None,
        check: bool = True,
    ) -> Delivery:
        """One delivery to a new process, a second after the step before, the faults armed on
        every client; then the limit is checked."""
        self.world.clock.advance(1)
        trace = Trace(faults, at, interpose)
        clients = (self.world.dynamodb, self.world.ecs, self.world.events)
        for client in clients:
            client.meta.events.register("before-call.*.*", trace.before)
            client.meta.events.register("after-call.*.*", trace.after)
        ended: DispatchOutcome | RecordOutcome | BaseException
        try:
            ended = handle(self.world.process())
        except (Killed, Exception) as exc:
            ended = exc
        finally:
            for client in clients:
                client.meta.events.unregister("before-call.*.*", trace.before)
                client.meta.events.unregister("after-call.*.*", trace.after)
        missed = [fault for fault in faults if fault not in trace.fired]
        assert not missed, f"faults never reached: {missed}; the calls were {trace.calls}"
        assert not trace.mismatches, f"{trace.mismatches}; the calls were {trace.calls}"
        delivery = Delivery(what, trace.calls, trace.answered, ended)
        self.deliveries.append(delivery)
        trace.run_interposed()  # killed before it: the holder ends at once, meanwhile
        if check:
            self.check(what, tasks=what.startswith(("dispatch", "redeliver", "woken")))
        if not isinstance(ended, DispatchOutcome | RecordOutcome | RetryLater | Killed):
            self.problems.append(f"{what}: {delivery.describe()}")
        return delivery

    def dispatch(
        self,
        event: ParsedEvent,
        faults: Sequence[Fault] = (),
        at: int | None = None,
        interpose: Callable[[], None] | None = None,
        what: str = "dispatch",
        check: bool = True,
    ) -> Delivery:
        return self.deliver(
            f"{what} {event.detail.flow_run_id}",
            lambda process: process.dispatcher.handle_request(event),
            faults,
            at,
            interpose,
            check,
        )

    def record(
        self, event: ParsedEvent, faults: Sequence[Fault] = (), check: bool = True
    ) -> Delivery:
        return self.deliver(
            f"record {event.detail.flow_run_id} {event.detail.state}",
            lambda process: process.recorder.handle(event),
            faults,
            check=check,
        )

    def end(self, run_id: str) -> None:
        """The run's flow ends: its task stops and its runner's Success is recorded (the task
        stopped first, so that it never outlives its run in the counts)."""
        self.stop_task(run_id)
        # Not checked: recording an end launches nothing (the woken runs' dispatches that
        # follow are checked, and so is the limit's holders with them).
        self.record(success(run_id), check=False)
        self.ended.add(run_id)

    def stop_task(self, run_id: str) -> None:
        run = self.last.runs.get(run_id)
        arn = run.infrastructure.get("task_arn") if run else None
        if arn:
            self.world.ecs.stop_task(cluster=self.cluster, task=arn, reason="the flow ended")

    def end_holder_meanwhile(self) -> None:
        """What another process does while the delivery under test runs: the first holder's
        flow ends, and its report is recorded (a second later; a second before the delivery
        goes on)."""
        self.world.clock.advance(1)
        holder = self.runs[0]
        self.stop_task(holder)
        self.world.process().recorder.handle(success(holder))
        self.world.clock.advance(1)

    def redeliver(self, event: ParsedEvent) -> None:
        """The request again, until a delivery ends with an outcome; after RetryLater (the dead
        dispatcher's claim, a backoff) time moves past the lease and the backoff."""
        for _ in range(MAX_REDELIVERIES):
            if not isinstance(self.dispatch(event, what="redeliver").ended, RetryLater):
                return
            self.move_past_lease_and_backoff([event.detail.flow_run_id])
        self.problems.append(f"{event.detail.flow_run_id}: RetryLater {MAX_REDELIVERIES} times")

    def move_past_lease_and_backoff(self, run_ids: Sequence[str]) -> None:
        until = self.world.clock.now + LAUNCH_LEASE
        for run_id in run_ids:
            run = self.last.runs.get(run_id)
            if run is not None and run.retry_at is not None:
                until = max(until, run.retry_at)
        self.world.clock.now = until + timedelta(seconds=1)

    def deliver_woken(self) -> None:
        """Dispatch every request on the bus's queue (woken runs, the monitor's offers), as
        the Dispatch function would; one told RetryLater comes back after its lease."""
        later: list[ParsedEvent] = []
        for _ in range(MAX_WAKE_ROUNDS):
            batch = [*later, *self.received()]
            if not batch:
                return
            later = []
            for event in batch:
                if isinstance(self.dispatch(event, what="woken").ended, RetryLater):
                    later.append(event)
            if later:
                self.move_past_lease_and_backoff([e.detail.flow_run_id for e in later])
        self.problems.append(f"woken requests still told RetryLater: {len(later)}")

    def received(self) -> list[ParsedEvent]:
        """The requests on the queue (none asked for when nothing was put on the bus since
        it was last emptied: moto routes an event to the queue within PutEvents)."""
        if self.world.puts == self.world.received:
            return []
        self.world.received = self.world.puts
        sqs, found = self.world.sqs, list[ParsedEvent]()
        while True:
            messages = sqs.receive_message(QueueUrl=self.world.queue, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            for message in messages:
                found.append(parse_event(message["Body"]))
                sqs.delete_message(
                    QueueUrl=self.world.queue, ReceiptHandle=message["ReceiptHandle"]
                )
            if len(messages) < 10:
                return found

    def end_launched(self) -> None:
        """End every launched run of the case (not those whose report is lost), oldest launch
        first, delivering the requests of the runs each end wakes."""
        for _ in range(2 * len(self.runs) + 2):
            launched = sorted(
                (run for run in self.last.launched() if run.run_id not in self.lost | self.ended),
                key=lambda run: (run.launched_at or run.state_entered_at, run.run_id),
            )
            if not launched:
                self.check("every launched run ended", tasks=False)  # the ends: read again
                if not any(
                    run.run_id not in self.lost | self.ended for run in self.last.launched()
                ):
                    return
                continue
            self.end(launched[0].run_id)
            self.deliver_woken()
        self.problems.append("runs still being launched after every run was ended")

    def monitor_pass(self) -> None:
        """An hour on, one monitor pass, and the requests it published delivered."""
        self.world.clock.now += BEFORE_THE_MONITOR
        report = self.world.process().monitor.run_once()
        mine = [a for a in report.actions if a.run_id in self.runs]
        self.repaired = sum(
            a.action in ("slot_released", "waiter_dropped", "woken", "crashed") for a in mine
        )
        self.check("the monitor pass", tasks=False)  # it stops tasks, never starts one
        self.deliver_woken()

    # --- what is checked ------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        table = self.world.table
        keys = [{"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}} for run_id in self.runs]
        keys.append({"pk": {"S": "LIMIT"}, "sk": {"S": self.name}})
        response = self.world.dynamodb.batch_get_item(
            RequestItems={table: {"Keys": keys, "ConsistentRead": True}}
        )
        assert not response.get("UnprocessedKeys"), response["UnprocessedKeys"]
        runs: dict[str, FlowRun] = {}
        limit: dict[str, Any] | None = None
        for item in response["Responses"][table]:
            if item["pk"]["S"] == "LIMIT":
                limit = item
                continue
            run = run_from_item(item)
            runs[run.run_id] = run
        holders = {
            run_id: at["S"] for run_id, at in (limit or {}).get("holders", {}).get("M", {}).items()
        }
        waiting = sorted(
            (at["S"], run_id)
            for run_id, at in (limit or {}).get("waiting", {}).get("M", {}).items()
        )
        return Snapshot(
            runs={run_id: runs[run_id] for run_id in self.runs if run_id in runs},
            limit=limit is not None,
            holders=holders,
            waiting=tuple(run_id for _, run_id in waiting),
            max_runs=self.shape.max_runs,
        )

    def check(self, where: str, tasks: bool = True) -> None:
        """Never more launched runs, running tasks or holders than ``max_runs`` (the tasks
        not counted, ``tasks`` False, after a step that cannot start one)."""
        self.last = self.snapshot()
        for run_id, since in self.last.holders.items():
            # A slot handed to a waiting run is marked so until the run's dispatch takes it.
            self.slot_since.setdefault(run_id, since.removeprefix(HANDED))
        counts = {
            "launched runs": len(self.last.launched()),
            "holders": len(self.last.holders),
        }
        if tasks:
            running = self.world.ecs.list_tasks(cluster=self.cluster, desiredStatus="RUNNING")
            counts["running tasks"] = len(running["taskArns"])
        for what, count in counts.items():
            self.peak[what] = max(self.peak[what], count)
            if count > self.shape.max_runs:
                self.problems.append(f"after {where}: {count} {what}, max {self.shape.max_runs}")

    def check_after_monitor(self) -> None:
        """No slot held by a run that ended or does not exist; no run left waiting with
        nothing to wake it."""
        now, last = self.world.clock.now, self.last
        if not last.limit:
            self.problems.append("the limit is gone")
            return
        for holder in sorted(last.holders):
            run = last.runs.get(holder)
            if run is None or run.state.is_final:
                self.leaked.add(holder)
                state = "does not exist" if run is None else f"is {run.state}"
                self.problems.append(f"after the monitor pass, holder {holder} {state}")
        for run_id, run in last.runs.items():
            why: str | None = None
            if run.state is RunState.QUEUED:
                if last.free > 0:
                    why = f"Queued while {last.free} slot(s) are free"
                elif run_id in last.holders:
                    why = "Queued, holding its slot, not woken"
                elif run_id not in last.waiting:
                    why = "Queued, in no waiting list"
            elif run.state in (RunState.PENDING, RunState.SCHEDULED) and not (
                run.launch_claimed(now) or (run.retry_at and run.retry_at > now)
            ):
                why = f"{run.state} with nothing due"
            if why:
                self.stuck.add(run_id)
                self.problems.append(f"after the monitor pass, {run_id}: {why}")

    def check_at_the_end(self) -> None:
        last = self.last
        for run_id, run in last.runs.items():
            if not run.state.is_final:
                self.stuck.add(run_id)
                self.problems.append(f"at the end, {run_id} is {run.state}")
        if last.holders or last.waiting:
            self.leaked |= set(last.holders)
            self.problems.append(
                f"at the end, holders {sorted(last.holders)}, waiting {list(last.waiting)}"
            )

    def items(self) -> dict[str, list[dict[str, Any]]]:
        """Every item of each of the case's runs (the run, its history, its notes), by run."""
        return {
            run_id: self.store.table.query(
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
                ConsistentRead=True,
            )
            for run_id in self.runs
        }

    def tasks(self) -> dict[str, list[dict[str, Any]]]:
        """Every task of the case's cluster (running or stopped, with its tags), by run."""
        ecs = self.world.ecs
        arns = [
            arn
            for desired in ("RUNNING", "STOPPED")
            for arn in ecs.list_tasks(cluster=self.cluster, desiredStatus=desired)["taskArns"]
        ]
        found: dict[str, list[dict[str, Any]]] = {run_id: [] for run_id in self.runs}
        if arns:
            for task in ecs.describe_tasks(cluster=self.cluster, tasks=arns, include=["TAGS"])[
                "tasks"
            ]:
                found.setdefault(task.get("group", "").removeprefix(GROUP_PREFIX), []).append(task)
        return found

    def result(self, items: dict[str, list[dict[str, Any]]]) -> CaseResult:
        histories = {
            run_id: sorted(
                (
                    entry
                    for entry in (
                        HistoryEntry.model_validate_json(item["entry"]["S"])
                        for item in of_run
                        if item["sk"]["S"] != "RUN"
                    )
                    if not entry.note
                ),
                key=lambda entry: entry.version,
            )
            for run_id, of_run in items.items()
        }
        spans: list[tuple[datetime, int]] = []
        first: dict[str, datetime] = {}
        for run_id, entries in histories.items():
            launched = False
            for entry in entries:
                now = entry.state in LAUNCHED
                if now and not launched:
                    spans.append((entry.at, +1))
                    first.setdefault(run_id, entry.at)
                elif launched and not now:
                    spans.append((entry.at, -1))
                launched = now
        at_once = peak = 0
        for _, delta in sorted(spans, key=lambda span: (span[0], -span[1])):
            at_once += delta  # a launch and an end at the same moment count as overlapping
            peak = max(peak, at_once)
        if peak > self.shape.max_runs:
            self.problems.append(f"{peak} runs launched at once, by their histories")
        tasks = self.tasks()
        double = 0
        for run_id, of_run in tasks.items():
            attempts = Counter(
                next((t["value"] for t in task.get("tags", []) if t["key"] == ATTEMPT_TAG), "?")
                for task in of_run
            )
            extra = sum(count - 1 for count in attempts.values())
            if extra:
                double += extra
                self.problems.append(f"{run_id}: tasks per attempt {dict(attempts)}")
        # The runs that waited for a slot, in the order they were requested: they must be
        # given their slots in that order (oldest first). When they launch is only reported:
        # a run handed its slot whose wake was lost launches at the monitor's pass, after a
        # younger run handed a slot later whose wake was not lost.
        waited = [
            run_id
            for run_id in self.runs
            if any(e.state is RunState.QUEUED for e in histories[run_id])
        ]
        handed = [run_id for run_id in waited if run_id in self.slot_since]
        by_slot = sorted(handed, key=lambda run_id: self.slot_since[run_id])
        fifo = sum(a != b for a, b in zip(by_slot, handed, strict=True))
        if fifo:
            self.problems.append(f"waiting runs given slots in the order {by_slot}, not {handed}")
        started = [run_id for run_id in waited if run_id in first]
        by_launch = sorted(started, key=lambda run_id: first[run_id])
        late = sum(a != b for a, b in zip(by_launch, started, strict=True))
        return CaseResult(
            case=self.scenario.name,
            family=self.shape.family,
            shape=self.shape.name,
            phase=self.scenario.phase,
            limit=self.name,
            deliveries=[delivery.describe() for delivery in self.deliveries],
            states={run_id: str(run.state) for run_id, run in self.last.runs.items()},
            ecs_tasks=sum(len(of_run) for of_run in tasks.values()),
            over_limit_launches=max(
                0,
                peak - self.shape.max_runs,
                *(count - self.shape.max_runs for count in self.peak.values()),
            ),
            double_launches=double,
            leaked_slots=len(self.leaked),
            stuck_runs=len(self.stuck),
            fifo_violations=fifo,
            launched_out_of_order=late,
            repaired_by_monitor=self.repaired,
            problems=list(self.problems),
        )

    def finish(self) -> CaseResult:
        """Every run ended, one monitor pass, what it launched ended; the result."""
        self.deliver_woken()
        self.end_launched()
        self.monitor_pass()
        self.check_after_monitor()
        self.end_launched()
        self.check_at_the_end()
        items = self.items()
        result = self.result(items)
        self.purge([item for of_run in items.values() for item in of_run])
        return result

    def purge(self, items: list[dict[str, Any]]) -> None:
        """Delete the case's items and its limit: the next cases' monitor passes need not see
        them, and moto copies the whole table at every transaction, so a table that grows
        with every case slows every case after it."""
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in items]
        keys.append({"pk": {"S": "LIMIT"}, "sk": {"S": self.name}})
        for start in range(0, len(keys), 25):
            self.world.dynamodb.batch_write_item(
                RequestItems={
                    self.world.table: [
                        {"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]
                    ]
                }
            )


# --- the figures ------------------------------------------------------------------------------


class Figures:
    COLUMNS = (
        "cases",
        "ok",
        "ecs_tasks",
        "over_limit_launches",
        "double_launches",
        "leaked_slots",
        "stuck_runs",
        "fifo_violations",
        "launched_out_of_order",
        "repaired_by_monitor",
        "deliveries",
    )
    HELD_AT_ZERO = (
        "over_limit_launches",
        "double_launches",
        "leaked_slots",
        "stuck_runs",
        "fifo_violations",
    )

    def __init__(self) -> None:
        self.results: list[CaseResult] = []

    @staticmethod
    def count(results: list[CaseResult]) -> dict[str, int]:
        return {
            "cases": len(results),
            "ok": sum(r.ok for r in results),
            "ecs_tasks": sum(r.ecs_tasks for r in results),
            "over_limit_launches": sum(r.over_limit_launches for r in results),
            "double_launches": sum(r.double_launches for r in results),
            "leaked_slots": sum(r.leaked_slots for r in results),
            "stuck_runs": sum(r.stuck_runs for r in results),
            "fifo_violations": sum(r.fifo_violations for r in results),
            "launched_out_of_order": sum(r.launched_out_of_order > 0 for r in results),
            "repaired_by_monitor": sum(r.repaired_by_monitor > 0 for r in results),
            "deliveries": sum(len(r.deliveries) for r in results),
        }

    def summary(self) -> dict[str, Any]:
        groups: dict[str, list[CaseResult]] = {}
        families: dict[str, list[CaseResult]] = {}
        shapes = [shape.name for shape in SHAPES]
        phases = ["clean", *PHASES]
        for result in sorted(
            self.results,
            key=lambda r: (r.family, shapes.index(r.shape), phases.index(r.phase)),
        ):
            groups.setdefault(f"{result.family}: {result.shape}/{result.phase}", []).append(result)
            families.setdefault(f"{result.family} (all)/{result.phase}", []).append(result)
        return {
            "calls": {shape.name: list(shape.calls) for shape in SHAPES},
            "total": self.count(self.results),
            "by_family_and_phase": {key: self.count(value) for key, value in families.items()},
            "by_shape_and_phase": {key: self.count(value) for key, value in groups.items()},
            "violations": [asdict(r) for r in self.results if not r.ok],
        }

    def table(self) -> str:
        summary = self.summary()
        rows = [("", *self.COLUMNS)]
        for key, counts in [
            *summary["by_shape_and_phase"].items(),
            *summary["by_family_and_phase"].items(),
            ("total", summary["total"]),
        ]:
            rows.append((key, *(str(counts[column]) for column in self.COLUMNS)))
        return aligned(rows)


@pytest.fixture(scope="module")
def figures(
    tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config
) -> Iterator[Figures]:
    figures = Figures()
    yield figures
    if figures.results:
        path = tmp_path_factory.getbasetemp() / "fault-injection-limits.json"
        summary = figures.summary()
        path.write_text(json.dumps(summary, indent=2))
        lines = [
            *figures.table().splitlines(),
            "(over_limit_launches: runs launched beyond max_runs at once, by the steps' counts "
            "and the runs' histories; fifo_violations: waiting runs given a slot before an older "
            "one; launched_out_of_order: cases where a waiting run launched before an older one "
            "that had its slot first (its wake was lost: reported, not held); "
            "repaired_by_monitor: cases where the monitor pass gave a slot back, handed one on, "
            "woke a run, or crashed a run whose report was lost)",
            f"(as JSON: {path})",
        ]
        lines.extend(violation_lines(summary["violations"]))
        report_figures(
            pytestconfig,
            "fault injection: concurrency limits (dispatch taking slots, record_state giving "
            "them back)",
            lines,
        )


# --- playing a case -----------------------------------------------------------------------------


def play(world: World, figures: Figures, scenario: Scenario) -> None:
    case = Case(world, scenario)
    case.set_up()
    faults = [scenario.fault] if scenario.fault else []
    shape = scenario.shape
    if shape.family == "dispatch":
        event = case.request("r", own_image=True)
        delivery = case.dispatch(
            event, faults, at=shape.frees_at, interpose=case.end_holder_meanwhile
        )
        if faults:
            case.redeliver(event)
    else:
        holder = case.runs[0]
        case.stop_task(holder)
        report = success(holder)
        delivery = case.record(report, faults)
        if faults and shape.lost:
            case.lost.add(holder)
        elif faults:
            case.record(report)
    if faults:
        assert isinstance(delivery.ended, Killed), f"not killed: {delivery.describe()}"
    else:
        assert tuple(delivery.calls) == shape.calls, delivery.calls
    result = case.finish()
    figures.results.append(result)
    assert result.ok, f"{result.case}: {'; '.join(result.problems)}; deliveries: " + " | ".join(
        result.deliveries
    )


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", params(CLEAN))
def test_a_clean_delivery_makes_these_calls(
    world: World, figures: Figures, scenario: Scenario
) -> None:
    """The calls the kill cases are numbered by (update the shape's calls when they change),
    and the whole case clean: nothing over the limit, leaked or stuck without faults."""
    play(world, figures, scenario)
    ended = figures.results[-1].states
    assert set(ended.values()) == {str(RunState.SUCCESS)}, ended


@pytest.mark.parametrize("scenario", params(DISPATCH_KILLS))
def test_dispatch_killed_while_taking_a_slot(
    world: World, figures: Figures, scenario: Scenario
) -> None:
    """The dispatcher killed at a call of the run's dispatch, then the request delivered
    again until it settles."""
    play(world, figures, scenario)


@pytest.mark.parametrize("scenario", params(RECORD_KILLS))
def test_record_state_killed_while_giving_a_slot_back(
    world: World, figures: Figures, scenario: Scenario
) -> None:
    """record_state killed at a call of handling the holder's final report, then the report
    delivered again to a new recorder (or, ``lost``, never: the monitor pass repairs)."""
    play(world, figures, scenario)


ALL = [*CLEAN, *DISPATCH_KILLS, *RECORD_KILLS]
#: The fewest cases a whole run of the module may count (it has 71).
FLOOR = 60


def test_figures(figures: Figures, request: pytest.FixtureRequest) -> None:
    """Across every case that ran: no launch over a limit, no second task for an attempt, no
    slot leaked, no run stuck, no waiting run overtaken; and every selected case counted."""
    if not figures.results:
        pytest.skip("no fault case ran")
    summary = figures.summary()
    total = summary["total"]
    message = f"\n{figures.table()}\nviolations: {json.dumps(summary['violations'], indent=1)}"
    for key in Figures.HELD_AT_ZERO:
        assert total[key] == 0, message
    selected = [
        item
        for item in request.session.items
        if getattr(item, "module", None) is request.module
        and hasattr(item, "callspec")
        and "scenario" in item.callspec.params
    ]
    assert total["cases"] == len(selected), message
    if len(selected) == len(ALL):
        assert total["cases"] >= FLOOR, message
