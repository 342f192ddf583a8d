"""The template's event sources, feeding its functions (run in-process by
``flowrelay.devstack.lambda_emulator``) as Lambda feeds them.

An SQS source is read as Lambda's event source mapping reads it, with the template's settings
(``template.EventSource``):

- **Batches**: at most ``BatchSize`` messages per invocation. With
  ``MaximumBatchingWindowInSeconds`` 0 the function is invoked with what one poll returned; with a
  window, a batch is held open for up to that long after its first message to fill, and invoked
  as soon as it is full (``BatchSize`` messages, or a payload of 6 MB: what would go over it goes
  back to the queue at once).
- **Concurrency**: up to ``ScalingConfig.MaximumConcurrency`` batches of the source are in flight
  at once, each invocation in a thread of its own; without a ScalingConfig,
  ``DEFAULT_CONCURRENCY`` (5), the five batches Lambda starts an SQS source with. The poller
  receives only while a slot is free, so no message waits in hand for a slot. Lambda then
  scales up by up to 300 concurrent invocations a minute; here every slot is there from the
  start (docs/devstack.md).
- **Outcomes**: the handler gets Lambda's event shape (``Records`` with ``messageId``,
  ``receiptHandle``, ``attributes`` incl. ``ApproximateReceiveCount``, ``eventSourceARN``, ...);
  with ReportBatchItemFailures only the records it names are retried, a handler that raises
  fails the whole batch, and the queue's RedrivePolicy (moto applies it on receive) moves
  messages that keep failing to the DLQ. A failed message is made visible again after
  ``retry_delay`` seconds instead of the queue's visibility timeout (360 s), so a developer sees
  retries in seconds.

The functions share this process: concurrent invocations of one function run side by side in
its module (on Lambda each would have an execution environment of its own).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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


#: Batches of one SQS source in flight at once when the template sets no ScalingConfig: Lambda
#: starts an SQS event source with five (and scales up from there; the dev stack does not).
DEFAULT_CONCURRENCY = 5
#: Lambda's largest invocation payload (synchronous invocation): a batch is invoked before it
#: would grow past it.
PAYLOAD_LIMIT = 6 * 1024 * 1024
#: How long one receive long-polls for a batch's first message (whole seconds, as SQS takes).
RECEIVE_WAIT_SECONDS = 1
#: How often a batch still in its window asks again when the window has less than a second
#: left (SQS long-polls only in whole seconds).
SHORT_POLL_SECONDS = 0.05


class SqsPoller(threading.Thread):
    """Feeds one function from one SQS queue, as a Lambda event source mapping does (see the
    module docstring): this thread receives batches, a pool of ``concurrency`` threads invokes
    the function with them."""

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
        self.batch_size = source.batch_size or 10
        self.window = float(source.maximum_batching_window_seconds)
        self.concurrency = source.maximum_concurrency or DEFAULT_CONCURRENCY
        # A slot is taken before a receive and given back when its batch is done: never more
        # than ``concurrency`` batches in flight, and no message received without a slot.
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._invocations = ThreadPoolExecutor(
            max_workers=self.concurrency, thread_name_prefix=f"devstack-{self.label}"
        )
        self._gauge = threading.Lock()
        self.in_flight = 0
        """Batches being handled now."""
        self.most_in_flight = 0
        """The most batches that were ever in flight at once."""

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self.poll_once()
                except Exception as exc:  # keep polling: a dev stack must not die on one error
                    if self.stopping.is_set():
                        return
                    self.say(f"{self.label}: poll error: {exc!r}")
                    self.stopping.wait(1.0)
        finally:
            # The batches in flight finish (their messages deleted or made visible again).
            self._invocations.shutdown(wait=True)

    def poll_once(self) -> int:
        """Wait for a free slot, receive one batch (``collect``) and hand it to an invocation
        thread; the number of messages handed over (0: none came, or the stack is stopping)."""
        while not self._slots.acquire(timeout=0.2):
            if self.stopping.is_set():
                return 0
        handed_over = False
        try:
            records = self.collect()
            if records:
                self._invocations.submit(self._invoke, records)
                handed_over = True
            return len(records)
        finally:
            if not handed_over:
                self._slots.release()

    def collect(self) -> list[dict[str, Any]]:
        """One batch, as Lambda fills it: what one poll returns when there is no batching
        window; with one, more polls until the batch is full (``BatchSize`` or 6 MB) or the
        window, counted from the batch's first message, is over."""
        batch = _Batch(self)
        batch.take(self._receive(self.batch_size, RECEIVE_WAIT_SECONDS))
        if not batch.records or self.window <= 0:
            return batch.records
        deadline = time.monotonic() + self.window
        while not batch.full and len(batch.records) < self.batch_size:
            left = deadline - time.monotonic()
            if left <= 0 or self.stopping.is_set():
                break
            # Long-poll in whole seconds within the window; under a second, ask every 50 ms.
            more = self._receive(self.batch_size - len(batch.records), int(left))
            if not more and left < 1:
                self.stopping.wait(min(left, SHORT_POLL_SECONDS))
            batch.take(more)
        return batch.records

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max(1, min(count, 10)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [
            sqs_record(message, self.queue_arn, self.region)
            for message in response.get("Messages", [])
        ]

    def give_back(self, record: dict[str, Any]) -> None:
        """Make a received message visible again at once (it did not fit its batch)."""
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
        )

    def _invoke(self, records: list[dict[str, Any]]) -> None:
        """Invoke the function with one batch, then settle its messages as Lambda does; the
        batch's slot is free again afterwards, whatever happened."""
        with self._gauge:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            self._settle(records)
        except Exception as exc:  # the messages come back after their visibility timeout
            self.say(f"{self.label}: could not settle a batch: {exc!r}")
        finally:
            with self._gauge:
                self.in_flight -= 1
            self._slots.release()

    def _settle(self, records: list[dict[str, Any]]) -> None:
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


class _Batch:
    """A batch being filled: its records, and whether its payload is as large as it may get."""

    def __init__(self, poller: SqsPoller) -> None:
        self.poller = poller
        self.records: list[dict[str, Any]] = []
        self.size = 0
        self.full = False

    def take(self, records: list[dict[str, Any]]) -> None:
        """Add ``records`` while the payload stays within ``PAYLOAD_LIMIT``; from the first that
        would not fit on, each goes back to the queue for the next batch."""
        for record in records:
            size = _payload_size(record)
            if self.full or (self.records and self.size + size > PAYLOAD_LIMIT):
                self.full = True
                self.poller.give_back(record)
                continue
            self.records.append(record)
            self.size += size


def _payload_size(record: dict[str, Any]) -> int:
    """What one record adds to the invocation's payload (its JSON)."""
    return len(json.dumps(record)) + 2  # and the separator in the Records list


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
