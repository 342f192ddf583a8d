"""The dispatcher's backoff under injected throttling, measured as a curve (``make bench``'s
``throttling`` section; ``--only throttling`` runs it alone, in under a minute on an idle
2-core machine).

For each series (ECS ``RunTask`` throttled; every DynamoDB call throttled) and each rate in
``RATES``, ``N_RUNS`` requests for the example flow ``hello`` go through the real
``Dispatcher.handle_request``, with every re-delivery the function's queue would make, until
each run is launched, Failed or dead-lettered. Reported per rate: runs launched, Failed (the
launch given up with its reason), dead-lettered, lost (none of these: must be 0), launched
twice (must be 0), AWS calls per launched run, botocore's retries, launch attempts, and the
time to launch, split into botocore's backoff, ``RetryLater`` delays and SQS redeliveries.

What is real, what is injected, what is simulated:

- **Real**: the ``Dispatcher`` wired as ``flowrelay.handlers.wiring`` wires it
  (``build_launchers`` with the real ``EcsLauncher``, ``RetryPolicy`` and ``Timeouts`` at their
  defaults, which are the template's), every AWS call it makes (to a moto server on 127.0.0.1),
  botocore's "standard" retry mode as flowrelay configures it (``aws.clients.RETRIES``: 5
  retries, 6 attempts a call, the client's retry quota, the jittered delays botocore
  chooses), and how flowrelay reads the errors that are left.
- **Injected**: a WSGI middleware in front of moto answers a set fraction of the dispatcher's
  requests (marked by its clients' user agent; the benchmark's own calls are never touched) as
  AWS answers throttling. Series ``ecs``: ``RunTask`` gets ``ThrottlingException`` "Rate
  exceeded" (HTTP 400). Series ``dynamodb``: every call of the dispatcher's DynamoDB client
  gets, alternately, ``ThrottlingException`` (what an on-demand table answers) and
  ``ProvisionedThroughputExceededException`` (a throttled index); a ``TransactWriteItems`` gets
  ``TransactionCanceledException`` with a ``ThrottlingError`` reason, which is how DynamoDB
  refuses a transaction it has no capacity for (botocore does not retry that one).
- **Simulated**: time and the queue. The clock (the store's and the backoffs') is virtual:
  botocore's retry sleeps are added to it, not slept (the sleep in ``botocore.endpoint`` is
  replaced while a point runs; the delays are those botocore chose). The dispatch queue is a
  heap of messages by due time: a ``RetryLater`` sends the request again with ``DelaySeconds``
  rounded and bounded as ``handlers.dispatch`` does; a delivery that raises is received again
  when the queue's visibility timeout ends, and its last receive dead-letters it
  (template.yaml's ``DispatchQueue``: 360 s, ``maxReceiveCount`` 5; ``handlers.batches``
  dead-letters there). Each message is handled at the moment it is due, as Lambda would with
  ``N_RUNS`` under the dispatch function's ``MaximumConcurrency`` (50 batches of 10). The calls
  themselves take no virtual time, and the monitor (which re-offers Pending runs every minute)
  is not simulated. The injected refusals are independent per call; AWS's token buckets
  refuse in runs until they refill.
"""

from __future__ import annotations

import heapq
import json
import logging
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.aws_counting import (
    ROOT,
    create_table,
    default_network,
    ecs_tasks_kept_running,
    envelope,
    loopback_only,
    moto_environment,
    table_definition,
)
from benchmarks.workloads import BenchmarkError
from flowrelay.core.network import is_loopback_host
from flowrelay.handlers.dispatch import sqs_delay

FLOW = "hello"
FLOW_MODULE = "flowrelay.sdk.examples.hello:flow"
PARAMETERS = {"name": "bench"}
TARGET = "fargate"
RATES = (0.0, 0.10, 0.25, 0.50, 0.75, 0.90)
N_RUNS = 20
SERIES = ("ecs", "dynamodb")
SERIES_NAMES = {
    "ecs": "ECS RunTask",
    "dynamodb": "DynamoDB (every call)",
}
#: What marks the dispatcher's requests (its clients' user agent); nothing else is throttled.
MARK = "flowrelay-bench-throttled"
EPOCH = datetime(2026, 11, 30, tzinfo=UTC)

ECS_TARGET = "AmazonEC2ContainerServiceV20141113."
DYNAMODB_TARGET = "DynamoDB_20120810."
#: What each series throttles: the ``X-Amz-Target`` of the requests, by prefix.
THROTTLED_TARGETS = {
    "ecs": (ECS_TARGET + "RunTask",),
    "dynamodb": (DYNAMODB_TARGET,),  # every operation of DynamoDB's
}
ON_DEMAND_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please try again shortly. If exceptions persist, check if "
    "you have a hot key"
)
INDEX_MESSAGE = (
    "The level of configured provisioned throughput for one or more global secondary indexes "
    "of the table was exceeded"
)
#: The ``SendMessage`` of a ``RetryLater`` (the function's; simulated here), in the call counts.
SIMULATED_SEND = "sqs SendMessage (simulated)"
THROTTLING_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException"})


# --- the throttling moto ------------------------------------------------------------------------


class Throttler:
    """WSGI middleware in front of moto's app: answers ``rate`` of the marked requests to the
    throttled operations as AWS answers throttling, and passes everything else to moto."""

    def __init__(self, app: Callable[..., Any], seed: int = 16) -> None:
        self.app = app
        self.rate = 0.0
        self.series = "ecs"
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.answered: Counter[str] = Counter()  # throttled, by the error answered

    def configure(self, series: str, rate: float, seed: str) -> None:
        with self.lock:
            self.series, self.rate = series, rate
            self.random.seed(seed)
            self.answered.clear()

    def _throttles(self, target: str) -> bool:
        applies = target.startswith(THROTTLED_TARGETS[self.series])
        with self.lock:
            return applies and self.rate > 0 and self.random.random() < self.rate

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if MARK in str(environ.get("HTTP_USER_AGENT", "")) and self._throttles(target):
            return self._refuse(environ, start_response, target)
        return self.app(environ, start_response)

    def _refuse(
        self, environ: dict[str, Any], start_response: Callable[..., Any], target: str
    ) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        request = json.loads(environ["wsgi.input"].read(length) or b"{}")
        operation = target.rsplit(".", 1)[-1]
        if target.startswith(ECS_TARGET):
            content_type = "application/x-amz-json-1.1"
            body: dict[str, Any] = {"__type": "ThrottlingException", "message": "Rate exceeded"}
        else:
            content_type = "application/x-amz-json-1.0"
            prefix = "com.amazonaws.dynamodb.v20120810#"
            if operation == "TransactWriteItems":
                items = len(request.get("TransactItems", [])) or 1
                reasons = [{"Code": "ThrottlingError", "Message": ON_DEMAND_MESSAGE}]
                reasons += [{"Code": "None"}] * (items - 1)
                codes = ", ".join(reason["Code"] for reason in reasons)
                body = {
                    "__type": prefix + "TransactionCanceledException",
                    "Message": f"Transaction cancelled, please refer cancellation reasons for "
                    f"specific reasons [{codes}]",
                    "CancellationReasons": reasons,
                }
            elif sum(self.answered.values()) % 2 == 0:
                body = {"__type": prefix + "ThrottlingException", "message": ON_DEMAND_MESSAGE}
            else:
                body = {
                    "__type": prefix + "ProvisionedThroughputExceededException",
                    "message": INDEX_MESSAGE,
                }
        error = body["__type"].rsplit("#", 1)[-1]
        with self.lock:
            self.answered[f"{operation}: {error}"] += 1
        payload = json.dumps(body).encode()
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", content_type),
                ("Content-Length", str(len(payload))),
                ("x-amzn-RequestId", str(uuid.uuid4())),
            ],
        )
        return [payload]


@contextmanager
def throttled_moto_server(seed: int = 16) -> Iterator[tuple[str, Throttler]]:
    """A moto server on 127.0.0.1 (ephemeral port) behind a ``Throttler``, with flowrelay's moto
    fixes, logging no request; its URL and the throttler. (``aws_counting.moto_server`` serves
    moto's app as it is; this one needs the app to put the throttler in front of it.)"""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    from flowrelay.devstack import moto_fixes

    moto_fixes.apply()
    requests_log = logging.getLogger("werkzeug")
    level = requests_log.level
    requests_log.setLevel(logging.WARNING)

    throttler = Throttler(DomainDispatcherApplication(create_backend_app), seed)
    server = make_server(
        "127.0.0.1", 0, throttler, threaded=True, request_handler=MotoRequestHandler
    )
    thread = threading.Thread(target=server.serve_forever, name="throttled-moto", daemon=True)
    thread.start()
    try:
        host, port = str(server.server_address[0]), int(server.server_address[1])
        if not is_loopback_host(host):
            raise BenchmarkError(f"the moto server is not on loopback: {host}")
        yield f"http://{host}:{port}", throttler
    finally:
        server.shutdown()
        thread.join(timeout=10)
        requests_log.setLevel(level)


# --- virtual time -------------------------------------------------------------------------------


class VirtualClock:
    """The benchmark's clock: seconds since ``EPOCH``, moved by the simulated waits only."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.retries = 0
        self.backoff = 0.0

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.seconds)

    def sleep(self, seconds: float) -> None:
        """botocore's retry sleep, in virtual time."""
        self.seconds += seconds
        self.retries += 1
        self.backoff += seconds


class _SleepShim:
    """Stands in for the ``time`` module in ``botocore.endpoint`` (whose only use of it is the
    sleep between retries)."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextmanager
def botocore_sleeps_in(clock: VirtualClock) -> Iterator[None]:
    import botocore.endpoint

    module: Any = botocore.endpoint
    real = module.time
    module.time = _SleepShim(clock)
    try:
        yield
    finally:
        module.time = real


@contextmanager
def seeded(seed: str) -> Iterator[None]:
    """The global ``random`` (botocore's jitter, ``RetryPolicy``'s) seeded, then restored."""
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


# --- one point of the curve -----------------------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    """The dispatch queue as template.yaml makes it, and as the function re-sends to it."""

    visibility_timeout: float
    max_receives: int
    max_delay: int

    @classmethod
    def of_template(cls) -> Queue:
        from flowrelay.devstack.template import load_template, resource_properties
        from flowrelay.handlers.dispatch import MAX_SQS_DELAY

        queue = resource_properties(load_template(ROOT / "template.yaml"), "DispatchQueue")
        return cls(
            visibility_timeout=float(queue["VisibilityTimeout"]),
            max_receives=int(queue["RedrivePolicy"]["maxReceiveCount"]),
            max_delay=MAX_SQS_DELAY,
        )


@dataclass
class Point:
    """What ``runs`` requests came to at one throttle rate of one series."""

    series: str
    rate: float
    runs: int
    launched: dict[str, float] = field(default_factory=dict)  # run id -> seconds to launch
    failed: dict[str, str] = field(default_factory=dict)  # run id -> its message
    dead_lettered: dict[str, str] = field(default_factory=dict)  # run id -> state ("absent")
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0  # runs with more than one task
    attempts: dict[str, int] = field(default_factory=dict)  # run id -> launch attempts made
    calls: Counter[str] = field(default_factory=Counter)  # by "service operation"
    requests: int = 0  # HTTP requests, botocore's retries included
    retries: int = 0  # botocore's retries
    quota_refusals: int = 0  # throttled calls botocore did not retry: its retry quota was spent
    backoff: float = 0.0  # seconds botocore slept (virtual)
    retry_later: int = 0
    retry_later_seconds: float = 0.0
    early: int = 0  # deliveries of a RetryLater that came before the run's retry_at
    redeliveries: int = 0
    redelivery_seconds: float = 0.0
    raised: Counter[str] = field(default_factory=Counter)  # deliveries that raised, by error
    throttled: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0  # real seconds the point took


@dataclass(order=True)
class _Message:
    due: float
    order: int
    run_id: str = field(compare=False)
    receives: int = field(compare=False, default=1)


class Plane:
    """A table, an ECS cluster, the flow ``hello`` and one ECS target in moto; per point, a
    dispatcher with fresh clients (a fresh container: its own botocore retry quota)."""

    def __init__(self, throttler: Throttler) -> None:
        import boto3

        from flowrelay.control.store import Store
        from flowrelay.core.routing import Target
        from flowrelay.core.storage import Module
        from flowrelay.launchers.kinds import checked_target
        from flowrelay.sdk.flow import registration_for
        from flowrelay.sdk.storage import load_flow

        self.throttler = throttler
        self.queue = Queue.of_template()
        suffix = uuid.uuid4().hex[:8]
        self.table = f"flowrelay-bench-throttle-{suffix}"
        self.bus = f"flowrelay-bench-throttle-{suffix}"
        self.cluster = f"flows-throttle-{suffix}"
        properties = table_definition()
        make: Any = boto3.client
        dynamodb = make("dynamodb")
        create_table(dynamodb, self.table, properties)
        self.ecs = make("ecs")
        self.ecs.create_cluster(clusterName=self.cluster)
        # The benchmark's own view of the table: never throttled, never counted.
        self.store = Store(dynamodb, self.table)
        module = Module(FLOW_MODULE)
        self.store.flows.register(registration_for(load_flow(module), storage=module))
        network = default_network(make("ec2"))
        self.store.targets.put(
            checked_target(
                Target(
                    name=TARGET,
                    kind="ecs",
                    settings={"cluster": self.cluster, "image": "example/flows:1", **network},
                )
            )
        )

    def dispatcher(self, clock: VirtualClock, point: Point) -> Any:
        """The dispatch function's parts, its clients marked (throttled) and counted into
        ``point``."""
        import boto3
        from botocore.config import Config

        from flowrelay.aws.clients import retry_settings
        from flowrelay.control.dispatch import Dispatcher
        from flowrelay.control.slots import Slots
        from flowrelay.control.store import Store
        from flowrelay.core.policies import RetryPolicy, Timeouts
        from flowrelay.launchers.kinds import build_launchers

        clients: dict[str, Any] = {}

        def before(model: Any, **_: Any) -> None:
            point.calls[f"{_service(model)} {model.name}"] += 1

        def after(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
            tried = int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0))
            point.requests += tried + 1
            code = parsed.get("Error", {}).get("Code", "")
            refused = http_response.status_code >= 300 and code in THROTTLING_CODES
            if refused and tried + 1 < total_attempts(next(iter(clients.values()))):
                point.quota_refusals += 1

        def make_client(service: str) -> Any:
            if service not in clients:
                make: Any = boto3.client
                client = make(
                    service, config=Config(retries=retry_settings(), user_agent_extra=MARK)
                )
                client.meta.events.register("before-call", before)
                client.meta.events.register("after-call", after)
                clients[service] = client
            return clients[service]

        store = Store(make_client("dynamodb"), self.table, clock=clock.now)
        launchers = build_launchers(
            make_client, table_name=self.table, bus_name=self.bus, kinds=("ecs",)
        )
        woken: list[Any] = []
        return Dispatcher(
            store,
            launchers,
            retry=RetryPolicy(),
            timeouts=Timeouts(),
            slots=Slots(store, wake=woken.append),
        )

    def request(self, run_id: str) -> Any:
        """The run's request as dispatch receives it (one envelope, for every delivery)."""
        from flowrelay.core.events import FlowRunRequested, parse_event

        entry = FlowRunRequested(
            flow=FLOW, flow_run_id=run_id, parameters=PARAMETERS, requested_by="bench"
        ).entry(self.bus)
        return parse_event(
            envelope(entry["DetailType"], json.loads(entry["Detail"]), str(uuid.uuid4()))
        )

    def tasks_by_run(self, run_ids: Iterable[str]) -> Counter[str]:
        """How many ECS tasks each of ``run_ids`` has (by its task group)."""
        from flowrelay.launchers.ecs.names import group_of

        groups = {group_of(run_id): run_id for run_id in run_ids}
        arns: list[str] = []
        for page in self.ecs.get_paginator("list_tasks").paginate(cluster=self.cluster):
            arns.extend(page.get("taskArns", []))
        found: Counter[str] = Counter()
        for start in range(0, len(arns), 100):
            chunk = arns[start : start + 100]
            for task in self.ecs.describe_tasks(cluster=self.cluster, tasks=chunk)["tasks"]:
                run_id = groups.get(str(task.get("group", "")))
                if run_id is not None:
                    found[run_id] += 1
        return found

    def run_point(self, series: str, rate: float, runs: int = N_RUNS) -> Point:
        """``runs`` requests dispatched, with their re-deliveries, at ``rate`` of ``series``."""
        from flowrelay.control.dispatch import RetryLater
        from flowrelay.core.lifecycle import RunState

        began = time.perf_counter()
        point = Point(series, rate, runs)
        clock = VirtualClock()
        seed = f"{series}-{rate}"
        with seeded(seed), botocore_sleeps_in(clock):
            dispatcher = self.dispatcher(clock, point)
            # A fresh container describes its task definition once: not part of the curve.
            self.throttler.configure(series, 0.0, seed)
            warm = f"warm-{uuid.uuid4().hex[:10]}"
            if not dispatcher.handle_request(self.request(warm)).launched:
                raise BenchmarkError("the warm-up run was not launched")
            point.calls.clear()
            point.requests = 0
            self.throttler.configure(series, rate, seed)
            clock.retries, clock.backoff = 0, 0.0
            prefix = f"{series}-{int(rate * 100)}-{uuid.uuid4().hex[:6]}"
            run_ids = [f"{prefix}-{number}" for number in range(runs)]
            events = {run_id: self.request(run_id) for run_id in run_ids}
            queue = [_Message(0.0, order, run_id) for order, run_id in enumerate(run_ids)]
            heapq.heapify(queue)
            order = len(queue)
            while queue:
                message = heapq.heappop(queue)
                clock.seconds = message.due
                try:
                    outcome = dispatcher.handle_request(events[message.run_id])
                except RetryLater as later:
                    delay = min(self.queue.max_delay, sqs_delay(later.delay))
                    point.retry_later += 1
                    point.retry_later_seconds += delay
                    point.early += "is due later" in later.reason
                    point.calls[SIMULATED_SEND] += 1
                    heapq.heappush(queue, _Message(clock.seconds + delay, order, message.run_id))
                    order += 1
                except Exception as exc:
                    point.raised[_error_name(exc)] += 1
                    if message.receives >= self.queue.max_receives:
                        point.dead_lettered[message.run_id] = f"{type(exc).__name__}"
                        continue
                    point.redeliveries += 1
                    point.redelivery_seconds += self.queue.visibility_timeout
                    again = _Message(
                        message.due + self.queue.visibility_timeout,
                        order,
                        message.run_id,
                        message.receives + 1,
                    )
                    heapq.heappush(queue, again)
                    order += 1
                else:
                    if outcome.launched:
                        point.launched[message.run_id] = clock.seconds
                    elif outcome.state is RunState.FAILED:
                        point.failed[message.run_id] = outcome.message or ""
            point.throttled = Counter(self.throttler.answered)
            self.throttler.configure(series, 0.0, seed)
        point.retries, point.backoff = clock.retries, clock.backoff
        self._check(point, run_ids)
        point.seconds = time.perf_counter() - began
        return point

    def _check(self, point: Point, run_ids: list[str]) -> None:
        """What the table and ECS say of every run, read without throttling: nothing lost,
        nothing launched twice."""
        from flowrelay.core.lifecycle import RunState

        tasks = self.tasks_by_run(run_ids)
        point.duplicates = sum(1 for count in tasks.values() if count > 1)
        for run_id in run_ids:
            run = self.store.runs.get(run_id)
            if run is not None:
                point.attempts[run_id] = run.attempt
            if run_id in point.dead_lettered:
                state = "absent" if run is None else str(run.state)
                point.dead_lettered[run_id] = state
                continue
            launched = (
                run is not None
                and run.state is RunState.SUBMITTED
                and tasks.get(run_id, 0) == 1
                and run_id in point.launched
            )
            failed = run is not None and run.state is RunState.FAILED and bool(run.message)
            if not launched and not failed:
                point.lost.append(run_id)


def _error_name(exc: Exception) -> str:
    """``TransactionCanceledException [ThrottlingError]``, ``ThrottlingException``, or the
    exception's type."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return type(exc).__name__
    code = str(response.get("Error", {}).get("Code", type(exc).__name__))
    reasons = sorted(
        {str(reason.get("Code")) for reason in response.get("CancellationReasons", [])} - {"None"}
    )
    return code + (f" [{', '.join(reasons)}]" if reasons else "")


def _service(model: Any) -> str:
    return str(model.service_model.service_name)


def total_attempts(client: Any) -> int:
    """Attempts botocore makes of one call, the first included. flowrelay's ``max_attempts``
    of 5 is botocore's legacy key, which counts retries: 6 attempts in all (botocore rewrites
    it as ``total_max_attempts``)."""
    retries = client.meta.config.retries or {}
    return int(retries.get("total_max_attempts", 1 + int(retries.get("max_attempts", 4))))


def measure(rates: tuple[float, ...] = RATES, runs: int = N_RUNS) -> list[Point]:
    """Every point of both series, on one moto server on 127.0.0.1."""
    points: list[Point] = []
    with (
        loopback_only(),
        throttled_moto_server() as (endpoint, throttler),
        moto_environment(endpoint),
        ecs_tasks_kept_running(endpoint),
    ):
        plane = Plane(throttler)
        for series in SERIES:
            for rate in rates:
                points.append(plane.run_point(series, rate, runs))
    return points


# --- the report -----------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _per(total: float, point: Point) -> str:
    """``total`` per launched run; per request when none was launched."""
    if point.launched:
        return _number(total / len(point.launched))
    return f"- ({_number(total / point.runs)} per request)"


def row(point: Point) -> list[str]:
    launched = len(point.launched)
    times = sorted(point.launched.values())
    attempts = [point.attempts.get(run_id, 1) for run_id in point.launched]
    calls = sum(point.calls.values())
    simulated = point.calls.get(SIMULATED_SEND, 0)
    to_launch = f"{_duration(_median(times))} / {_duration(times[-1])}" if times else "-"
    mean_attempts = _number(statistics.mean(attempts)) if attempts else "-"
    return [
        SERIES_NAMES[point.series],
        f"{point.rate:.0%}",
        f"{launched}/{point.runs}",
        str(len(point.failed)),
        str(len(point.dead_lettered)),
        str(len(point.lost)),
        str(point.duplicates),
        _per(calls, point) + (f" (SQS {_per(simulated, point)})" if simulated else ""),
        _per(point.retries, point)
        + (f" ({point.quota_refusals} refused by the quota)" if point.quota_refusals else ""),
        f"{mean_attempts} (max {max(attempts, default=0)})" if attempts else "-",
        to_launch,
        _per(point.backoff, point),
        _per(point.retry_later_seconds, point),
        _per(point.redelivery_seconds, point),
    ]


HEADER = [
    "throttled",
    "rate",
    "launched",
    "Failed",
    "dead-lettered",
    "lost",
    "launched twice",
    "AWS calls / launched run",
    "botocore retries / launched run",
    "launch attempts / launched run",
    "time to launch: median / max",
    "botocore backoff s / launched run",
    "RetryLater delays s / launched run",
    "SQS redelivery waits s / launched run",
]


def table(points: list[Point]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for point in points:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row(point)) + " |")
    return "\n".join(lines)


def problems(points: list[Point]) -> list[str]:
    """Runs lost or launched twice (each must be 0), one line each."""
    lines = []
    for point in points:
        where = f"{SERIES_NAMES[point.series]} at {point.rate:.0%}"
        if point.lost:
            lines.append(f"- {where}: {len(point.lost)} run(s) lost: {', '.join(point.lost)}")
        if point.duplicates:
            lines.append(f"- {where}: {point.duplicates} run(s) launched twice")
    return lines


def section(points: list[Point], seconds: float) -> str:
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    answered: Counter[str] = Counter()
    dead: Counter[str] = Counter()
    raised: Counter[str] = Counter()
    for point in points:
        answered.update(point.throttled)
        dead.update(point.dead_lettered.values())
        raised.update(point.raised)
    answers = ", ".join(f"{what} {count}" for what, count in sorted(answered.items()))
    errors = ", ".join(f"{what} {count}" for what, count in raised.most_common())
    reasons = [reason for point in points for reason in point.failed.values()]
    early = sum(point.early for point in points)
    sent = sum(point.retry_later for point in points)
    bad = problems(points)
    runs = points[0].runs if points else N_RUNS
    lines = [
        f"Generated by `make bench` on {generated} ({seconds:.0f} s): {runs} requests per "
        "point through `Dispatcher.handle_request` on a moto server on 127.0.0.1 that answers "
        "the set fraction of the dispatcher's calls as AWS answers throttling; time is virtual "
        "(`benchmarks/throttling.py` says what is real and what is simulated).",
        "",
        table(points),
        "",
        "Lost and launched twice: "
        + ("0 at every point." if not bad else f"{len(bad)} problem(s):"),
        *bad,
        "",
        "How to read it:",
        "",
        "- **launched**: Submitted with exactly one ECS task. **Failed**: the launch given up, "
        "its reason on the run, after `RetryPolicy.max_attempts` (5) attempts each refused "
        "after botocore's own retries"
        + (f" (\u201c{reasons[0][:120]}\u201d)" if reasons else "")
        + ". **dead-lettered**: five deliveries raised; the request is in the dispatch DLQ (its "
        "alarm fires), and its run, where it was created, waits in Pending, which the monitor "
        "offers to dispatch again every minute (not simulated here)"
        + (
            " (the dead-lettered runs: "
            + ", ".join(f"{state} {count}" for state, count in sorted(dead.items()))
            + ")"
            if dead
            else ""
        )
        + ". **lost**: none of these (must be 0).",
        "- **AWS calls / launched run**: every call the dispatcher's clients made (botocore "
        "`before-call`), refused ones included, over every delivery, plus the `SendMessage` of "
        "each `RetryLater` (simulated; its share in brackets), divided by the runs launched. "
        "**botocore retries**: the retries botocore made inside those calls (`RetryAttempts`; "
        "flowrelay's `max_attempts` of 5 is botocore's count of retries: 6 attempts a call). "
        "\u201cRefused by the quota\u201d: throttled calls botocore gave up on before their "
        "sixth attempt because the client's retry quota (500 tokens, 5 a retry, 1 back per "
        "call that needed none) was spent, as a busy Lambda container's would be.",
        "- **time to launch**: virtual time from the request to Submitted: botocore's backoff "
        "(the delays it chose, summed, not slept), `RetryLater` delays (`DelaySeconds`, rounded "
        "as the function rounds them) and SQS redelivery waits (a delivery that raised is "
        "received again after the 360 s visibility timeout). The calls themselves take no "
        "virtual time.",
        f"- Throttling answered: {answers or 'none'}.",
        f"- Deliveries that raised (each waits out the visibility timeout): {errors or 'none'}.",
        f"- Of the {sent} `RetryLater` re-sends, {early} came back before the run's `retry_at` "
        "and were sent back again (the function rounds `DelaySeconds` up, `sqs_delay`, so "
        "none should).",
    ]
    return "\n".join(lines)


def report() -> str:
    """The curve; the section of BENCHMARKS.md. A failure becomes one error line."""
    began = time.perf_counter()
    try:
        points = measure()
    except Exception as exc:
        return f"The throttling benchmark did not run: {type(exc).__name__}: {exc}"
    return section(points, time.perf_counter() - began)


if __name__ == "__main__":
    print(report())
