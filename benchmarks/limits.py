"""Concurrency limits: the DynamoDB work a limit adds to each run, counted call by call.

Each scenario runs ``N_RUNS`` runs, one after another, through the real control plane over a
moto server on 127.0.0.1 (a fresh table made from template.yaml's ``Table`` for each scenario,
the real ``EcsLauncher`` against moto's ECS): a request is dispatched, the runner's reports
Running then Success are recorded (``StateRecorder``, ``FlowRunStateChanged`` from the runner),
and every run woken by a freed slot is dispatched again, as the bus would. The ECS task's
STOPPED event, which comes after Success, is counted on its own rows.

- A: no limit exists (the baseline);
- B: one label limit applies, never full;
- C: one label limit of 1, requests in bursts of ``BURST``: all but the first wait in Queued, and
  each run's Success hands its slot to the next, which is woken and dispatched;
- D: three limits apply (label, flow, target), never full.

What is counted: every call the ``Store``'s DynamoDB client makes (botocore ``before-call`` /
``after-call`` hooks on that client only), and for every item a write touches its size before
and after (read by a second, unhooked client), from which the write request units are priced
as DynamoDB bills them (``Meter``, shared with the control-plane section in
``benchmarks.aws_counting``).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.aws_counting import (
    Meter,
    Tally,
    create_table,
    default_network,
    ecs_tasks_kept_running,
    envelope,
    loopback_only,
    moto_environment,
    moto_server,
    table_definition,
)
from benchmarks.report import Row
from benchmarks.workloads import BenchmarkError

N_RUNS = 20
BURST = 5
LABEL = "warehouse"
FLOW = "etl"
TARGET = "fargate"
LIFE = "life"
STOPPED = "stopped"


# --- the control plane --------------------------------------------------------------------------


class Clock:
    """The store's time, moved a second per event (leases and timestamps without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    limits: tuple[tuple[str, str, str, int], ...]  # (name, kind, value, max_runs)
    burst: int = 1


SCENARIOS = (
    Scenario("A", "no limit", ()),
    Scenario("B", "one label limit, never full", (("warehouse", "label", LABEL, 1000),)),
    Scenario(
        "C",
        f"one label limit of 1, bursts of {BURST}",
        (("warehouse", "label", LABEL, 1),),
        burst=BURST,
    ),
    Scenario(
        "D",
        "three limits (label, flow, target), never full",
        (
            ("warehouse", "label", LABEL, 1000),
            ("etl-runs", "flow", FLOW, 1000),
            ("fargate-cap", "target", TARGET, 1000),
        ),
    ),
)


@dataclass
class Outcome:
    scenario: Scenario
    life: Tally
    stopped: Tally
    queued: int
    woken: int


class Plane:
    """The control plane's parts over one fresh table, as the functions wire them; woken runs
    are collected (``Slots(wake=...)``) and dispatched by ``deliver_wakes``."""

    def __init__(self, ecs: Any, cluster: str, network: dict[str, Any]) -> None:
        import boto3

        from flowrelay.control.dispatch import Dispatcher
        from flowrelay.control.recorder import StateRecorder
        from flowrelay.control.slots import Slots
        from flowrelay.control.store import Store
        from flowrelay.core.routing import Target
        from flowrelay.core.storage import Module
        from flowrelay.launchers.ecs import EcsLauncher
        from flowrelay.sdk.examples.etl import flow
        from flowrelay.sdk.flow import registration_for

        properties = table_definition()
        client = boto3.client("dynamodb")
        self.table = f"flowrelay-bench-{uuid.uuid4().hex[:8]}"
        create_table(client, self.table, properties)
        self.meter = Meter(client, boto3.client("dynamodb"), properties)
        self.clock = Clock()
        self.store = Store(client, self.table, clock=self.clock)
        self.store.flows.register(
            registration_for(flow, storage=Module("flowrelay.sdk.examples.etl:flow"))
        )
        self.store.targets.put(
            Target(
                name=TARGET,
                kind="ecs",
                labels=[LABEL],
                settings={"cluster": cluster, "image": "example/flows:1", **network},
            )
        )
        self.ecs = ecs
        self.cluster = cluster
        self.woken: list[Any] = []
        self.slots = Slots(self.store, wake=self.woken.append)
        launcher = EcsLauncher(ecs, table_name=self.table, bus_name="flowrelay-bench")
        self.dispatcher = Dispatcher(self.store, {"ecs": launcher}, slots=self.slots)
        self.recorder = StateRecorder(self.store, slots=self.slots)
        self.random = random.Random(15)

    def _event_id(self) -> str:
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def _flowrelay_event(self, detail: Any) -> Any:
        from flowrelay.core.events import parse_event

        entry = detail.entry("bus")
        return parse_event(
            envelope(entry["DetailType"], json.loads(entry["Detail"]), self._event_id())
        )

    def request(self) -> Any:
        """A new request for the flow, as a user sends it (the run id comes from the event)."""
        from flowrelay.core.events import FlowRunRequested

        self.clock.advance()
        request = FlowRunRequested(flow=FLOW, labels=[LABEL], requested_by="bench")
        return self.dispatcher.handle_request(self._flowrelay_event(request))

    def report(self, run_id: str, state: Any, message: str, details: dict[str, Any]) -> None:
        """A report of the run's runner, recorded."""
        from flowrelay.core.events import FlowRunStateChanged
        from flowrelay.core.lifecycle import Source

        self.clock.advance()
        change = FlowRunStateChanged(
            flow_run_id=run_id,
            state=state,
            source=Source.RUNNER,
            message=message,
            timestamp=self.clock(),
            event_id=uuid.UUID(int=self.random.getrandbits(128)).hex,
            details=details,
        )
        self.recorder.handle(self._flowrelay_event(change))

    def run_to_success(self, run_id: str) -> None:
        from flowrelay.core.lifecycle import RunState

        self.report(
            run_id,
            RunState.RUNNING,
            f"Running flow {FLOW!r} version 1",
            {"executor": "LocalExecutor"},
        )
        self.report(
            run_id, RunState.SUCCESS, "All reference tasks succeeded.", {"duration_seconds": 12.345}
        )

    def deliver_wakes(self) -> int:
        """Dispatch the request of every run woken so far (what the bus delivers); how many."""
        from flowrelay.control.monitor import request_for

        delivered = 0
        while self.woken:
            run = self.woken.pop(0)
            self.clock.advance()
            self.dispatcher.handle_request(self._flowrelay_event(request_for(run, "a freed slot")))
            delivered += 1
        return delivered

    def task_stopped(self, run_id: str) -> None:
        """The run's ECS task stops (its runner exited), and its STOPPED event is recorded."""
        from flowrelay.core.events import parse_event
        from flowrelay.launchers.kinds import event_readers

        with self.meter.paused():
            run = self.store.runs.get(run_id)
        if run is None:
            raise BenchmarkError(f"run {run_id} vanished")
        arn = run.infrastructure["ref"]
        self.ecs.stop_task(cluster=self.cluster, task=arn, reason="Essential container exited")
        (task,) = self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn], include=["TAGS"])[
            "tasks"
        ]
        detail = {key: value for key, value in task.items() if key != "tags"}
        detail["lastStatus"] = "STOPPED"
        detail["version"] = task.get("version", 0) + 1
        detail["containers"] = [
            {**container, "exitCode": 0, "lastStatus": "STOPPED"}
            for container in task.get("containers", [])
        ]
        self.clock.advance()
        event = parse_event(
            envelope(
                "ECS Task State Change",
                json.loads(json.dumps(detail, default=str)),
                self._event_id(),
                source="aws.ecs",
                resources=[arn],
            ),
            event_readers(),
        )
        self.recorder.handle(event)


def run_scenario(scenario: Scenario, ecs: Any, network: dict[str, Any]) -> Outcome:
    """``N_RUNS`` runs of ``scenario`` on a fresh table and cluster, counted."""
    from flowrelay.core.concurrency import ConcurrencyLimit
    from flowrelay.core.lifecycle import RunState

    cluster = f"flows-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)
    plane = Plane(ecs, cluster, network)
    for name, kind, value, max_runs in scenario.limits:
        plane.slots.put(ConcurrencyLimit(name=name, kind=kind, value=value, max_runs=max_runs))
    run_ids: list[str] = []
    woken = 0
    queued = 0
    meter = plane.meter
    for _ in range(0, N_RUNS, scenario.burst):
        burst: list[str] = []
        with meter.counting(LIFE):
            for _ in range(scenario.burst):
                outcome = plane.request()
                burst.append(outcome.run_id)
                queued += outcome.state is RunState.QUEUED
        for run_id in burst:
            with meter.counting(LIFE):
                plane.run_to_success(run_id)
                woken += plane.deliver_wakes()
            with meter.counting(STOPPED):
                plane.task_stopped(run_id)
        run_ids += burst
    with meter.paused():
        _check(plane, scenario, run_ids, queued, woken)
    if meter.unpriced:
        raise BenchmarkError(f"calls this benchmark cannot price: {dict(meter.unpriced)}")
    return Outcome(
        scenario,
        meter.tallies.get(LIFE, Tally()),
        meter.tallies.get(STOPPED, Tally()),
        queued,
        woken,
    )


def _check(plane: Plane, scenario: Scenario, run_ids: list[str], queued: int, woken: int) -> None:
    """Every run succeeded, launched once; in a burst all but the first waited and was woken;
    every slot was given back."""
    from flowrelay.core.lifecycle import RunState

    if len(set(run_ids)) != N_RUNS:
        raise BenchmarkError(f"{scenario.key}: {len(set(run_ids))} runs, not {N_RUNS}")
    for run_id in run_ids:
        run = plane.store.runs.get(run_id)
        if run is None or run.state is not RunState.SUCCESS:
            raise BenchmarkError(f"{scenario.key}: run {run_id} is {run and run.state}")
        launched = [
            entry
            for entry in plane.store.runs.history(run_id)
            if entry.state is RunState.SUBMITTED and not entry.note
        ]
        if len(launched) != 1:
            raise BenchmarkError(f"{scenario.key}: run {run_id} launched {len(launched)} times")
    expected = N_RUNS - N_RUNS // scenario.burst
    if queued != expected or woken != expected:
        raise BenchmarkError(
            f"{scenario.key}: {queued} runs queued and {woken} woken, expected {expected}"
        )
    for state in plane.store.limits.list():
        if state.holders or state.waiting:
            raise BenchmarkError(f"{scenario.key}: limit {state.limit.name} kept {state}")
    tasks = plane.ecs.list_tasks(cluster=plane.cluster, desiredStatus="STOPPED")["taskArns"]
    if len(tasks) != N_RUNS:
        raise BenchmarkError(f"{scenario.key}: {len(tasks)} ECS tasks, not {N_RUNS}")


def measure() -> list[Outcome]:
    """Every scenario, each on a fresh table, on one moto server on 127.0.0.1."""
    import boto3
    from botocore.config import Config

    outcomes = []
    with (
        loopback_only(),
        moto_server() as endpoint,
        moto_environment(endpoint),
        ecs_tasks_kept_running(endpoint),
    ):
        ecs = boto3.client("ecs", config=Config(retries={"mode": "standard"}))
        network = default_network(boto3.client("ec2"))
        for scenario in SCENARIOS:
            outcomes.append(run_scenario(scenario, ecs, network))
    return outcomes


# --- the report ---------------------------------------------------------------------------------


def _number(value: float, sign: str = "") -> str:
    """``23.2``, ``11``, ``+4.8``: two decimals at most, no trailing zeros."""
    text = f"{value:{sign}.2f}".rstrip("0").rstrip(".")
    return "+0" if text in ("+0", "-0") else text


def _per_run(value: float) -> str:
    return _number(value / N_RUNS)


def _added(value: float) -> str:
    return _number(value / N_RUNS, "+")


def _calls(tally: Tally) -> str:
    ops = ", ".join(f"{op} {_per_run(count)}" for op, count in sorted(tally.calls.items()))
    return f"{_per_run(sum(tally.calls.values()))} ({ops})"


def _calls_added(tally: Tally, base: Tally) -> str:
    total = sum(tally.calls.values()) - sum(base.calls.values())
    changed = [
        f"{op} {_added(tally.calls[op] - base.calls[op])}"
        for op in sorted(set(tally.calls) | set(base.calls))
        if tally.calls[op] != base.calls[op]
    ]
    return _added(total) + (f" ({', '.join(changed)})" if changed else "")


def _items(tally: Tally) -> str:
    text = f"{_per_run(tally.items_written)} (and {_per_run(tally.index_writes)} index writes)"
    if tally.refused_writes:
        text += f"; {_per_run(tally.refused_writes)} refused"
    return text


def _wru(tally: Tally) -> str:
    parts = [f"table {_per_run(tally.table_wru)}", f"indexes {_per_run(tally.index_wru)}"]
    if tally.refused_wru:
        parts.append(f"refused writes {_per_run(tally.refused_wru)}")
    return f"{_per_run(tally.wru)} ({', '.join(parts)})"


Metric = tuple[str, Callable[[Tally], str], Callable[[Tally], float], Callable[[Tally, Tally], str]]

METRICS: tuple[Metric, ...] = (
    (
        "DynamoDB calls/run",
        _calls,
        lambda tally: sum(tally.calls.values()),
        _calls_added,
    ),
    (
        "items written/run",
        _items,
        lambda tally: tally.items_written,
        lambda tally, base: _added(tally.items_written - base.items_written),
    ),
    (
        "WRU/run, index writes included",
        _wru,
        lambda tally: tally.wru,
        lambda tally, base: _added(tally.wru - base.wru),
    ),
    (
        "RRU/run",
        lambda tally: _per_run(tally.rru),
        lambda tally: tally.rru,
        lambda tally, base: _added(tally.rru - base.rru),
    ),
)


def rows(outcomes: list[Outcome]) -> list[Row]:
    """Per scenario, each metric of a run's life, then the STOPPED event's; against A."""
    base = outcomes[0]
    table: list[Row] = []

    def row(name: str, ours: str, baseline: str, added: str, is_base: bool) -> Row:
        return Row(
            benchmark=name,
            ours=ours,
            baseline="-" if is_base else baseline,
            measure="(baseline)" if is_base else added,
            target="(reference)",
            status="info",
        )

    for outcome in outcomes:
        label = f"{outcome.scenario.key}. {outcome.scenario.title}"
        for name, show, total, added in METRICS:
            table.append(
                row(
                    f"{label}: {name}",
                    show(outcome.life),
                    f"{_per_run(total(base.life))} (A)",
                    added(outcome.life, base.life),
                    outcome is base,
                )
            )
    for outcome in outcomes:
        stopped, base_stopped = outcome.stopped, base.stopped
        table.append(
            row(
                f"{outcome.scenario.key}. then the ECS task's STOPPED event: calls/run; WRU/run",
                f"{_calls(stopped)}; {_per_run(stopped.wru)} WRU",
                f"{_per_run(sum(base_stopped.calls.values()))}; "
                f"{_per_run(base_stopped.wru)} WRU (A)",
                f"{_calls_added(stopped, base_stopped)}; "
                f"{_added(stopped.wru - base_stopped.wru)} WRU",
                outcome is base,
            )
        )
    return table


def markdown(table: list[Row]) -> str:
    lines = [
        "| benchmark | ours | baseline | added by the limit(s) | target | pass/fail |",
        "|---|---|---|---|---|---|",
    ]
    for row in table:
        cells = [row.benchmark, row.ours, row.baseline, row.measure, row.target, row.status]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def section(outcomes: list[Outcome], seconds: float) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"Generated by `make bench` on {generated}: {N_RUNS} runs per scenario, one after "
            f"another, on a moto server on 127.0.0.1 ({seconds:.0f} s for the four). Figures "
            "per run: the scenario's totals divided by its runs.",
            "",
            markdown(rows(outcomes)),
            "",
            "What is counted:",
            "",
            "- A run's life: its request dispatched (the real `EcsLauncher` on moto's ECS), the "
            "runner's Running and Success recorded by `StateRecorder`, and in C the requests of "
            "the runs woken by a freed slot dispatched again. Each scenario has a table of its "
            "own, made from template.yaml, with the flow and one target in it; the limits are "
            "made beforehand (not counted).",
            "- Calls: every call the `Store`'s DynamoDB client makes (botocore `before-call` "
            "hooks on that client). Refused writes (a claim that found no free slot, the create "
            "of a woken run that exists already) are calls too.",
            "- Write request units, as DynamoDB bills an on-demand table: per written item "
            "ceil(max(size before, size after) / 1 KB), twice that inside `TransactWriteItems`; "
            "item sizes by DynamoDB's rules, read before and after each write with a second, "
            "unhooked client. Plus one write per global secondary index the change reaches "
            "(by-flow, active, recent: all project ALL, so an entry is the item's size): a put "
            "when the item enters it, a delete when it leaves, both when its index key changes "
            "(the active index, at each change of state), one when another attribute changes; "
            "not doubled in a transaction. A refused write is counted at the existing item's "
            "size (at least 1), once per item: DynamoDB bills a failed condition that way; what "
            "a cancelled transaction costs is not documented, so that part is an estimate.",
            "- Read request units: per `GetItem`, and per `Query` page (its items' sizes "
            "summed), ceil(size / 4 KB), at least 1; half for index queries (eventually "
            "consistent). Every read of the control plane here is consistent.",
            "- The ECS task's STOPPED event, which comes after Success, is counted on its own "
            "rows: the recorder gives back the slots of a run that ended again on it (a release "
            "that changes nothing, still one billed write per limit).",
        ]
    )


def report() -> str:
    """Run every scenario; the section of BENCHMARKS.md."""
    began = time.perf_counter()
    outcomes = measure()
    return section(outcomes, time.perf_counter() - began)
