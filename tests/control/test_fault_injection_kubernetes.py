"""The dispatcher killed at each Kubernetes call it makes (and at the DynamoDB write that
records the Job), then its message delivered again, on a Kubernetes target.

As ``test_fault_injection_dispatch`` does for ECS: ``before`` means the call never reached the
API server, ``after`` that the API server did it and the process died before it saw the answer.
The kill is raised from the real ``kubernetes`` client's ``ApiClient.call_api`` (the library's
one door to HTTP) and from botocore's events on the real DynamoDB client, against the dev
stack's Kubernetes API and moto over HTTP; nothing of flowrelay is mocked. A create that got no
answer (the API server did it, the connection closed) is injected by the API server itself.

Every case must end with the run Submitted, exactly one Job for its attempt, and the run
recording that Job (its uid). The counts are printed in the summary.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import boto3
import pytest

from flowrelay.control.dispatch import LAUNCH_LEASE, Dispatcher, DispatchOutcome, RetryLater
from flowrelay.control.store import Store
from flowrelay.core.events import ParsedEvent, parse_event
from flowrelay.core.lifecycle import RunState
from flowrelay.core.routing import Target
from flowrelay.core.runs import run_id_for
from flowrelay.devstack.kubernetes import KubernetesApi
from flowrelay.launchers.kubernetes.launcher import KubernetesLauncher
from tests.control.test_fault_injection_dispatch import Killed
from tests.support.aws import Clock, create_run_table, point_boto3_at, register_etl, report_figures
from tests.support.strategies import envelope

Phase = Literal["before", "after"]
NAMESPACE = "flowrelay"
MAX_REDELIVERIES = 4


class Session:
    """Credentials to sign EKS tokens with (the one boundary stubbed)."""

    region_name = "us-east-1"

    def get_credentials(self) -> Any:
        from botocore.credentials import Credentials

        return Credentials("AKIDEXAMPLE", "example-not-a-secret")


@dataclass
class World:
    dynamodb: Any
    table: str
    api: KubernetesApi
    clock: Clock

    def store(self) -> Store:
        return Store(self.dynamodb, self.table, clock=self.clock)

    def jobs_of(self, run_id: str) -> list[dict[str, Any]]:
        return [
            job
            for (plural, _, _), job in list(self.api.store.objects.items())
            if plural == "jobs"
            and job["metadata"].get("annotations", {}).get("flowrelay.dev/run-id") == run_id
        ]


@pytest.fixture(scope="module")
def world(moto_server: str) -> Iterator[World]:
    api = KubernetesApi(eks_cluster="flows")
    url = api.start()
    with pytest.MonkeyPatch.context() as env:
        point_boto3_at(env, moto_server, "/nonexistent/flowrelay-no-aws-config")
        dynamodb = boto3.client("dynamodb")
        table = f"flowrelay-k8s-faults-{uuid.uuid4().hex[:8]}"
        create_run_table(dynamodb, table)
        try:
            world = World(dynamodb, table, api, Clock())
            store = register_etl(world.store())
            store.targets.put(
                Target(
                    name="k8s",
                    kind="kubernetes",
                    settings={
                        "eks_cluster": "flows",
                        "api_server": url,
                        "namespace": NAMESPACE,
                        "image": "example/flows:faults",
                    },
                )
            )
            yield world
        finally:
            dynamodb.delete_table(TableName=table)
            api.stop()


@dataclass(frozen=True)
class Fault:
    """Kill the dispatcher at the first call named ``call`` of a delivery, in ``phase``
    (``k8s:POST jobs``, ``k8s:GET job``, ``dynamodb:TransactWriteItems``...)."""

    call: str
    phase: Phase

    @property
    def label(self) -> str:
        return f"{self.call}/{self.phase}"


@dataclass
class Trace:
    faults: list[Fault]
    calls: list[str] = field(default_factory=list)
    fired: list[Fault] = field(default_factory=list)

    def at(self, call: str, phase: Phase) -> None:
        if phase == "before":
            self.calls.append(call)
        for fault in self.faults:
            if fault.call == call and fault.phase == phase and fault not in self.fired:
                self.fired.append(fault)
                raise Killed(fault.label)


def _k8s_call(method: str, url: str) -> str:
    path = url.split("?", 1)[0]
    noun = "jobs" if path.endswith("/jobs") else "job" if "/jobs/" in path else "pods"
    return f"k8s:{method} {noun}"


def deliver(world: World, event: ParsedEvent, faults: list[Fault], monkeypatch: Any) -> Any:
    """One delivery to a new dispatcher and launcher (a new process), with ``faults`` armed."""
    from kubernetes.client.api_client import ApiClient

    trace = Trace(faults)
    real_call_api = ApiClient.call_api

    def call_api(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        call = _k8s_call(method, url)
        trace.at(call, "before")
        response = real_call_api(self, method, url, *args, **kwargs)
        trace.at(call, "after")
        return response

    def before(model: Any, **_: Any) -> None:
        trace.at(f"dynamodb:{model.name}", "before")

    def after(model: Any, **_: Any) -> None:
        trace.at(f"dynamodb:{model.name}", "after")

    monkeypatch.setattr(ApiClient, "call_api", call_api)
    world.dynamodb.meta.events.register("before-call.*.*", before)
    world.dynamodb.meta.events.register("after-call.*.*", after)
    launcher = KubernetesLauncher(table_name=world.table, bus_name="bus", session=Session())
    ended: DispatchOutcome | BaseException
    try:
        ended = Dispatcher(world.store(), {"kubernetes": launcher}).handle_request(event)
    except (Killed, Exception) as exc:
        ended = exc
    finally:
        world.dynamodb.meta.events.unregister("before-call.*.*", before)
        world.dynamodb.meta.events.unregister("after-call.*.*", after)
        monkeypatch.setattr(ApiClient, "call_api", real_call_api)
    assert trace.fired == faults, f"faults never reached; the calls were {trace.calls}"
    return ended


def new_request() -> ParsedEvent:
    key = f"k8s-faults-{uuid.uuid4().hex}"
    detail = {"flow": "etl", "idempotency_key": key, "run_config": {"type": "KubernetesRun"}}
    return parse_event(envelope("Flow Run Requested", detail, event_id=str(uuid.uuid4())))


def run_id_of(event: ParsedEvent) -> str:
    key = event.detail.idempotency_key
    assert key is not None
    return run_id_for(key)


def settle(world: World, event: ParsedEvent, monkeypatch: Any) -> Any:
    """Clean redeliveries (after the dead dispatcher's lease) until one ends with an outcome."""
    ended: Any = None
    for _ in range(MAX_REDELIVERIES):
        run = world.store().runs.get(run_id_of(event))
        until = world.clock.now + LAUNCH_LEASE
        if run is not None and run.retry_at is not None:
            until = max(until, run.retry_at)
        world.clock.now = until + timedelta(seconds=1)
        ended = deliver(world, event, [], monkeypatch)
        if not isinstance(ended, RetryLater):
            break
    return ended


SCENARIOS: list[list[Fault]] = [
    [Fault("k8s:POST jobs", "before")],
    [Fault("k8s:POST jobs", "after")],
    [Fault("dynamodb:PutItem", "after")],  # the run created, its launch claimed, nothing created
    [Fault("dynamodb:TransactWriteItems", "before")],  # the Job created, Submitted not recorded
]
Figures = dict[str, int]


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    counts: Figures = {"cases": 0, "lost": 0, "double_jobs": 0, "not_recorded": 0}
    yield counts
    report_figures(
        request.config,
        "Kubernetes dispatch killed at each call, then redelivered",
        [
            f"{counts['cases']} cases: {counts['lost']} runs lost or stuck, "
            f"{counts['double_jobs']} attempts with more than one Job, "
            f"{counts['not_recorded']} Jobs the run does not record",
        ],
    )


def examine(world: World, event: ParsedEvent, figures: Figures) -> None:
    figures["cases"] += 1
    run = world.store().runs.get(run_id_of(event))
    jobs = world.jobs_of(run_id_of(event))
    if run is None or run.state is not RunState.SUBMITTED:
        figures["lost"] += 1
    if len(jobs) > 1:
        figures["double_jobs"] += 1
    recorded = (run.infrastructure.get("uid") if run else None) if jobs else None
    if not jobs or recorded != jobs[0]["metadata"]["uid"]:
        figures["not_recorded"] += 1
    assert run is not None
    assert run.state is RunState.SUBMITTED, run.message
    assert len(jobs) == 1
    assert recorded == jobs[0]["metadata"]["uid"]


@pytest.mark.parametrize("faults", SCENARIOS, ids=lambda faults: "+".join(f.label for f in faults))
def test_killed_at_a_call_then_redelivered(
    world: World, figures: Figures, faults: list[Fault], monkeypatch: pytest.MonkeyPatch
) -> None:
    event = new_request()
    ended = deliver(world, event, faults, monkeypatch)
    assert isinstance(ended, Killed)
    settle(world, event, monkeypatch)
    examine(world, event, figures)


@pytest.mark.parametrize("phase", ["before", "after"])
def test_killed_again_while_looking_the_job_up(
    world: World, figures: Figures, phase: Phase, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = new_request()
    assert isinstance(deliver(world, event, [Fault("k8s:POST jobs", "after")], monkeypatch), Killed)
    world.clock.now += LAUNCH_LEASE + timedelta(seconds=1)
    again = deliver(world, event, [Fault("k8s:GET job", phase)], monkeypatch)
    assert isinstance(again, Killed)
    settle(world, event, monkeypatch)
    examine(world, event, figures)


def test_a_create_left_unanswered_is_found_by_the_next_delivery(
    world: World, figures: Figures, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = new_request()
    world.api.drop_after("POST", r"/jobs$")
    first = deliver(world, event, [], monkeypatch)
    assert isinstance(first, RetryLater | DispatchOutcome), first
    settle(world, event, monkeypatch)
    examine(world, event, figures)


def test_figures(figures: Figures) -> None:
    """Runs last in the module: nothing lost, nothing launched twice, everything recorded."""
    assert figures["cases"] >= 7
    assert figures == {
        "cases": figures["cases"],
        "lost": 0,
        "double_jobs": 0,
        "not_recorded": 0,
    }
