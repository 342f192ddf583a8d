"""The dev stack's SQS event sources read their queue as Lambda's event source mapping does, with
the template's settings: batches of BatchSize, held up to MaximumBatchingWindowInSeconds to fill
(invoked at once when full), and up to ScalingConfig.MaximumConcurrency batches in flight.

A real SqsPoller on a queue of the session's moto server, over HTTP; the function is a Python
handler that records what it was given, and when.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from flowrelay.devstack import event_sources
from flowrelay.devstack.event_sources import DEFAULT_CONCURRENCY, SqsPoller
from flowrelay.devstack.lambda_emulator import Function
from flowrelay.devstack.template import EventSource


@dataclass
class Invocation:
    at: float
    bodies: list[str]


@dataclass
class Worker:
    """What the handler saw: each invocation, and the most that ran at once."""

    invocations: list[Invocation] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: dict[str, Any]) -> None:
        with self.lock:
            self.invocations.append(
                Invocation(time.monotonic(), [record["body"] for record in event["Records"]])
            )

    def received(self) -> list[str]:
        with self.lock:
            return [body for invocation in self.invocations for body in invocation.bodies]


@dataclass
class Queue:
    sqs: Any
    url: str
    arn: str

    def send(self, *bodies: str) -> float:
        """Send ``bodies`` in one SendMessageBatch; when it was sent."""
        self.sqs.send_message_batch(
            QueueUrl=self.url,
            Entries=[{"Id": str(index), "MessageBody": body} for index, body in enumerate(bodies)],
        )
        return time.monotonic()


@pytest.fixture
def queue(aws_env: str) -> Iterator[Queue]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName=f"flowrelay-source-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    yield Queue(sqs, url, arn)
    sqs.delete_queue(QueueUrl=url)


@pytest.fixture
def start_poller(queue: Queue) -> Iterator[Callable[..., SqsPoller]]:
    """``start_poller(handler, batch_size=..., window=..., concurrency=...)``: a running poller of
    ``queue``; stopped (its batches finished) after the test."""
    stopping = threading.Event()

    def start(
        handler: Callable[[dict[str, Any], Any], Any],
        *,
        batch_size: int = 10,
        window: int = 0,
        concurrency: int | None = None,
    ) -> SqsPoller:
        source = EventSource(
            function="Worker",
            name="Jobs",
            kind="sqs",
            handler_path="src/worker/app.py",
            handler_function="handler",
            timeout=30,
            queue="Jobs",
            batch_size=batch_size,
            maximum_batching_window_seconds=window,
            maximum_concurrency=concurrency,
            report_batch_item_failures=True,
        )
        function = Function(
            logical_id="Worker",
            name="worker",
            arn="arn:aws:lambda:us-east-1:123456789012:function:worker",
            handler=handler,
            timeout=30,
            memory_size=128,
        )
        poller = SqsPoller(
            function,
            source,
            boto3.client("sqs"),
            queue.url,
            queue.arn,
            "us-east-1",
            stopping,
            lambda line: None,
            retry_delay=1,
        )
        poller.start()
        return poller

    yield start
    # Not joined: each ends within a second (its long poll), its batches finished.
    stopping.set()


def wait_for(done: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        time.sleep(0.01)


def test_up_to_maximum_concurrency_batches_are_in_flight_and_no_more(
    queue: Queue, start_poller: Callable[..., SqsPoller]
) -> None:
    """With MaximumConcurrency 3 and batches of one message, three invocations run at once (the
    handler waits until it sees three), and never a fourth."""
    worker = Worker()
    three = threading.Barrier(3, timeout=5)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with worker.lock:
            worker.running += 1
            worker.most_running = max(worker.most_running, worker.running)
        try:
            three.wait()  # BrokenBarrierError unless three run at once
            worker.record(event)
            time.sleep(0.05)  # a fourth would be seen now, if one were let in
        finally:
            with worker.lock:
                worker.running -= 1
        return {"batchItemFailures": []}

    poller = start_poller(handler, batch_size=1, concurrency=3)
    queue.send(*(f"m{index}" for index in range(6)))

    wait_for(lambda: len(worker.received()) == 6)
    assert sorted(worker.received()) == [f"m{index}" for index in range(6)]
    assert all(len(invocation.bodies) == 1 for invocation in worker.invocations)
    assert worker.most_running == 3
    assert poller.most_in_flight == 3


def test_without_a_scaling_config_five_batches_may_be_in_flight(
    queue: Queue, start_poller: Callable[..., SqsPoller]
) -> None:
    """Lambda starts an SQS source with five concurrent batches: the dev stack's default."""
    poller = start_poller(lambda event, context: None)
    assert poller.concurrency == DEFAULT_CONCURRENCY == 5


def test_a_batch_is_held_for_the_window_to_fill(
    queue: Queue, start_poller: Callable[..., SqsPoller]
) -> None:
    """MaximumBatchingWindowInSeconds 1: a message that arrives while its batch waits joins it;
    the function is invoked once, about a second after the batch's first message."""
    worker = Worker()
    start_poller(lambda event, context: worker.record(event), batch_size=10, window=1)
    sent = queue.send("first")
    time.sleep(0.3)
    queue.send("second", "third")

    wait_for(lambda: len(worker.received()) == 3)
    (invocation,) = worker.invocations
    assert sorted(invocation.bodies) == ["first", "second", "third"]
    assert 0.9 <= invocation.at - sent < 1.8


def test_a_full_batch_is_invoked_at_once(
    queue: Queue, start_poller: Callable[..., SqsPoller]
) -> None:
    """A batch that reaches BatchSize does not wait for the rest of its window."""
    worker = Worker()
    start_poller(lambda event, context: worker.record(event), batch_size=3, window=1)
    time.sleep(0.1)  # the poller is waiting on the queue
    sent = queue.send("a", "b", "c")

    wait_for(lambda: len(worker.received()) == 3)
    (invocation,) = worker.invocations
    assert sorted(invocation.bodies) == ["a", "b", "c"]
    assert invocation.at - sent < 0.6


def test_without_a_window_the_function_gets_what_one_poll_returned(
    queue: Queue, start_poller: Callable[..., SqsPoller]
) -> None:
    worker = Worker()
    start_poller(lambda event, context: worker.record(event), batch_size=10, window=0)
    time.sleep(0.1)
    sent = queue.send("only")

    wait_for(lambda: len(worker.received()) == 1)
    assert worker.invocations[0].at - sent < 0.5


def test_a_batch_stops_growing_at_the_payload_limit(
    queue: Queue, start_poller: Callable[..., SqsPoller], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda invokes before a batch's payload would pass 6 MB; what would not fit goes back to
    the queue for the next batch (the limit made small here: two messages' worth)."""
    body = "x" * 2000
    monkeypatch.setattr(event_sources, "PAYLOAD_LIMIT", 2 * 2000 + 1500 * 2)
    worker = Worker()
    start_poller(lambda event, context: worker.record(event), batch_size=10, window=1)
    time.sleep(0.1)
    queue.send(*(body + str(index) for index in range(3)))

    wait_for(lambda: len(worker.received()) == 3)
    first, *rest = worker.invocations
    assert len(first.bodies) == 2
    assert sum(len(invocation.bodies) for invocation in rest) == 1


def deliveries(event: dict[str, Any]) -> list[tuple[str, int]]:
    return [
        (record["body"], int(record["attributes"]["ApproximateReceiveCount"]))
        for record in event["Records"]
    ]


def test_failed_messages_come_back_and_done_ones_do_not(
    queue: Queue, start_poller: Callable[..., SqsPoller]
) -> None:
    """ReportBatchItemFailures: the messages the handler names are retried (after the retry
    delay, 1 s), the others are done; a handler that raises fails its whole batch (a bystander
    delivered with the crashing message comes back with it)."""
    batches: list[list[tuple[str, int]]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        delivered = deliveries(event)
        batches.append(delivered)
        if ("crash", 1) in delivered:
            raise RuntimeError("this batch fails")
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record, (body, count) in zip(event["Records"], delivered, strict=True)
                if (body, count) == ("retry", 1)
            ]
        }

    def seen() -> set[tuple[str, int]]:
        return {delivery for batch in list(batches) for delivery in batch}

    start_poller(handler)
    queue.send("done", "retry")
    wait_for(lambda: {("done", 1), ("retry", 1)} <= seen())
    queue.send("crash", "bystander")
    wait_for(lambda: ("bystander", 1) in seen() and ("crash", 1) in seen())
    (failed,) = [batch for batch in batches if ("crash", 1) in batch]
    expected = {("retry", 2)} | {(body, 2) for body, _ in failed}

    wait_for(lambda: expected <= seen())
    time.sleep(0.05)
    assert [delivery for batch in batches for delivery in batch if delivery[0] == "done"] == [
        ("done", 1)
    ]
    if ("bystander", 1) not in failed:  # delivered in a batch of its own: done at once
        assert ("bystander", 2) not in seen()
