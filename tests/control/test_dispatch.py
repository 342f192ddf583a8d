"""Dispatch against moto over HTTP: the real store, the real ECS launcher, the real handler.

The same request delivered many times launches one task; requests the user must fix fail their
run with the reason; runs with no fitting target wait in Pending and launch once one appears;
a bad message in a batch never blocks the rest.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flowrelay.control.dispatch import Dispatcher, RequestConflict, RetryLater
from flowrelay.control.monitor import requests_for_waiting_runs
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunRequested, parse_event
from flowrelay.core.lifecycle import RunState
from flowrelay.core.routing import Target
from flowrelay.core.runs import run_id_for
from flowrelay.launchers.ecs import EcsLauncher
from tests.support.lambda_events import Context, sqs_batch

ROOT = Path(__file__).resolve().parents[2]
BUS = "flowrelay"


@pytest.fixture
def target(cluster: str, network: dict[str, Any]) -> Target:
    return Target(
        name="fargate",
        kind="ecs",
        labels=[],
        settings={"cluster": cluster, "image": f"example/flows:{uuid.uuid4().hex[:6]}", **network},
    )


@pytest.fixture
def dispatcher(store: Store, ecs: Any) -> Dispatcher:
    launcher = EcsLauncher(ecs, table_name=store.table_name, bus_name=BUS)
    return Dispatcher(store, {"ecs": launcher})


def request(**detail: Any) -> Any:
    event_id = detail.pop("event_id", str(uuid.uuid4()))
    return parse_event(envelope(event_id, {"flow": "etl", **detail}))


def envelope(event_id: str, detail: Any, detail_type: str = "Flow Run Requested") -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": "flowrelay",
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def tasks_of(ecs: Any, cluster: str) -> list[str]:
    arns: list[str] = ecs.list_tasks(cluster=cluster)["taskArns"]
    return arns


def test_the_same_request_delivered_five_times_launches_one_task(
    dispatcher: Dispatcher, store: Store, target: Target, ecs: Any, cluster: str
) -> None:
    store.targets.put(target)
    event = request(idempotency_key="nightly-2026-11-23", parameters={"rows": 3}, event_id="evt-1")
    outcomes = [dispatcher.handle_request(event) for _ in range(5)]
    assert [o.launched for o in outcomes] == [True, False, False, False, False]
    assert len(tasks_of(ecs, cluster)) == 1
    run = store.runs.get(run_id_for("nightly-2026-11-23"))
    assert run is not None
    assert run.state is RunState.SUBMITTED
    assert run.infrastructure["task_arn"] == tasks_of(ecs, cluster)[0]
    assert run.target == "fargate"


def test_a_new_run_is_launched_in_five_calls_and_its_request_again_costs_one_read(
    dispatcher: Dispatcher, store: Store, target: Target, ecs: Any
) -> None:
    """The budget of issue 16: a new run's dispatch makes five AWS calls (targets cached, the
    task definition registered already), and a request that changes nothing one read."""
    store.targets.put(target)
    dispatcher.handle_request(request())  # a warm container: targets and task definition known
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    for client in (store.client, ecs):
        client.meta.events.register("before-call", count)
    try:
        event = request(flow_run_id=f"five-{uuid.uuid4().hex[:8]}")
        assert dispatcher.handle_request(event).launched
        first, calls[:] = list(calls), []
        assert not dispatcher.handle_request(event).launched
        again = list(calls)
    finally:
        for client in (store.client, ecs):
            client.meta.events.unregister("before-call", count)
    assert first == ["BatchGetItem", "Query", "PutItem", "RunTask", "TransactWriteItems"]
    assert again == ["BatchGetItem"]


def test_the_same_event_redelivered_without_keys_is_one_run(
    dispatcher: Dispatcher, store: Store, target: Target, ecs: Any, cluster: str
) -> None:
    store.targets.put(target)
    first = dispatcher.handle_request(request(event_id="evt-same"))
    again = dispatcher.handle_request(request(event_id="evt-same"))
    assert first.run_id == again.run_id
    assert len(tasks_of(ecs, cluster)) == 1


def test_concurrent_deliveries_launch_once(
    dispatcher: Dispatcher, store: Store, target: Target, ecs: Any, cluster: str
) -> None:
    store.targets.put(target)
    event = request(flow_run_id="concurrent-1")
    barrier = threading.Barrier(4)
    outcomes: list[Any] = []

    def deliver() -> None:
        barrier.wait()
        try:
            outcomes.append(dispatcher.handle_request(event))
        except RetryLater as exc:  # another delivery holds the launch claim
            outcomes.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(tasks_of(ecs, cluster)) == 1
    assert store.runs.get("concurrent-1").state is RunState.SUBMITTED  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        ({"flow": "nope"}, "flow 'nope' is not registered"),
        ({"version": 9}, "flow 'etl' version 9 is not registered"),
        (
            {"parameters": {"rowz": 1}},
            "Flow 'etl' has no parameter 'rowz'; its parameters are: factor, rows",
        ),
    ],
)
def test_requests_the_user_must_fix_fail_the_run_with_the_reason(
    dispatcher: Dispatcher,
    store: Store,
    target: Target,
    ecs: Any,
    cluster: str,
    detail: dict[str, Any],
    message: str,
) -> None:
    store.targets.put(target)
    outcome = dispatcher.handle_request(request(**detail))
    assert outcome.state is RunState.FAILED
    run = store.runs.get(outcome.run_id)
    assert run is not None
    assert run.state is RunState.FAILED
    assert run.message == message
    assert tasks_of(ecs, cluster) == []


def test_ecs_rejecting_the_launch_fails_the_run_with_awss_reason(
    dispatcher: Dispatcher, store: Store, network: dict[str, Any]
) -> None:
    store.targets.put(
        Target(
            name="gone",
            kind="ecs",
            settings={"cluster": "no-such-cluster", "image": "x", **network},
        )
    )
    outcome = dispatcher.handle_request(request())
    run = store.runs.get(outcome.run_id)
    assert run is not None
    assert run.state is RunState.FAILED
    assert run.message is not None
    assert run.message.startswith("launch on 'gone' failed: ")


def test_no_target_waits_in_pending_then_launches_when_one_appears(
    dispatcher: Dispatcher, store: Store, target: Target, ecs: Any, cluster: str
) -> None:
    outcome = dispatcher.handle_request(request(labels=["gpu"]))
    run = store.runs.get(outcome.run_id)
    assert run is not None
    assert run.state is RunState.PENDING
    assert run.message == "waiting for a launch target: there are no targets"
    store.targets.put(target)  # no gpu label yet
    assert requests_for_waiting_runs(store) == []
    dispatcher.handle_request(request(flow_run_id=outcome.run_id, labels=["gpu"]))
    assert store.runs.get(outcome.run_id).message == (  # type: ignore[union-attr]
        "waiting for a launch target: 'fargate': missing labels: gpu"
    )
    store.targets.put(target.model_copy(update={"labels": ["gpu"]}))
    ((again, _),) = requests_for_waiting_runs(store)
    assert again.flow_run_id == outcome.run_id
    dispatcher.handle_request(
        parse_event(envelope("monitor-1", json.loads(again.model_dump_json())))
    )
    assert store.runs.get(outcome.run_id).state is RunState.SUBMITTED  # type: ignore[union-attr]
    assert len(tasks_of(ecs, cluster)) == 1


# --- the Lambda handler, wired as the template wires it ---------------------------------------


def load_handler(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(
        f"handler_{name}", ROOT / "functions" / name / "app.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


@pytest.fixture
def handler(store: Store, target: Target, monkeypatch: pytest.MonkeyPatch) -> Any:
    from flowrelay.handlers import wiring

    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", store.table_name)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", BUS)
    wiring.reset()
    store.targets.put(target)
    yield load_handler("dispatch")
    wiring.reset()


def test_bad_messages_never_block_the_rest_of_the_batch(
    handler: Any, store: Store, ecs: Any, cluster: str
) -> None:
    good = [
        json.dumps(envelope(f"good-{n}", {"flow": "etl", "flow_run_id": f"good-{n}"}))
        for n in range(3)
    ]
    bad = [
        "not json at all",
        json.dumps(envelope("bad-1", {"paramters": {}})),  # no flow, a misspelt field
        json.dumps(
            envelope("bad-2", {"flow": "etl", "flow_run_id": "named-bad", "version": "latest"})
        ),
    ]
    response = handler(sqs_batch(good[0], bad[0], good[1], bad[1], good[2], bad[2]), Context())
    assert sorted(item["itemIdentifier"] for item in response["batchItemFailures"]) == [
        "m-1",
        "m-3",
    ]
    for n in range(3):
        assert store.runs.get(f"good-{n}").state is RunState.SUBMITTED  # type: ignore[union-attr]
    named = store.runs.get("named-bad")
    assert named is not None
    assert named.state is RunState.FAILED
    assert named.message is not None
    assert named.message.startswith("rejected request: Flow Run Requested: detail.version:")
    assert len(tasks_of(ecs, cluster)) == 3


def test_a_batch_of_ten_launches_every_run(
    handler: Any, store: Store, ecs: Any, cluster: str
) -> None:
    bodies = [
        json.dumps(envelope(f"ten-{n}", {"flow": "etl", "flow_run_id": f"ten-{n}"}))
        for n in range(10)
    ]
    assert handler(sqs_batch(*bodies), Context()) == {"batchItemFailures": []}
    assert {store.runs.get(f"ten-{n}").state for n in range(10)} == {RunState.SUBMITTED}  # type: ignore[union-attr]
    assert len(tasks_of(ecs, cluster)) == 10


def test_flow_run_requested_entries_are_what_dispatch_reads(store: Store) -> None:
    entry = FlowRunRequested(flow="etl", parameters={"rows": 1}).entry(BUS)
    parsed = parse_event(envelope("e", json.loads(entry["Detail"])))
    assert parsed.detail.flow == "etl"


# --- a reused key asking for something else ---------------------------------------------------

TaskList = Callable[[], list[str]]


@pytest.fixture
def tasks(ecs: Any, cluster: str) -> TaskList:
    """The tasks in the test's cluster, when called."""
    return lambda: tasks_of(ecs, cluster)


@pytest.mark.parametrize(
    ("again", "differs"),
    [
        ({"parameters": {"rows": 4}}, "parameters: rows is 4 here, 3 on the run"),
        ({"parameters": {}}, "parameters: rows is on the run, not given here"),
        ({"parameters": {"rows": 3, "x": 1}}, "parameters: x is given here, not on the run"),
        ({"parameters": {"rows": 3}, "labels": ["gpu"]}, "labels: ['gpu'] here, [] on the run"),
        ({"parameters": {"rows": 3}, "version": 7}, "version: 7 here, 1 on the run"),
        ({"parameters": {"rows": 3}, "timeout_seconds": 60}, "timeout_seconds: 60 here, none"),
        (
            {"parameters": {"rows": 3}, "run_config": {"type": "ECSRun", "cpu": 1024}},
            "run_config: not the run config the run was made with",
        ),
        ({"flow": "other", "parameters": {"rows": 3}}, "flow: 'other' here, 'etl' on the run"),
    ],
    ids=["value", "missing", "extra", "labels", "version", "timeout", "run-config", "flow"],
)
def test_a_reused_key_with_other_values_is_refused_naming_the_run_and_what_differs(
    dispatcher: Dispatcher, store: Store, target: Target, tasks: TaskList, again: Any, differs: str
) -> None:
    store.targets.put(target)
    key = f"nightly-{uuid.uuid4().hex[:6]}"
    first = dispatcher.handle_request(request(idempotency_key=key, parameters={"rows": 3}))
    assert first.launched
    with pytest.raises(RequestConflict) as refused:
        dispatcher.handle_request(request(idempotency_key=key, **again))
    message = str(refused.value)
    assert message.startswith(
        f"run {first.run_id} (Submitted) was requested with this idempotency key {key!r} and "
        "other values: "
    )
    assert differs in message
    assert message.endswith("use a new key to run with these")
    # The run is as it was, with its one task.
    run = store.runs.get(first.run_id)
    assert run is not None
    assert run.parameters == {"rows": 3}
    assert run.state is RunState.SUBMITTED
    assert len(tasks()) == 1


def test_a_repeat_of_the_same_request_is_the_same_run(
    dispatcher: Dispatcher, store: Store, target: Target, ecs: Any, cluster: str
) -> None:
    """A new event with the same key and values (a client's retry) is not a conflict, nor is one
    that leaves to the registration what the first also left to it."""
    store.targets.put(target)
    first = dispatcher.handle_request(request(idempotency_key="same", parameters={"rows": 3}))
    again = dispatcher.handle_request(request(idempotency_key="same", parameters={"rows": 3}))
    assert again.run_id == first.run_id
    assert not again.launched
    labelled = dispatcher.handle_request(request(flow_run_id="lab", labels=["b", "a", "a"]))
    assert dispatcher.handle_request(request(flow_run_id="lab", labels=["a", "b"])).run_id == (
        labelled.run_id
    )
    assert store.runs.get("lab").labels == ["a", "b"]  # type: ignore[union-attr]
    assert len(tasks_of(ecs, cluster)) == 1  # "lab" waits for a target with its labels


def test_a_conflicting_request_is_dead_lettered_at_once_with_the_reason(
    handler: Any, store: Store, ecs: Any, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from flowrelay.control.dead_letters import ERROR_ATTRIBUTE

    sqs = boto3.client("sqs")
    dead = sqs.create_queue(QueueName=f"dispatch-dlq-{uuid.uuid4().hex[:6]}")["QueueUrl"]
    monkeypatch.setenv("FLOWRELAY_DISPATCH_DEAD_LETTER_QUEUE_URL", dead)
    first = json.dumps(envelope("e-1", {"flow": "etl", "flow_run_id": "conf", "parameters": {}}))
    other = json.dumps(
        envelope("e-2", {"flow": "etl", "flow_run_id": "conf", "parameters": {"rows": 9}})
    )
    assert handler(sqs_batch(first), Context()) == {"batchItemFailures": []}
    # Its first delivery: no point delivering it four more times.
    assert handler(sqs_batch(other), Context()) == {"batchItemFailures": []}
    received = sqs.receive_message(QueueUrl=dead, MessageAttributeNames=["All"])["Messages"]
    assert [json.loads(message["Body"])["id"] for message in received] == ["e-2"]
    reason = received[0]["MessageAttributes"][ERROR_ATTRIBUTE]["StringValue"]
    assert reason.startswith("RequestConflict: run conf (Submitted) was requested with this ")
    assert "rows is given here, not on the run" in reason
    assert store.runs.get("conf").parameters == {}  # type: ignore[union-attr]
    assert len(tasks_of(ecs, cluster)) == 1


def test_a_run_config_no_launcher_here_fits_fails_the_run_saying_why(
    dispatcher: Dispatcher, store: Store, target: Target
) -> None:
    """Rather than wait in Pending for a target this stack could never launch."""
    store.targets.put(target)
    outcome = dispatcher.handle_request(request(run_config={"type": "KubernetesRun"}))
    assert outcome.state is RunState.FAILED
    assert outcome.message == (
        "this run cannot be launched: a KubernetesRun runs on kubernetes targets, and this stack "
        "launches ecs targets"
    )
