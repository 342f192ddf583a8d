"""The control plane against issue 16's budgets: AWS calls and write units per run, counted call by
call, and how soon a request is launched, Running and ended, for single runs and a burst of 100.

Two parts, both on 127.0.0.1 only:

1. Counting, on a moto server (``benchmarks.aws_counting``): ``N_COUNTED`` runs of the example flow
   ``hello``, one after another, through the parts the functions are made of, wired as
   ``flowrelay.handlers.wiring`` wires them (``build_launchers`` with the real ``EcsLauncher`` on
   moto's ECS, ``Dispatcher``, ``StateRecorder``, ``Slots``), each phase counted on its own:

   - dispatch: ``Dispatcher.handle_request`` of the run's request;
   - record_state (``StateRecorder.handle``): the ECS task's RUNNING event (it changes nothing),
     the runner's Running and Success reports (applied transitions), then the ECS task's STOPPED
     event, about a run already final;
   - the runner: ``flowrelay.runner``'s ``Runner`` in this process, its reports put on a bus
     of moto's and recorded as above (what the bus would deliver).

   Every client those parts use is counted by botocore ``before-call`` hooks, by service and
   operation; the DynamoDB client is also metered (``Meter``): write request units from the
   sizes of the items each write touches, before and after, global secondary index writes
   included. One run before the counted ones is not counted (a fresh container describes its
   task definition once); its dispatch is shown on its own row.

2. Latency, on the dev stack (``flowrelay.devstack.DevStack``: moto, the functions in-process,
   ECS tasks as local processes): ``N_SINGLE`` runs of ``hello`` requested on the bus one at a
   time (``Publisher``, ``FlowRunRequested``), each read back from its history: requested (the
   moment before its ``PutEvents``) to Submitted (launched), to Running, to its final state.
   Then ``N_BURST`` requests put on the bus as fast as possible (``PutEvents`` of 10 entries),
   waited for up to ``BURST_TIMEOUT`` seconds: from the last request to the last run launched,
   to the last run ended, and how many runs were lost.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
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
from benchmarks.report import Row, Status, missed
from benchmarks.workloads import BenchmarkError
from flowrelay.aws.bus import Publisher

FLOW = "hello"
FLOW_MODULE = "flowrelay.sdk.examples.hello:flow"
PARAMETERS = {"name": "bench"}
TARGET = "fargate"
N_COUNTED = 10
N_SINGLE = 10
N_BURST = 100
#: How long the burst is waited for before what was seen is reported.
BURST_TIMEOUT = 120.0
SINGLE_TIMEOUT = 30.0

# Issue 16's budgets.
DISPATCH_BUDGET = 5  # AWS calls per launched run
TRANSITION_BUDGET = 2  # record_state calls per applied transition
FINAL_EVENT_BUDGET = 1  # record_state calls for an event about a run already final
UNCHANGED_BUDGET = 1  # "an event that changes nothing costs at most one read"
WRU_BUDGET = 15  # write request units per run, index writes included
BURST_LAUNCH_BUDGET = 3.0  # seconds from the last request to the last of the burst launched

# The counted phases.
COLD_DISPATCH = "dispatch, first run of a container"
DISPATCH = "dispatch"
ECS_RUNNING = "record_state: ECS RUNNING"
RUNNER = "runner"
RUNNING = "record_state: Running"
SUCCESS = "record_state: Success"
ECS_STOPPED = "record_state: ECS STOPPED"
LIFE = (DISPATCH, ECS_RUNNING, RUNNER, RUNNING, SUCCESS, ECS_STOPPED)
#: The run's request delivered again once the run has ended (not part of its life).
REQUEST_AGAIN = "dispatch: the request again"

SERVICE_NAMES = {
    "dynamodb": "DynamoDB",
    "ecs": "ECS",
    "events": "EventBridge",
    "logs": "CloudWatch Logs",
    "sqs": "SQS",
    "s3": "S3",
}


def _now() -> datetime:
    return datetime.now(UTC)


# --- 1. calls and write units, counted on moto ------------------------------------------------


class KeptPublisher(Publisher):
    """The runner's publisher: its reports put on the bus, and kept for record_state (what the
    bus would deliver to it)."""

    def __init__(self, client: Any, bus_name: str) -> None:
        super().__init__(client, bus_name)
        self.kept: list[Any] = []

    def publish(self, *events: Any) -> None:
        super().publish(*events)
        self.kept.extend(events)


class CountingPlane:
    """The functions' parts over a fresh table, bus and ECS cluster in moto, every client they
    use counted by ``meter`` (see the module docstring)."""

    def __init__(self, network: dict[str, Any]) -> None:
        import boto3
        from botocore.config import Config

        from flowrelay.aws.clients import retry_settings
        from flowrelay.control.dispatch import Dispatcher
        from flowrelay.control.recorder import StateRecorder
        from flowrelay.control.slots import Slots
        from flowrelay.control.store import Store
        from flowrelay.core.policies import RetryPolicy, Timeouts
        from flowrelay.core.routing import Target
        from flowrelay.core.storage import Module
        from flowrelay.launchers.kinds import build_launchers, checked_target, crash_log_tail
        from flowrelay.sdk.flow import registration_for
        from flowrelay.sdk.storage import load_flow

        suffix = uuid.uuid4().hex[:8]
        self.table = f"flowrelay-bench-cp-{suffix}"
        self.bus = f"flowrelay-bench-cp-{suffix}"
        self.cluster = f"flows-cp-{suffix}"
        properties = table_definition()
        make: Any = boto3.client
        dynamodb = make("dynamodb", config=Config(retries=retry_settings()))
        create_table(dynamodb, self.table, properties)
        self.meter = Meter(dynamodb, make("dynamodb"), properties)
        self.clients: dict[str, Any] = {"dynamodb": dynamodb}
        # The benchmark's own calls (setting up, stopping the task) go through these: uncounted.
        self.ecs = make("ecs")
        make("events").create_event_bus(Name=self.bus)
        self.ecs.create_cluster(clusterName=self.cluster)
        self.store = Store(dynamodb, self.table)
        module = Module(FLOW_MODULE)
        self.store.flows.register(registration_for(load_flow(module), storage=module))
        self.store.targets.put(
            checked_target(
                Target(
                    name=TARGET,
                    kind="ecs",
                    settings={"cluster": self.cluster, "image": "example/flows:1", **network},
                )
            )
        )
        launchers = build_launchers(
            self.client, table_name=self.table, bus_name=self.bus, kinds=("ecs",)
        )
        self.woken: list[Any] = []
        slots = Slots(self.store, wake=self.woken.append)
        self.dispatcher = Dispatcher(
            self.store, launchers, retry=RetryPolicy(), timeouts=Timeouts(), slots=slots
        )
        self.recorder = StateRecorder(
            self.store,
            retry=RetryPolicy(),
            log_tail=lambda infrastructure: crash_log_tail(
                infrastructure, launchers, self.client("logs")
            ),
            relaunch=self.woken.append,
            slots=slots,
        )

    def client(self, service: str) -> Any:
        """The functions' client of ``service`` (one per service, as ``aws.clients.client``),
        counted."""
        if service not in self.clients:
            import boto3
            from botocore.config import Config

            from flowrelay.aws.clients import retry_settings

            make: Any = boto3.client
            self.clients[service] = self.meter.watch(
                make(service, config=Config(retries=retry_settings()))
            )
        return self.clients[service]

    def _event(self, entry: dict[str, Any]) -> Any:
        from flowrelay.core.events import parse_event

        return parse_event(
            envelope(entry["DetailType"], json.loads(entry["Detail"]), str(uuid.uuid4()))
        )

    def _task_event(
        self,
        arn: str,
        status: str,
        version: int,
        containers: list[dict[str, Any]],
        stop_code: str | None = None,
        reason: str | None = None,
    ) -> Any:
        """The ECS task's state change as the dev stack's ECS puts it on the bus."""
        from flowrelay.core.events import parse_event
        from flowrelay.devstack.ecs import task_state_change
        from flowrelay.launchers.kinds import event_readers

        (task,) = self.ecs.describe_tasks(cluster=self.cluster, tasks=[arn])["tasks"]
        detail = task_state_change(
            task, status, version, stop_code=stop_code, reason=reason, containers=containers
        )
        return parse_event(
            envelope(
                "ECS Task State Change",
                json.loads(json.dumps(detail, default=str)),
                str(uuid.uuid4()),
                source="aws.ecs",
                resources=[arn],
            ),
            event_readers(),
        )

    def life(self, counted: bool) -> str:
        """One run's whole life, each part counted in its phase (only its dispatch when not
        ``counted``); its run id."""
        from flowrelay.core.events import FlowRunRequested
        from flowrelay.core.lifecycle import RunState
        from flowrelay.launchers.ecs.names import CONTAINER_NAME
        from flowrelay.runner import Reporter, Runner, RunnerConfig

        meter = self.meter

        @contextmanager
        def phase(name: str) -> Iterator[None]:
            if counted:
                with meter.counting(name):
                    yield
            else:
                yield

        run_id = f"bench-{uuid.uuid4().hex[:12]}"
        request = FlowRunRequested(
            flow=FLOW, flow_run_id=run_id, parameters=PARAMETERS, requested_by="bench"
        )
        with meter.counting(DISPATCH if counted else COLD_DISPATCH):
            outcome = self.dispatcher.handle_request(self._event(request.entry(self.bus)))
        if not outcome.launched:
            raise BenchmarkError(
                f"run {run_id} was not launched: {outcome.state} {outcome.message}"
            )
        with meter.paused():
            run = self.store.runs.get(run_id)
        if run is None:
            raise BenchmarkError(f"run {run_id} vanished")
        arn = str(run.infrastructure["ref"])
        container: dict[str, Any] = {
            "name": CONTAINER_NAME,
            "lastStatus": "RUNNING",
            "taskArn": arn,
        }
        with phase(ECS_RUNNING):
            self.recorder.handle(self._task_event(arn, "RUNNING", 1, containers=[container]))

        config = RunnerConfig(run_id=run_id, table_name=self.table, bus_name=self.bus, attempt=1)
        publisher = KeptPublisher(self.client("events"), self.bus)
        runner = Runner(config, self.store, Reporter(publisher, config), make_client=self.client)
        with phase(RUNNER):
            code = runner.execute()
        if code != 0:
            raise BenchmarkError(f"the runner of run {run_id} exited {code}")
        reports = {str(event.state): event for event in publisher.kept}
        if set(reports) != {"Running", "Success"}:
            raise BenchmarkError(f"run {run_id}: the runner reported {sorted(reports)}")
        for name, state in ((RUNNING, "Running"), (SUCCESS, "Success")):
            with phase(name):
                recorded = self.recorder.handle(self._event(reports[state].entry(self.bus)))
            if not recorded.applied:
                raise BenchmarkError(f"run {run_id}: {state} not applied: {recorded.reason}")
        self.ecs.stop_task(cluster=self.cluster, task=arn, reason="Essential container exited")
        container = {**container, "lastStatus": "STOPPED", "exitCode": 0}
        stopped = self._task_event(
            arn,
            "STOPPED",
            2,
            containers=[container],
            stop_code="EssentialContainerExited",
            reason="Essential container in task exited",
        )
        with phase(ECS_STOPPED):
            recorded = self.recorder.handle(stopped)
        if recorded.applied or recorded.state is not RunState.SUCCESS:
            raise BenchmarkError(f"run {run_id}: the STOPPED event changed it: {recorded}")
        with phase(REQUEST_AGAIN):
            again = self.dispatcher.handle_request(self._event(request.entry(self.bus)))
        if again.launched or again.state is not RunState.SUCCESS:
            raise BenchmarkError(f"run {run_id}: its request again changed it: {again}")
        return run_id


@dataclass
class Counted:
    tallies: dict[str, Tally]
    runs: int

    def tally(self, phase: str) -> Tally:
        return self.tallies.get(phase, Tally())

    def life(self) -> Tally:
        """Every phase of the counted runs' lives summed."""
        total = Tally()
        for phase in LIFE:
            tally = self.tally(phase)
            total.by_service.update(tally.by_service)
            total.table_wru += tally.table_wru
            total.index_wru += tally.index_wru
            total.refused_wru += tally.refused_wru
            total.items_written += tally.items_written
            total.index_writes += tally.index_writes
            total.rru += tally.rru
        return total


def count_calls() -> Counted:
    """One uncounted run, then ``N_COUNTED`` counted, on a moto server on 127.0.0.1."""
    import boto3

    with (
        moto_server() as endpoint,
        moto_environment(endpoint),
        ecs_tasks_kept_running(endpoint),
    ):
        plane = CountingPlane(default_network(boto3.client("ec2")))
        plane.life(counted=False)
        for _ in range(N_COUNTED):
            plane.life(counted=True)
        if plane.meter.unpriced:
            raise BenchmarkError(f"calls this benchmark cannot price: {dict(plane.meter.unpriced)}")
        return Counted(dict(plane.meter.tallies), N_COUNTED)


# --- 2. latency on the dev stack ------------------------------------------------------------------


@dataclass
class Timeline:
    """When one run was requested, and when its history says it was created, launched
    (Submitted), Running and ended (None: not yet)."""

    run_id: str
    requested: datetime
    created: datetime | None = None
    launched: datetime | None = None
    running: datetime | None = None
    ended: datetime | None = None
    state: str = "missing"

    def after(self, moment: datetime | None) -> float | None:
        return None if moment is None else (moment - self.requested).total_seconds()


def timeline(store: Any, run_id: str, requested: datetime) -> Timeline:
    from flowrelay.core.lifecycle import RunState
    from flowrelay.core.runs import states_reached

    found = Timeline(run_id, requested)
    run = store.runs.get(run_id)
    if run is None:
        return found
    found.state = str(run.state)
    found.created = run.created_at
    for state, at in states_reached(store.runs.history(run_id)):
        if state is RunState.SUBMITTED and found.launched is None:
            found.launched = at
        elif state is RunState.RUNNING and found.running is None:
            found.running = at
        elif state.is_final and found.ended is None:
            found.ended = at
    return found


@dataclass
class Latency:
    singles: list[Timeline]
    burst: list[Timeline]
    last_request: datetime
    burst_waited: float
    timed_out: bool


def _request(run_id: str) -> Any:
    from flowrelay.core.events import FlowRunRequested

    return FlowRunRequested(
        flow=FLOW, flow_run_id=run_id, parameters=PARAMETERS, requested_by="bench"
    )


def _new_id() -> str:
    return f"bench-{uuid.uuid4().hex[:12]}"


def _wait(done: Callable[[], bool], timeout: float, every: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(every)
    return True


def measure_latency() -> Latency:
    """Single runs one at a time, then the burst, on one dev stack."""

    from flowrelay.aws.bus import Publisher
    from flowrelay.control.store import Store
    from flowrelay.core.routing import Target
    from flowrelay.core.storage import Module
    from flowrelay.devstack import DevStack
    from flowrelay.launchers.kinds import checked_target
    from flowrelay.sdk.flow import registration_for
    from flowrelay.sdk.storage import load_flow

    name = f"flowrelay-bench-cp-{uuid.uuid4().hex[:8]}"
    with DevStack(stack_name=name, log=lambda line: None) as stack:
        client = stack.clients()
        store = Store(client("dynamodb"), stack.outputs["TableName"])
        publisher = Publisher(client("events"), stack.outputs["BusName"])
        module = Module(FLOW_MODULE)
        store.flows.register(registration_for(load_flow(module), storage=module))
        store.targets.put(
            checked_target(Target(name=TARGET, kind="ecs", settings=stack.ecs_target_settings()))
        )

        def final(run_id: str) -> bool:
            run = store.runs.get(run_id)
            return run is not None and run.state.is_final

        singles: list[Timeline] = []
        for number in range(N_SINGLE + 1):  # the first warms the stack up: not measured
            run_id = _new_id()
            requested = _now()
            publisher.publish(_request(run_id))
            if not _wait(partial(final, run_id), SINGLE_TIMEOUT, 0.05):
                raise BenchmarkError(f"single run {run_id} not final after {SINGLE_TIMEOUT:g} s")
            stack.wait_idle(timeout=15)  # its task ended and its STOPPED event recorded
            if number:
                singles.append(timeline(store, run_id, requested))

        ids = [_new_id() for _ in range(N_BURST)]
        requested_at: dict[str, datetime] = {}
        last_request = _now()
        for start in range(0, N_BURST, 10):  # PutEvents takes at most 10 entries
            chunk = ids[start : start + 10]
            last_request = _now()
            for run_id in chunk:
                requested_at[run_id] = last_request
            publisher.publish(*(_request(run_id) for run_id in chunk))
        wanted = set(ids)
        began = time.monotonic()

        def all_ended() -> bool:
            runs = store.runs.of_flow(FLOW, limit=N_BURST + N_SINGLE + 10)
            ended = {run.run_id for run in runs if run.run_id in wanted and run.state.is_final}
            return ended == wanted

        finished = _wait(all_ended, BURST_TIMEOUT, 0.5)
        waited = time.monotonic() - began
        burst = [timeline(store, run_id, requested_at[run_id]) for run_id in ids]
    return Latency(singles, burst, last_request, waited, not finished)


# --- the report -----------------------------------------------------------------------------------


def _number(value: float) -> str:
    """``23.2``, ``11``: two decimals at most, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _calls(tally: Tally, runs: int) -> tuple[float, str]:
    """Calls per run, and per service and operation."""
    services: dict[str, list[str]] = {}
    for (service, operation), count in sorted(tally.by_service.items()):
        services.setdefault(service, []).append(f"{operation} {_number(count / runs)}")
    text = "; ".join(
        f"{SERVICE_NAMES.get(service, service)}: {', '.join(operations)}"
        for service, operations in services.items()
    )
    return sum(tally.by_service.values()) / runs, text or "no call"


def _status(ok: bool) -> Status:
    return "pass" if ok else "FAIL"


def _wru(tally: Tally, runs: int) -> str:
    parts = [
        f"table {_number(tally.table_wru / runs)}",
        f"indexes {_number(tally.index_wru / runs)}",
    ]
    if tally.refused_wru:
        parts.append(f"refused writes {_number(tally.refused_wru / runs)}")
    written = _number(tally.items_written / runs)
    return (
        f"{', '.join(parts)} ({written} items, {_number(tally.index_writes / runs)} index entries)"
    )


def call_rows(counted: Counted) -> list[Row]:
    runs = counted.runs
    rows: list[Row] = []

    def row(name: str, phase: str, budget: int | None, what: str = "", per: int = runs) -> None:
        calls, text = _calls(counted.tally(phase), per)
        rows.append(
            Row(
                benchmark=name,
                ours=_number(calls),
                baseline="-",
                measure=text + (f" ({what})" if what else ""),
                target=f"<= {budget}" if budget is not None else "(reference)",
                status=_status(round(calls, 2) <= budget) if budget is not None else "info",
            )
        )

    row("AWS calls/run: dispatch (`Dispatcher.handle_request`)", DISPATCH, DISPATCH_BUDGET)
    row(
        "AWS calls/run: record_state, the runner's Running report (an applied transition)",
        RUNNING,
        TRANSITION_BUDGET,
    )
    row(
        "AWS calls/run: record_state, the runner's Success report (an applied transition)",
        SUCCESS,
        TRANSITION_BUDGET,
    )
    row(
        "AWS calls/run: record_state, the ECS task's STOPPED event (the run already final)",
        ECS_STOPPED,
        FINAL_EVENT_BUDGET,
    )
    row(
        "AWS calls/run: record_state, the ECS task's RUNNING event (changes nothing)",
        ECS_RUNNING,
        UNCHANGED_BUDGET,
    )
    row(
        "AWS calls/run: dispatch, the run's request delivered again after it ended "
        "(changes nothing)",
        REQUEST_AGAIN,
        UNCHANGED_BUDGET,
    )
    row("AWS calls/run: the runner (`Runner.execute`)", RUNNER, None)
    life = counted.life()
    calls, text = _calls(life, runs)
    rows.append(
        Row(
            benchmark="AWS calls/run: all of the above",
            ours=_number(calls),
            baseline="-",
            measure=text,
            target="(reference)",
            status="info",
        )
    )
    row(
        "AWS calls: dispatch of the first run in a fresh container (not in the figures above)",
        COLD_DISPATCH,
        None,
        "the task definition looked up, registered the first time, then cached",
        per=1,
    )
    by_phase = ", ".join(
        f"{phase.removeprefix('record_state: ')} {_number(counted.tally(phase).wru / runs)}"
        for phase in LIFE
        if counted.tally(phase).wru
    )
    wru = life.wru / runs
    transactions = life.by_service["dynamodb", "TransactWriteItems"] / runs
    rows.append(
        Row(
            benchmark="WRU/run, index writes included (all of the above)",
            ours=_number(wru),
            baseline="-",
            measure=_wru(life, runs)
            + f"; by function: {by_phase}; {_number(transactions)} `TransactWriteItems` a run "
            "(a transition: the run item and its history item, billed twice), kept so that a "
            "run's state and history never disagree (the miss is explained above)",
            target=f"<= {WRU_BUDGET}",
            status=_status(round(wru, 2) <= WRU_BUDGET),
        )
    )
    rows.append(
        Row(
            benchmark="RRU/run (all of the above)",
            ours=_number(life.rru / runs),
            baseline="-",
            measure=", ".join(
                f"{phase.removeprefix('record_state: ')} {_number(counted.tally(phase).rru / runs)}"
                for phase in LIFE
                if counted.tally(phase).rru
            ),
            target="(reference)",
            status="info",
        )
    )
    return rows


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def _spread(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    missing = len(values) - len(known)
    text = f"{min(known):.2f}-{max(known):.2f} s" if known else "none"
    return text + (f"; {missing} of {len(values)} never got there" if missing else "")


def latency_rows(latency: Latency) -> list[Row]:
    rows: list[Row] = []
    singles = latency.singles
    stages: list[tuple[str, Callable[[Timeline], float | None], str | None]] = [
        ("launched (Submitted)", lambda t: t.after(t.launched), "0.05 s"),
        ("Running", lambda t: t.after(t.running), None),
        ("terminal (Success)", lambda t: t.after(t.ended), "0.55 s"),
    ]
    for what, pick, reference in stages:
        values = [pick(t) for t in singles]
        name = f"single runs, one at a time: request -> {what}, median of {len(singles)}"
        target = f"(reference: issue 16 measured {reference})" if reference else "(reference)"
        rows.append(
            Row(
                benchmark=name,
                ours=_seconds(_median(values)),
                baseline="-",
                measure=f"range {_spread(values)}",
                target=target,
                status="info",
            )
        )
    burst, last = latency.burst, latency.last_request
    launched = [t.launched for t in burst if t.launched is not None]
    ended = [t.ended for t in burst if t.ended is not None]
    waited = f"{latency.burst_waited:.0f} s"
    seen = "" if not latency.timed_out else f" (gave up after {waited})"
    last_launch = (max(launched) - last).total_seconds() if launched else None
    all_launched = len(launched) == len(burst)
    launch_ok = all_launched and last_launch is not None and last_launch <= BURST_LAUNCH_BUDGET
    to_launch = [t.after(t.launched) for t in burst]
    rows.append(
        Row(
            benchmark=f"burst of {len(burst)}: last request -> last run launched",
            ours=_seconds(last_launch),
            baseline="-",
            measure=(
                f"{len(launched)}/{len(burst)} launched{seen}; request -> launched median "
                f"{_seconds(_median(to_launch))}, range {_spread(to_launch)}"
            ),
            target=f"<= {BURST_LAUNCH_BUDGET:g} s, all {len(burst)}",
            status=_status(launch_ok),
        )
    )
    last_end = (max(ended) - last).total_seconds() if ended else None
    to_end = [t.after(t.ended) for t in burst]
    rows.append(
        Row(
            benchmark=f"burst of {len(burst)}: last request -> last run terminal",
            ours=_seconds(last_end),
            baseline="-",
            measure=(
                f"{len(ended)}/{len(burst)} terminal{seen}; request -> terminal median "
                f"{_seconds(_median(to_end))}"
            ),
            target=f"(reference; within {BURST_TIMEOUT:g} s)",
            status="FAIL" if latency.timed_out else "info",
        )
    )
    states = Counter(t.state for t in burst)
    lost = len(burst) - states.get("Success", 0)
    rows.append(
        Row(
            benchmark=f"burst of {len(burst)}: runs lost (not Success{seen})",
            ours=str(lost),
            baseline="-",
            measure=", ".join(f"{state} {count}" for state, count in sorted(states.items())),
            target="0",
            status=_status(lost == 0),
        )
    )
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| figure | measured | by service and operation, or how | budget | pass/fail |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        status = f"**{row.status}**" if row.status in {"FAIL", "error"} else row.status
        cells = [row.benchmark, row.ours, row.measure or row.detail, row.target, status]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def misses(rows: list[Row]) -> list[str]:
    """What missed its budget (or did not run), one line each; or that every budget was met."""
    failed = missed(rows)
    if not failed:
        return ["Every budget met."]
    lines = [f"{len(failed)} budget(s) missed:"]
    for row in failed:
        if row.status == "error":
            lines.append(f"- {row.benchmark}: did not run ({row.measure})")
        else:
            lines.append(f"- {row.benchmark}: {row.ours}, budget {row.target}")
    return lines


def section(rows: list[Row], seconds: float) -> str:
    generated = _now().strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            f"Generated by `make bench` on {generated} ({seconds:.0f} s): calls and write units "
            f"over {N_COUNTED} runs of `hello` on a moto server on 127.0.0.1, per run; "
            f"latencies on the dev stack ({N_SINGLE} single runs, then a burst of {N_BURST}).",
            "",
            markdown(rows),
            "",
            *misses(rows),
            "",
            "What is counted:",
            "",
            "- Calls: every call the functions' clients make while the phase runs (botocore "
            "`before-call` hooks on each client), of any service, by operation: dispatch is "
            "`Dispatcher.handle_request` of the request (the real `EcsLauncher`, built by "
            "`build_launchers` as the function builds it, on moto's ECS); record_state is "
            "`StateRecorder.handle` of each event the dev stack delivers for a run (the ECS "
            "task's RUNNING, the runner's Running and Success, the ECS task's STOPPED after "
            "Success); the runner is `Runner.execute` in this process (reading the run and its "
            "flow, putting its two reports on the bus). AWS also sends the task's PROVISIONING, "
            "PENDING and stopping states, which the dev stack does not: not counted here.",
            "- Write request units: as the limits section prices them (`Meter`): per written item "
            "ceil(max(size before, size after) / 1 KB), twice in `TransactWriteItems`, plus one "
            "write per global secondary index entry the change puts, updates or deletes; sizes "
            "by DynamoDB's rules, read before and after each write by an unhooked client.",
            "- Latency: the dev stack's history timestamps of each run (written by the "
            "functions when they applied Submitted, Running, the final state) against the "
            "moment before the request's `PutEvents`; medians over the single runs, after one "
            "run that warms the stack up. The burst's requests go out as 10 `PutEvents` of 10; "
            "its figures count from the moment before the last of them. The dev stack honours "
            "the template's batch sizes, batching windows (0 on these queues) and maximum "
            "concurrency per function (docs/devstack.md). Concurrent record_state batches may "
            "apply a run's Success before its Running, as on AWS: the late Running is kept as "
            "a note with the runner's time, which these figures use.",
        ]
    )


def report() -> str:
    """Both parts; the section of BENCHMARKS.md. A part that cannot run becomes an error row."""
    began = time.perf_counter()
    rows: list[Row] = []
    with loopback_only():
        for name, part in (
            ("AWS calls and write units per run", lambda: call_rows(count_calls())),
            ("latency on the dev stack", lambda: latency_rows(measure_latency())),
        ):
            try:
                rows += part()
            except Exception as exc:
                rows.append(Row(name, "-", "-", f"{type(exc).__name__}: {exc}", "-", "error"))
    return section(rows, time.perf_counter() - began)
