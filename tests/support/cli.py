"""Running the CLI in tests the way a user's shell does: its output, its exit code, its one
error line; and queues that receive what the CLI puts on the bus."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
from click.testing import CliRunner, Result

from flowrelay.cli import cli
from flowrelay.core.events import parse_event


def invoke(*args: str) -> Result:
    """``flowrelay ARGS...`` in this process; stdout and stderr kept apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_error_line(result: Result, code: int) -> str:
    """The command exited ``code`` with exactly one ``error: ...`` line; that line's text."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ")


def routed_queue(bus: str, detail_type: str) -> Iterator[str]:
    """A queue that receives the bus's events of ``detail_type``, as the template's rules do
    (for ``yield from`` in a fixture: the queue and its rule are deleted afterwards)."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    suffix = uuid.uuid4().hex[:8]
    url = sqs.create_queue(QueueName=f"routed-{suffix}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule = f"route-{suffix}"
    events.put_rule(
        Name=rule,
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["flowrelay"], "detail-type": [detail_type]}),
    )
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    yield url
    events.remove_targets(Rule=rule, EventBusName=bus, Ids=["q"])
    events.delete_rule(Name=rule, EventBusName=bus)
    sqs.delete_queue(QueueUrl=url)


def received(url: str, wait_seconds: int = 0) -> list[Any]:
    """The event details waiting in the queue (up to ten)."""
    messages = boto3.client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
    )
    return [parse_event(message["Body"]).detail for message in messages.get("Messages", [])]
