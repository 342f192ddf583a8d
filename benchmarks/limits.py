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
as DynamoDB bills them (``Meter``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import socket
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.report import Row
from benchmarks.workloads import BenchmarkError

ROOT = Path(__file__).resolve().parents[1]
N_RUNS = 20
BURST = 5
LABEL = "warehouse"
FLOW = "etl"
TARGET = "fargate"
WRITE_UNIT = 1024  # bytes per write request unit
READ_UNIT = 4096  # bytes per read request unit (strongly consistent; half for eventual)
LIFE = "life"
STOPPED = "stopped"

WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"})


# --- item sizes, as DynamoDB counts them ------------------------------------------------------


def number_size(text: str) -> int:
    """A number's size: one byte per two significant digits, plus one."""
    digits = format(abs(Decimal(text)), "f").replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    """The size of one attribute value (its name not included)."""
    ((kind, data),) = value.items()
    if kind == "S":
        return len(data.encode())
    if kind == "N":
        return number_size(data)
    if kind == "B":
        return len(data)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(text.encode()) for text in data)
    if kind == "NS":
        return sum(number_size(text) for text in data)
    if kind == "BS":
        return sum(len(blob) for blob in data)
    if kind == "M":  # 3 bytes, and per element 1 byte, its name and its value
        return 3 + sum(1 + len(name.encode()) + value_size(inner) for name, inner in data.items())
    if kind == "L":
        return 3 + sum(1 + value_size(inner) for inner in data)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: dict[str, Any] | None) -> int:
    """An item's size: its attribute names (UTF-8) and values; 0 for no item."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and what it projects (None: ALL)."""

    name: str
    keys: tuple[str, ...]
    projected: frozenset[str] | None

    def entry(self, item: dict[str, Any] | None, table_keys: tuple[str, ...]) -> dict[str, Any]:
        """The item's entry in this index ({} when the item is not in it)."""
        if not item or any(key not in item for key in self.keys):
            return {}
        if self.projected is None:
            return item
        keep = self.projected | set(self.keys) | set(table_keys)
        return {name: value for name, value in item.items() if name in keep}

    def writes(
        self,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        table_keys: tuple[str, ...],
    ) -> list[int]:
        """The sizes of the index writes a change of one item makes: a put when it enters the
        index, a delete when it leaves, both when its index key changes, one update when a
        projected attribute changes."""
        old, new = self.entry(before, table_keys), self.entry(after, table_keys)
        if old and new:
            if any(old[key] != new[key] for key in self.keys):
                return [item_size(old), item_size(new)]
            return [max(item_size(old), item_size(new))] if old != new else []
        if new:
            return [item_size(new)]
        if old:
            return [item_size(old)]
        return []


def table_definition() -> dict[str, Any]:
    """template.yaml's ``Table`` properties (the one definition of the table)."""
    from flowrelay.devstack.template import load_template, resource_properties

    return resource_properties(load_template(ROOT / "template.yaml"), "Table")


def indexes_of(properties: dict[str, Any]) -> list[Index]:
    indexes = []
    for index in properties.get("GlobalSecondaryIndexes", []):
        projection = index.get("Projection", {})
        kind = projection.get("ProjectionType", "ALL")
        projected = None if kind == "ALL" else frozenset(projection.get("NonKeyAttributes", []))
        keys = tuple(key["AttributeName"] for key in index["KeySchema"])
        indexes.append(Index(index["IndexName"], keys, projected))
    return indexes


# --- counting -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """What a client asked of DynamoDB over some calls, and what DynamoDB would bill for it."""

    calls: Counter[str] = field(default_factory=Counter)
    items_written: int = 0
    table_wru: int = 0
    index_writes: int = 0
    index_wru: int = 0
    refused_writes: int = 0
    refused_wru: int = 0
    rru: float = 0.0

    @property
    def wru(self) -> int:
        return self.table_wru + self.index_wru + self.refused_wru


@dataclass
class _Write:
    table: str
    key: dict[str, Any]
    transactional: bool
    condition_only: bool = False
    before: dict[str, Any] | None = None


class Meter:
    """Counts every call ``client`` makes while a phase is being counted (``counting``), and
    prices it as DynamoDB bills on-demand tables:

    - a written item costs ceil(max(size before, size after) / 1 KB) write request units, twice
      that inside ``TransactWriteItems``;
    - each global secondary index the change reaches costs one more write of the item's index
      entry (a put when it enters the index, a delete when it leaves it, both when its index key
      changes, an update when a projected attribute changes); transactions do not double these;
    - a refused write (a failed condition; every item of a cancelled transaction) costs the
      existing item's size (at least 1 unit), once: the estimate used here, not documented for
      cancelled transactions;
    - reads: ceil(size / 4 KB) read units per ``GetItem`` item, per ``Query`` page (the items'
      sizes summed), at least one, half for eventually consistent reads (index queries).

    Sizes are read with ``reader``, a second client with no hooks (``BatchGetItem``, consistent):
    before a write (unless the last write of the item said what it is) and after it.
    """

    def __init__(self, client: Any, reader: Any, properties: dict[str, Any]) -> None:
        self.client = client
        self.reader = reader
        self.table_keys = tuple(key["AttributeName"] for key in properties["KeySchema"])
        self.indexes = indexes_of(properties)
        self.tallies: dict[str, Tally] = {}
        self.phase: str | None = None
        self.unpriced: Counter[str] = Counter()
        # The items written so far, as they are after the last write (None: no item), so that
        # the size before a write is read only once; every write goes through ``client``.
        self.known: dict[str, dict[str, Any] | None] = {}
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)

    @contextmanager
    def counting(self, phase: str) -> Iterator[Tally]:
        """Count the calls made in the block into the tally of ``phase``."""
        previous = self.phase
        self.phase = phase
        try:
            yield self.tallies.setdefault(phase, Tally())
        finally:
            self.phase = previous

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Calls made in the block (the benchmark's own reads) are not counted."""
        previous = self.phase
        self.phase = None
        try:
            yield
        finally:
            self.phase = previous

    def _read(self, writes: list[_Write]) -> list[dict[str, Any] | None]:
        """The items ``writes`` touch, as they are now (one consistent ``BatchGetItem``)."""
        wanted: dict[str, list[dict[str, Any]]] = {}
        for write in writes:
            keys = wanted.setdefault(write.table, [])
            if write.key not in keys:
                keys.append(write.key)
        found: dict[str, list[dict[str, Any]]] = {}
        while wanted:
            response = self.reader.batch_get_item(
                RequestItems={
                    table: {"Keys": keys, "ConsistentRead": True} for table, keys in wanted.items()
                }
            )
            for table, items in response.get("Responses", {}).items():
                found.setdefault(table, []).extend(items)
            wanted = {
                table: request["Keys"]
                for table, request in response.get("UnprocessedKeys", {}).items()
            }
        return [
            next(
                (
                    item
                    for item in found.get(write.table, [])
                    if all(item.get(name) == value for name, value in write.key.items())
                ),
                None,
            )
            for write in writes
        ]

    def _identity(self, write: _Write) -> str:
        return json.dumps([write.table, write.key], sort_keys=True)

    def _writes(self, operation: str, request: dict[str, Any]) -> list[_Write]:
        table = request.get("TableName", "")
        if operation == "PutItem":
            item = request["Item"]
            return [_Write(table, {k: item[k] for k in self.table_keys}, False)]
        if operation in ("UpdateItem", "DeleteItem"):
            return [_Write(table, request["Key"], False)]
        if operation == "TransactWriteItems":
            writes = []
            for entry in request["TransactItems"]:
                ((action, body),) = entry.items()
                if action == "Put":
                    key = {k: body["Item"][k] for k in self.table_keys}
                else:
                    key = body["Key"]
                writes.append(
                    _Write(body["TableName"], key, True, condition_only=action == "ConditionCheck")
                )
            return writes
        return []

    def _before(
        self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        operation = model.name
        if self.phase is None:
            if operation in WRITE_OPERATIONS:
                self.known.clear()  # an uncounted write: what is known may be stale
            return
        body = params.get("body") or b"{}"
        request = json.loads(body.decode() if isinstance(body, bytes) else body)
        writes = self._writes(operation, request)
        unknown = [write for write in writes if self._identity(write) not in self.known]
        for write, item in zip(unknown, self._read(unknown), strict=True):
            self.known[self._identity(write)] = item
        for write in writes:
            write.before = self.known[self._identity(write)]
        context["bench_limits"] = (self.phase, operation, request, writes)

    def _after(
        self, http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        noted = context.pop("bench_limits", None)
        if noted is None:
            return
        phase, operation, request, writes = noted
        tally = self.tallies.setdefault(phase, Tally())
        tally.calls[operation] += 1
        succeeded = http_response.status_code < 300
        if operation in WRITE_OPERATIONS:
            afters = self._read(writes) if succeeded else [write.before for write in writes]
            for write, after in zip(writes, afters, strict=True):
                self.known[self._identity(write)] = after
                before_size = item_size(write.before)
                if not succeeded:
                    tally.refused_writes += 1
                    tally.refused_wru += write_units(before_size)
                    continue
                factor = 2 if write.transactional else 1
                if write.condition_only:
                    tally.table_wru += factor * write_units(before_size)
                    continue
                tally.items_written += 1
                tally.table_wru += factor * write_units(max(before_size, item_size(after)))
                for index in self.indexes:
                    for size in index.writes(write.before, after, self.table_keys):
                        tally.index_writes += 1
                        tally.index_wru += write_units(size)
        elif operation == "GetItem":
            consistent = bool(request.get("ConsistentRead"))
            tally.rru += read_units(item_size(parsed.get("Item")), consistent)
        elif operation == "Query":
            consistent = bool(request.get("ConsistentRead")) and "IndexName" not in request
            size = sum(item_size(item) for item in parsed.get("Items", []))
            tally.rru += read_units(size, consistent)
        else:
            self.unpriced[operation] += 1


# --- a moto server on loopback ------------------------------------------------------------------


@contextmanager
def moto_environment(endpoint: str) -> Iterator[None]:
    """Every boto3 client made in the block talks to ``endpoint`` with fake credentials and
    reads no AWS config file; the environment is restored afterwards."""
    from flowrelay.aws.clients import REAL_AWS_SETTINGS

    # What could send boto3 elsewhere than the moto server, or to real credentials.
    cleared = (*REAL_AWS_SETTINGS, "AWS_ENDPOINT_URL_S3", "AWS_REGION")
    with tempfile.TemporaryDirectory() as scratch:
        absent = str(Path(scratch) / "no-aws-config")
        settings = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": absent,
            "AWS_SHARED_CREDENTIALS_FILE": absent,
        }
        saved = {name: os.environ.get(name) for name in (*cleared, *settings)}
        for name in cleared:
            os.environ.pop(name, None)
        os.environ.update(settings)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%", maxsplit=1)[0]).is_loopback
    except ValueError:
        return False


@contextmanager
def loopback_only() -> Iterator[None]:
    """Any connection to anywhere but loopback made in the block fails."""
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and not _is_loopback(str(address[0])):
            raise ConnectionRefusedError(f"the benchmark refused a connection to {address!r}")
        real_connect(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (ephemeral port), with flowrelay's moto fixes, that logs no
    request; its URL."""
    from moto.server import ThreadedMotoServer

    from flowrelay.devstack import moto_fixes

    moto_fixes.apply()
    requests_log = logging.getLogger("werkzeug")
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        if not _is_loopback(str(host)):
            raise BenchmarkError(f"the moto server is not on loopback: {host}")
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        requests_log.setLevel(level)


def _moto_api(endpoint: str, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status not in (200, 201):
            raise BenchmarkError(f"moto answered {path} with HTTP {response.status}")


@contextmanager
def ecs_tasks_kept_running(endpoint: str) -> Iterator[None]:
    """moto's ECS tasks stay RUNNING until stopped while the block runs (its default moves a
    task towards STOPPED on every DescribeTasks, for every server of this process)."""
    _moto_api(
        endpoint,
        "/moto-api/state-manager/set-transition",
        {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10**6}},
    )
    try:
        yield
    finally:
        _moto_api(endpoint, "/moto-api/state-manager/unset-transition", {"model_name": "ecs::task"})


def default_network(ec2: Any) -> dict[str, Any]:
    """The default VPC's first subnet and default security group, as ECS target settings."""
    subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])
    groups = ec2.describe_security_groups(GroupNames=["default"])
    return {
        "subnets": [subnets["Subnets"][0]["SubnetId"]],
        "security_groups": [groups["SecurityGroups"][0]["GroupId"]],
    }


# --- the control plane --------------------------------------------------------------------------


class Clock:
    """The store's time, moved a second per event (leases and timestamps without sleeping)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


def _envelope(
    detail_type: str, detail: Any, event_id: str, source: str = "flowrelay", **extra: Any
) -> dict[str, Any]:
    """An EventBridge event as the functions receive it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
        **extra,
    }


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
        client.create_table(
            TableName=self.table,
            BillingMode=properties["BillingMode"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            KeySchema=properties["KeySchema"],
            GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
        )
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
            _envelope(entry["DetailType"], json.loads(entry["Detail"]), self._event_id())
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
            _envelope(
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
