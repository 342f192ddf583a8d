"""The template's event sources, feeding its functions (run in-process by
``flowrelay.devstack.lambda_emulator``) as Lambda feeds them.

An SQS source is polled in batches of its BatchSize and the handler gets the same
event shape (``Records`` with ``messageId``, ``receiptHandle``, ``attributes`` incl.
``ApproximateReceiveCount``, ``eventSourceARN``, ...); with ReportBatchItemFailures only the
records it names are retried, a handler that raises fails the whole batch, and the queue's
RedrivePolicy (moto applies it on receive) moves messages that keep failing to the DLQ. A failed
message is made visible again after ``retry_delay`` seconds instead of the queue's visibility
timeout (360 s), so a developer sees retries in seconds. MaximumBatchingWindowInSeconds is not
emulated: each poll waits at most one second for messages and invokes with what it got.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flowrelay.devstack.lambda_emulator import Function
from flowrelay.devstack.template import EventSource

Handler = Callable[[dict[str, Any], Any], Any]
log = logging.getLogger("flowrelay.devstack")


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as a record of Lambda's SQS event."""
    attributes = dict(message.get("Attributes", {}))
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": value.get("StringListValues", []),
                "binaryListValues": value.get("BinaryListValues", []),
                "dataType": value.get("DataType"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def failed_ids(response: Any, records: list[dict[str, Any]], report_failures: bool) -> set[str]:
    """The message ids Lambda would retry after the handler returned ``response``.

    Without ReportBatchItemFailures a returning handler succeeded for every record. With it, an
    answer Lambda cannot read (not a dict, an unknown or empty identifier) fails the whole batch.
    """
    every = {record["messageId"] for record in records}
    if not report_failures or response is None:
        return set()
    if not isinstance(response, dict):
        return every
    failures = response.get("batchItemFailures") or []
    if not isinstance(failures, list):
        return every
    named: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not identifier or identifier not in every:
            return every
        named.add(identifier)
    return named


class SqsPoller(threading.Thread):
    """Feeds one function from one SQS queue, as a Lambda event source mapping does."""

    def __init__(
        self,
        function: Function,
        source: EventSource,
        sqs: Any,
        queue_url: str,
        queue_arn: str,
        region: str,
        stopping: threading.Event,
        say: Callable[[str], None],
        retry_delay: int = 2,
    ) -> None:
        super().__init__(name=f"devstack-sqs-{function.logical_id}-{source.name}", daemon=True)
        self.function = function
        self.source = source
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.region = region
        self.stopping = stopping
        self.say = say
        self.retry_delay = retry_delay
        self.label = f"{function.logical_id.lower()}"

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # keep polling: a dev stack must not die on one error
                if self.stopping.is_set():
                    return
                self.say(f"{self.label}: poll error: {exc!r}")
                self.stopping.wait(1.0)

    def poll_once(self) -> None:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.source.batch_size or 10, 10),
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return
        records = [sqs_record(message, self.queue_arn, self.region) for message in messages]
        try:
            result = self.function.invoke({"Records": records})
            failed = failed_ids(result, records, self.source.report_batch_item_failures)
        except Exception as exc:
            self.say(f"{self.label}: handler raised {exc!r}; the whole batch will be retried")
            failed = {record["messageId"] for record in records}
        self.say(f"{self.label}: {len(records)} record(s), {len(failed)} failed")
        done = [record for record in records if record["messageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": record["receiptHandle"]}
                    for index, record in enumerate(done[start : start + 10])
                ],
            )
        for record in records:
            if record["messageId"] in failed:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=record["receiptHandle"],
                    VisibilityTimeout=self.retry_delay,
                )


def scheduled_event(rule_arn: str, region: str, account: str) -> dict[str, Any]:
    """The event EventBridge Scheduler rules pass to their Lambda target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler(threading.Thread):
    """Calls one function every ``interval`` seconds, as a ``rate(...)`` schedule rule does
    (the first call after one interval, as on AWS)."""

    def __init__(
        self,
        function: Function,
        source: EventSource,
        interval: float,
        region: str,
        account: str,
        stopping: threading.Event,
        say: Callable[[str], None],
    ) -> None:
        super().__init__(name=f"devstack-schedule-{function.logical_id}-{source.name}", daemon=True)
        self.function = function
        self.interval = interval
        self.rule_arn = f"arn:aws:events:{region}:{account}:rule/{function.name}-{source.name}"
        self.region = region
        self.account = account
        self.stopping = stopping
        self.say = say

    def run(self) -> None:
        label = self.function.logical_id.lower()
        while not self.stopping.wait(self.interval):
            try:
                result = self.function.invoke(
                    scheduled_event(self.rule_arn, self.region, self.account)
                )
                self.say(f"{label}: scheduled run -> {result}")
            except Exception as exc:
                self.say(f"{label}: scheduled run raised {exc!r}")
