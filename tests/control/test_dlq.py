"""Dead-letter tooling (flowrelay.control.dead_letters, ``flowrelay dlq``) against moto over HTTP.

Listing, run identification, redrive and the command use queues made in the session's moto
server (the command finds them through a CloudFormation stack's outputs). The end-to-end test
runs ``flowrelay dev up`` in its own process: moto keeps its state per process, and a second
dev stack in this one would collide with test_devstack.py's (same bus name).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowrelay.aws.clients import REAL_AWS_SETTINGS
from flowrelay.control.dead_letters import (
    DLQ_OUTPUTS,
    NO_REASON,
    WORK_QUEUE_OUTPUTS,
    DeadLetterQueues,
    list_dead_letters,
    parse_body,
    redrive,
)
from flowrelay.control.store import Store
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.runs import run_id_for
from flowrelay.core.storage import Module
from flowrelay.launchers.ecs.names import GROUP_PREFIX
from flowrelay.launchers.kinds import event_readers
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow
from tests.support.cli import invoke, one_error_line

ROOT = Path(__file__).resolve().parents[2]
FLOWRELAY = str(Path(sys.executable).parent / "flowrelay")


def envelope(
    detail_type: str,
    detail: dict[str, Any],
    *,
    source: str = "flowrelay",
    event_id: str | None = None,
) -> str:
    """An EventBridge event as EventBridge delivers it to SQS."""
    return json.dumps(
        {
            "version": "0",
            "id": event_id or str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        }
    )


def state_changed(run_id: str) -> str:
    return envelope(
        "Flow Run State Changed",
        {"flow_run_id": run_id, "state": "Running", "source": "runner"},
    )


def ecs_change(run_id: str) -> str:
    return envelope(
        "ECS Task State Change",
        {
            "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/flows/abc",
            "lastStatus": "STOPPED",
            "group": f"{GROUP_PREFIX}{run_id}",
            "version": 3,
        },
        source="aws.ecs",
    )


def visible(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def drain(sqs: Any, url: str) -> list[str]:
    """Every body in a queue, consumed."""
    bodies: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


# --- queues in the session's moto -----------------------------------------------------------


@dataclass
class Queues:
    sqs: Any
    queues: DeadLetterQueues
    outputs: dict[str, str]

    def put(self, dlq: str, body: str) -> str:
        sent = self.sqs.send_message(QueueUrl=self.queues.dead_letter[dlq], MessageBody=body)
        return str(sent["MessageId"])


@pytest.fixture
def queues(aws_env: str) -> Iterator[Queues]:
    """The seven queues of a stack, named as its outputs name them."""
    sqs = boto3.client("sqs")
    prefix = f"dlq-test-{uuid.uuid4().hex[:8]}"
    outputs = {
        output: sqs.create_queue(QueueName=f"{prefix}-{output}")["QueueUrl"]
        for output in [*DLQ_OUTPUTS.values(), *WORK_QUEUE_OUTPUTS.values()]
    }
    try:
        yield Queues(sqs, DeadLetterQueues.from_outputs(outputs, event_readers()), outputs)
    finally:
        for url in outputs.values():
            sqs.delete_queue(QueueUrl=url)


def test_the_queues_come_from_the_stack_outputs() -> None:
    with pytest.raises(ValueError, match="no DeliveryDLQUrl output: is it a flowrelay stack"):
        DeadLetterQueues.from_outputs(
            dict.fromkeys([*DLQ_OUTPUTS.values(), *WORK_QUEUE_OUTPUTS.values()], "u")
            | {"DeliveryDLQUrl": ""}
        )


def test_listing_does_not_consume(queues: Queues) -> None:
    # More than one receive's worth (10), so the listing has to loop.
    sent = {queues.put("dispatch", state_changed(f"run-{index}")) for index in range(13)}
    sent.add(queues.put("state", state_changed("run-state")))

    first = list_dead_letters(queues.sqs, queues.queues)
    second = list_dead_letters(queues.sqs, queues.queues)

    assert {letter.message_id for letter in first} == sent
    assert len(first) == len(sent)  # each message once
    assert {letter.message_id for letter in second} == sent
    assert visible(queues.sqs, queues.queues.dead_letter["dispatch"]) == 13
    assert visible(queues.sqs, queues.queues.dead_letter["state"]) == 1
    state_only = list_dead_letters(queues.sqs, queues.queues, only="state")
    assert [letter.run_id for letter in state_only] == ["run-state"]

    letter = next(letter for letter in second if letter.queue == "state")
    assert letter.receive_count == 2  # this listing and the one before
    assert letter.sent_at is not None
    assert abs((datetime.now(UTC) - letter.sent_at).total_seconds()) < 60
    assert letter.redrive_to == "state"
    shown = letter.model_dump(mode="json")
    assert "receipt_handle" not in shown
    assert shown["detail_type"] == "Flow Run State Changed"


def test_each_message_is_tied_to_its_run(queues: Queues, run_table: str) -> None:
    store = Store(boto3.client("dynamodb"), run_table)
    store.runs.create("failed-run", "etl")
    store.runs.transition(
        "failed-run", RunState.FAILED, Source.DISPATCHER, message="rejected request: bad"
    )
    event_id = str(uuid.uuid4())
    ids = {
        "flow_run_id": queues.put("state", state_changed("failed-run")),
        "key": queues.put(
            "dispatch",
            envelope("Flow Run Requested", {"flow": "etl", "idempotency_key": "nightly-1"}),
        ),
        "neither": queues.put(
            "dispatch", envelope("Flow Run Requested", {"flow": "etl"}, event_id=event_id)
        ),
        "ecs": queues.put("delivery", ecs_change("ecs-run")),
        "garbage": queues.put("dispatch", "this is not an event"),
        "array": queues.put("cancel", "[1, 2]"),
        "no run": queues.put("cancel", envelope("Flow Run Cancel Requested", {"reason": "x"})),
        "not a name": queues.put(
            "cancel", envelope("Flow Run Cancel Requested", {"flow_run_id": {"a": 1}})
        ),
    }

    letters = {
        letter.message_id: letter
        for letter in list_dead_letters(queues.sqs, queues.queues, store=store)
    }

    run_ids = {shape: letters[message_id].run_id for shape, message_id in ids.items()}
    assert run_ids == {
        "flow_run_id": "failed-run",
        "key": run_id_for("nightly-1"),
        "neither": run_id_for(f"event:{event_id}"),
        "ecs": "ecs-run",
        "garbage": None,
        "array": None,
        "no run": None,
        "not a name": None,
    }
    failed = letters[ids["flow_run_id"]]
    assert (failed.run_state, failed.run_message) == (RunState.FAILED, "rejected request: bad")
    assert failed.flow == "etl"  # from the run: a state event does not name its flow
    assert letters[ids["key"]].flow == "etl"
    assert letters[ids["key"]].run_state is None  # no such run (yet)
    assert letters[ids["garbage"]].detail_type is None
    assert letters[ids["ecs"]].redrive_to == "state"
    assert letters[ids["ecs"]].delivery_error is None


def test_a_delivery_dead_letter_says_why_eventbridge_gave_up(queues: Queues) -> None:
    """EventBridge adds its reason as message attributes; redrive sends the body alone."""
    body = envelope("Flow Run Requested", {"flow": "etl", "flow_run_id": "undelivered"})
    text = {"DataType": "String"}
    queues.sqs.send_message(
        QueueUrl=queues.queues.dead_letter["delivery"],
        MessageBody=body,
        MessageAttributes={
            "ERROR_CODE": {**text, "StringValue": "SQS_PERMISSION_DENIED"},
            "ERROR_MESSAGE": {**text, "StringValue": "not allowed to send"},
            "RULE_ARN": {**text, "StringValue": "arn:aws:events:us-east-1:1:rule/x"},
        },
    )

    (letter,) = list_dead_letters(queues.sqs, queues.queues)
    assert letter.delivery_error == "SQS_PERMISSION_DENIED: not allowed to send"
    assert (letter.run_id, letter.redrive_to) == ("undelivered", "dispatch")
    (result,) = redrive(queues.sqs, queues.queues)
    assert (result.status, result.to_queue) == ("moved", "dispatch")
    (sent,) = queues.sqs.receive_message(
        QueueUrl=queues.queues.work["dispatch"], MessageAttributeNames=["All"]
    )["Messages"]
    assert sent["Body"] == body
    assert "MessageAttributes" not in sent
    for body in (
        "",
        "null",
        "{",
        '{"detail": "x"}',
        '{"detail-type": 5, "detail": {}}',
        "[" * 5000,
    ):
        assert parse_body(body, event_readers()).run_id is None


def test_redrive_sends_each_message_to_its_source_queue(queues: Queues) -> None:
    requested = envelope("Flow Run Requested", {"flow": "etl"})
    state = state_changed("r-2")
    # A work queue's DLQ goes back to that queue whatever the body (its consumer decides).
    queues.put("dispatch", "raw dispatch body")
    queues.put("state", state)
    queues.put("cancel", envelope("Flow Run Cancel Requested", {"flow_run_id": "r-1"}))
    queues.put("delivery", requested)
    queues.put("delivery", ecs_change("r-3"))
    queues.put("delivery", state_changed("r-4"))
    queues.put("delivery", envelope("Task Run State Changed", {"flow_run_id": "r-5"}))
    queues.put("delivery", envelope("Flow Run Cancel Requested", {"flow_run_id": "r-6"}))
    stray = queues.put("delivery", "garbage that came from nowhere")

    results = redrive(queues.sqs, queues.queues)

    moved = [result for result in results if result.status == "moved"]
    assert len(moved) == 8
    assert [(r.message_id, r.status) for r in results if r.status != "moved"] == [
        (stray, "skipped")
    ]
    work = queues.queues.work
    assert sorted(drain(queues.sqs, work["dispatch"])) == sorted(["raw dispatch body", requested])
    state_bodies = drain(queues.sqs, work["state"])
    assert {parse_body(body, event_readers()).run_id for body in state_bodies} == {
        "r-2",
        "r-3",
        "r-4",
        "r-5",
    }
    assert state in state_bodies  # unchanged
    cancel_bodies = drain(queues.sqs, work["cancel"])
    assert {parse_body(body, event_readers()).run_id for body in cancel_bodies} == {"r-1", "r-6"}
    for name in ("dispatch", "state", "cancel"):
        assert list_dead_letters(queues.sqs, queues.queues, only=name) == []
    (left,) = list_dead_letters(queues.sqs, queues.queues)
    assert (left.message_id, left.queue, left.redrive_to) == (stray, "delivery", None)


def test_redrive_by_id_reports_ids_it_cannot_find(queues: Queues) -> None:
    wanted = queues.put("cancel", envelope("Flow Run Cancel Requested", {"flow_run_id": "a"}))
    kept = queues.put("cancel", envelope("Flow Run Cancel Requested", {"flow_run_id": "b"}))

    results = redrive(queues.sqs, queues.queues, message_ids=[wanted, "no-such-id", wanted])

    assert [(r.message_id, r.status, r.to_queue, r.run_id) for r in results] == [
        (wanted, "moved", "cancel", "a"),
        ("no-such-id", "not_found", None, None),
    ]
    assert [letter.message_id for letter in list_dead_letters(queues.sqs, queues.queues)] == [kept]
    # A DLQ other than the message's finds nothing.
    (result,) = redrive(queues.sqs, queues.queues, message_ids=[kept], only="dispatch")
    assert result.status == "not_found"
    assert visible(queues.sqs, queues.queues.dead_letter["cancel"]) == 1


# --- the dev stack, in its own process --------------------------------------------------------


@dataclass
class DevUp:
    outputs: dict[str, str]
    client: Callable[[str], Any]
    log: Path

    def log_tail(self) -> str:
        """The stack's last lines, for a failing assertion."""
        return "\n".join(self.log.read_text().splitlines()[-15:])

    @property
    def queues(self) -> DeadLetterQueues:
        return DeadLetterQueues.from_outputs(self.outputs, event_readers())


@pytest.fixture(scope="module")
def dev_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevUp]:
    """`flowrelay dev up` (its DevStack polls every 0.2 s; the monitor runs every second)."""
    log = tmp_path_factory.mktemp("dev-up") / "stderr.log"
    env = {k: v for k, v in os.environ.items() if k not in REAL_AWS_SETTINGS}
    env.pop("AWS_ENDPOINT_URL", None)
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [FLOWRELAY, "dev", "up", "--schedule-seconds", "1"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert process.stdout is not None
    exported: dict[str, str] = {}
    try:
        for line in process.stdout:  # two lines; the stack logs to stderr
            if line.startswith("export "):
                for pair in shlex.split(line.removeprefix("export ")):
                    name, _, value = pair.partition("=")
                    exported[name] = value
                break
        assert "AWS_ENDPOINT_URL" in exported, log.read_text()[-2000:]
        session = boto3.session.Session(
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            region_name=exported["AWS_DEFAULT_REGION"],
        )
        make: Any = session.client

        def client(service: str) -> Any:
            return make(service, endpoint_url=exported["AWS_ENDPOINT_URL"])

        (stack,) = client("cloudformation").describe_stacks(StackName=exported["FLOWRELAY_STACK"])[
            "Stacks"
        ]
        outputs = {output["OutputKey"]: output["OutputValue"] for output in stack["Outputs"]}
        yield DevUp(outputs=outputs, client=client, log=log)
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, log.read_text()[-2000:]


def tasks_of(dev: DevUp, run_id: str) -> list[str]:
    ecs = dev.client("ecs")
    cluster = dev.outputs["ClusterName"]
    arns = [
        arn
        for status in ("RUNNING", "STOPPED")
        for arn in ecs.list_tasks(cluster=cluster, desiredStatus=status)["taskArns"]
    ]
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
    return sorted({t["taskArn"] for t in tasks if t.get("group") == f"flowrelay:{run_id}"})


def wait_idle(dev: DevUp, timeout: float) -> None:
    """Until the work queues are empty (nothing visible or in flight) and no task runs."""
    sqs = dev.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = bool(tasks_running(dev))
        for name in WORK_QUEUE_OUTPUTS.values():
            attributes = sqs.get_queue_attributes(
                QueueUrl=dev.outputs[name],
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]
            busy = busy or any(int(value) for value in attributes.values())
        if not busy:
            return
        time.sleep(0.2)
    raise AssertionError(f"the dev stack is still busy after {timeout}s\n{dev.log_tail()}")


def tasks_running(dev: DevUp) -> list[str]:
    arns: list[str] = dev.client("ecs").list_tasks(
        cluster=dev.outputs["ClusterName"], desiredStatus="RUNNING"
    )["taskArns"]
    return arns


def test_redriving_one_request_twice_launches_one_task(dev_up: DevUp) -> None:
    store = Store(dev_up.client("dynamodb"), dev_up.outputs["TableName"])
    store.flows.register(
        registration_for(
            load_flow(Module("flowrelay.sdk.examples.hello:flow")),
            storage=Module("flowrelay.sdk.examples.hello:flow"),
        )
    )  # the target `dev` up made takes it
    sqs = dev_up.client("sqs")
    event_id = str(uuid.uuid4())
    body = envelope(
        "Flow Run Requested",
        {"flow": "hello", "parameters": {"name": "dlq"}, "requested_by": "test"},
        event_id=event_id,
    )
    dlq = dev_up.queues.dead_letter["dispatch"]
    sqs.send_message(QueueUrl=dlq, MessageBody=body)
    sqs.send_message(QueueUrl=dlq, MessageBody=body)
    run_id = run_id_for(f"event:{event_id}")
    listed = list_dead_letters(sqs, dev_up.queues, store=store)
    assert [(letter.run_id, letter.flow) for letter in listed] == [(run_id, "hello")] * 2

    results = redrive(sqs, dev_up.queues)

    assert [(r.status, r.to_queue) for r in results] == [("moved", "dispatch")] * 2
    assert list_dead_letters(sqs, dev_up.queues) == []
    deadline = time.monotonic() + 30
    while (run := store.runs.get(run_id)) is None or not run.state.is_final:
        assert time.monotonic() < deadline, f"{run}\n{dev_up.log_tail()}"
        time.sleep(0.2)
    wait_idle(dev_up, 20)
    assert run.state is RunState.SUCCESS, run.message
    assert len(tasks_of(dev_up, run_id)) == 1
    assert [str(entry.state) for entry in store.runs.history(run_id)].count("Submitted") == 1
    assert list_dead_letters(sqs, dev_up.queues) == []


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def cli_stack(queues: Queues, run_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A CloudFormation stack whose outputs name the queues and the table, found by the CLI
    through FLOWRELAY_STACK alone (as `flowrelay dev up` exports it)."""
    cloudformation = boto3.client("cloudformation")
    name = f"flowrelay-dlq-{uuid.uuid4().hex[:8]}"
    outputs = {**queues.outputs, "TableName": run_table, "BusName": "unused"}
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    monkeypatch.setenv("FLOWRELAY_STACK", name)
    monkeypatch.delenv("FLOWRELAY_TABLE_NAME", raising=False)
    monkeypatch.delenv("FLOWRELAY_BUS_NAME", raising=False)
    yield name
    cloudformation.delete_stack(StackName=name)


def test_cli_lists_and_redrives(cli_stack: str, queues: Queues, run_table: str) -> None:
    store = Store(boto3.client("dynamodb"), run_table)
    run_id = f"cli-{uuid.uuid4().hex[:8]}"
    store.runs.create(run_id, "etl")
    store.runs.transition(run_id, RunState.FAILED, Source.DISPATCHER, message="rejected: why not")
    body = envelope("Flow Run Cancel Requested", {"flow_run_id": run_id})
    message_id = queues.put("cancel", body)

    listed = invoke("dlq", "ls", "--json")
    assert listed.exit_code == 0, listed.stderr
    (letter,) = json.loads(listed.stdout)
    assert letter["message_id"] == message_id
    assert letter["queue"] == "cancel"
    assert (letter["run_id"], letter["flow"]) == (run_id, "etl")
    assert (letter["run_state"], letter["run_message"]) == ("Failed", "rejected: why not")
    assert letter["body"] == body
    assert "receipt_handle" not in letter
    table = invoke("dlq", "ls", "--queue", "cancel")
    assert table.exit_code == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split()[:3] == ["queue", "message", "id"]
    assert row.split()[:3] == ["cancel", message_id, run_id]
    assert "rejected: why not" in row
    assert invoke("dlq", "ls", "--queue", "dispatch", "--json").stdout.strip() == "[]"
    assert invoke("--stack", cli_stack, "dlq", "ls", "--json").exit_code == 0

    refused = one_error_line(invoke("dlq", "redrive"), 2)
    assert "MESSAGE_ID" in refused
    assert "--all" in refused
    assert one_error_line(invoke("dlq", "redrive", "x", "--all"), 2)
    missing = invoke("dlq", "redrive", "no-such-id")
    assert missing.exit_code == 1
    assert "error: not found: no-such-id" in missing.stderr

    moved = invoke("dlq", "redrive", message_id)
    assert moved.exit_code == 0, moved.stderr
    assert f"moved {message_id}: cancel DLQ -> cancel queue (run {run_id})" in moved.stdout
    assert drain(queues.sqs, queues.queues.work["cancel"]) == [body]
    assert invoke("dlq", "ls", "--json").stdout.strip() == "[]"
    emptied = invoke("dlq", "redrive", "--all", "--json")
    assert (emptied.exit_code, emptied.stdout.strip()) == (0, "[]")


def test_cli_needs_a_stack_for_the_queues(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The exported table and bus names are not enough: the queues are only in the outputs.
    monkeypatch.delenv("FLOWRELAY_STACK", raising=False)
    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", "t")
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", "b")
    assert one_error_line(invoke("dlq", "ls"), 2).startswith(
        "this command reads the stack's outputs"
    )
    missing = one_error_line(invoke("--stack", "no-such-stack", "dlq", "redrive", "--all"), 2)
    assert missing.startswith("cannot read stack 'no-such-stack'")


# --- why: never empty -------------------------------------------------------------------------


def test_a_function_dead_letters_its_last_failure_with_the_reason(
    queues: Queues, run_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a message's last delivery the function puts it in its DLQ itself, with why as message
    attributes, and reports it done (so SQS deletes it from the work queue); the listing's
    "why" is that reason."""
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from flowrelay.handlers import wiring
    from flowrelay.handlers.batches import noting_dead_letters

    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", run_table)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", "unused")
    monkeypatch.setenv("FLOWRELAY_STATE_DEAD_LETTER_QUEUE_URL", queues.queues.dead_letter["state"])
    wiring.reset()
    body = state_changed("never-created")

    def broken(record: SQSRecord) -> dict[str, Any]:
        raise RuntimeError("no flow run 'never-created'")

    handle = noting_dead_letters("state", broken)
    record = SQSRecord(
        {"messageId": "m-4", "body": body, "attributes": {"ApproximateReceiveCount": "4"}}
    )
    with pytest.raises(RuntimeError):
        handle(record)  # not the last delivery: SQS delivers it again
    assert visible(queues.sqs, queues.queues.dead_letter["state"]) == 0
    last = SQSRecord(
        {"messageId": "m-5", "body": body, "attributes": {"ApproximateReceiveCount": "5"}}
    )
    assert handle(last) == {
        "dead_lettered": "state",
        "reason": "RuntimeError: no flow run 'never-created'",
    }
    (letter,) = list_dead_letters(queues.sqs, queues.queues, only="state")
    assert letter.body == body
    assert letter.error == "RuntimeError: no flow run 'never-created'"
    assert letter.why == letter.error
    wiring.reset()


def test_why_is_never_empty(queues: Queues, run_table: str) -> None:
    """A message SQS moved by itself (its function crashed or timed out on its last try), for a
    run that does not exist: "why" says no reason was recorded, and where to look."""
    queues.put("cancel", envelope("Flow Run Cancel Requested", {"flow_run_id": "no-such-run"}))
    queues.put("dispatch", "garbage that came from nowhere")
    store = Store(boto3.client("dynamodb"), run_table)
    letters = list_dead_letters(queues.sqs, queues.queues, store=store)
    assert [letter.why for letter in letters] == [NO_REASON, NO_REASON]
    assert all(json.loads(letter.model_dump_json())["why"] for letter in letters)
