"""template.yaml, translated by aws-sam-translator, created as a stack in moto server (by the
embedded dev stack's own code, flowrelay.devstack.deploy), and events routed through its rules
into its queues."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrelay.core.events import (
    FlowRunCancelRequested,
    FlowRunRequested,
    FlowRunStateChanged,
    parse_event,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.devstack.deploy import create_stack
from flowrelay.devstack.template import function_event_sources, load_template
from flowrelay.launchers.ecs.names import GROUP_PREFIX
from flowrelay.launchers.kinds import event_readers

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

# moto's CloudFormation skips resource types it does not implement (QueuePolicy, Alarm), with a
# warning from the server thread.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation")


@pytest.fixture
def stack(aws_env: str) -> Iterator[dict[str, str]]:
    """A stack made from template.yaml in moto, as the dev stack makes it; yields its outputs."""
    import boto3

    suffix = uuid.uuid4().hex[:8]
    name, bus = f"flowrelay-{suffix}", f"flowrelay-{suffix}"
    cloudformation = boto3.client("cloudformation")
    outputs = create_stack(
        TEMPLATE,
        name,
        s3=boto3.client("s3"),
        cloudformation=cloudformation,
        parameters={"BusName": bus},
        bucket=f"artifacts-{suffix}",
    )
    try:
        yield outputs
    finally:
        cloudformation.delete_stack(StackName=name)


def queue_url(sqs: Any, output_url: str) -> str:
    """moto's outputs name queues by their AWS URL; ask for the endpoint's own."""
    return str(sqs.get_queue_url(QueueName=output_url.rsplit("/", 1)[1])["QueueUrl"])


def receive_all(sqs: Any, url: str, expected: int) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + 5
    while len(bodies) < expected and time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in response.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_the_stack_is_created_with_every_output(stack: dict[str, str]) -> None:
    import boto3

    template = load_template(TEMPLATE)
    # Conditional outputs (DaskSecurityGroupId: only with DaskVpcId) are absent by default.
    assert set(stack) == {
        name for name, output in template["Outputs"].items() if "Condition" not in output
    }
    assert all(value and not value.startswith("<") for value in stack.values()), stack
    assert stack["BusArn"].endswith(f":event-bus/{stack['BusName']}")
    assert stack["ClusterArn"].endswith(f":cluster/{stack['ClusterName']}")

    lambda_ = boto3.client("lambda")
    for source in [s for sources in function_event_sources(template).values() for s in sources]:
        if source.kind != "sqs":
            continue
        function = stack[f"{source.function}FunctionName"]
        (mapping,) = lambda_.list_event_source_mappings(FunctionName=function)[
            "EventSourceMappings"
        ]
        assert mapping["BatchSize"] == source.batch_size
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["EventSourceArn"].endswith(
            queue_url(boto3.client("sqs"), stack[f"{source.queue}Url"]).rsplit("/", 1)[1]
        )

    logs = boto3.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix=stack["LogGroupName"])["logGroups"]
    assert group["retentionInDays"] == 30


def test_events_reach_the_queues_their_rules_name(stack: dict[str, str]) -> None:
    import boto3

    events, sqs = boto3.client("events"), boto3.client("sqs")
    bus = stack["BusName"]
    run_id = uuid.uuid4().hex
    entries = [
        FlowRunRequested(flow="etl", flow_run_id=run_id).entry(bus),
        FlowRunStateChanged(flow_run_id=run_id, state=RunState.RUNNING, source=Source.RUNNER).entry(
            bus
        ),
        FlowRunCancelRequested(flow_run_id=run_id, reason="test").entry(bus),
    ]
    ecs_change = {
        "taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/c/{run_id}",
        "lastStatus": "STOPPED",
        "version": 3,
    }
    # ECS publishes on the default bus; only flowrelay's tasks (by group) are routed.
    for group in (GROUP_PREFIX + run_id, "family:someone-else"):
        entries.append(
            {
                "Source": "aws.ecs",
                "DetailType": "ECS Task State Change",
                "Detail": json.dumps({**ecs_change, "group": group}),
            }
        )
    response = events.put_events(Entries=entries)
    assert response["FailedEntryCount"] == 0

    received = {
        output: receive_all(sqs, queue_url(sqs, stack[output]), expected)
        for output, expected in (
            ("DispatchQueueUrl", 1),
            ("StateQueueUrl", 2),
            ("CancelQueueUrl", 1),
        )
    }
    kinds = {
        output: sorted(type(parse_event(body, event_readers()).detail).__name__ for body in bodies)
        for output, bodies in received.items()
    }
    assert kinds == {
        "DispatchQueueUrl": ["FlowRunRequested"],
        "StateQueueUrl": ["FlowRunStateChanged", "InfraEvent"],
        "CancelQueueUrl": ["FlowRunCancelRequested"],
    }
    ecs_events = [
        parse_event(body, event_readers()).detail
        for body in received["StateQueueUrl"]
        if body["source"] == "aws.ecs"
    ]
    assert [event.run_id for event in ecs_events] == [run_id]
    for output in ("DispatchDLQUrl", "StateDLQUrl", "CancelDLQUrl", "DeliveryDLQUrl"):
        attributes = sqs.get_queue_attributes(
            QueueUrl=queue_url(sqs, stack[output]), AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0", output
