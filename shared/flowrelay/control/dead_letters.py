"""The dead-letter queues: what is in them, which run each message belongs to, and sending
messages back to the queue they came from.

Four DLQs (template.yaml): ``dispatch``, ``state`` and ``cancel`` take what their work queue's
consumer failed on five times; ``delivery`` takes events EventBridge could not deliver to any of
the work queues. Every message is an EventBridge envelope, so most name their run::

    >>> facts = parse_body('{"id": "e-1", "source": "flowrelay", '
    ...     '"detail-type": "Flow Run Cancel Requested", "detail": {"flow_run_id": "r-1"}}')
    >>> facts.run_id, facts.detail_type
    ('r-1', 'Flow Run Cancel Requested')
    >>> parse_body("not an event").run_id is None
    True

Listing never consumes a message: it receives everything with a short visibility timeout and
makes it all visible again at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, computed_field

from flowrelay.control.store import Store
from flowrelay.core.events import (
    SOURCE,
    FlowRunCancelRequested,
    FlowRunClusterChanged,
    FlowRunRequested,
    FlowRunStateChanged,
    TaskRunStateChanged,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.modeling import Model
from flowrelay.core.runs import RUN_ID_PATTERN, requested_run_id
from flowrelay.launchers.base import EventReader

#: The DLQs, in the order they are listed.
QUEUE_NAMES: tuple[str, ...] = ("dispatch", "state", "cancel", "delivery")
#: The stack output holding each DLQ's URL.
DLQ_OUTPUTS: dict[str, str] = {
    "dispatch": "DispatchDLQUrl",
    "state": "StateDLQUrl",
    "cancel": "CancelDLQUrl",
    "delivery": "DeliveryDLQUrl",
}
#: The stack output holding each work queue's URL (the delivery DLQ has none of its own).
WORK_QUEUE_OUTPUTS: dict[str, str] = {
    "dispatch": "DispatchQueueUrl",
    "state": "StateQueueUrl",
    "cancel": "CancelQueueUrl",
}
#: Where one of flowrelay's events that EventBridge could not deliver belongs: the queue its
#: rule targets. Infrastructure events (the launchers' readers) belong to the state queue.
DELIVERY_ROUTES: dict[str, str] = {
    FlowRunRequested.DETAIL_TYPE: "dispatch",
    FlowRunStateChanged.DETAIL_TYPE: "state",
    TaskRunStateChanged.DETAIL_TYPE: "state",
    FlowRunClusterChanged.DETAIL_TYPE: "state",
    FlowRunCancelRequested.DETAIL_TYPE: "cancel",
}
Readers = Mapping[tuple[str, str], EventReader]
#: The message attributes a function puts on a message it dead-letters itself: why it failed,
#: on which delivery, and the message's id in its work queue.
ERROR_ATTRIBUTE = "flowrelay-error"
RECEIVES_ATTRIBUTE = "flowrelay-receives"
ORIGINAL_ID_ATTRIBUTE = "flowrelay-message-id"
#: What "why" says of a message with no reason anywhere: it reached the DLQ by SQS's redrive
#: policy, so its function never got to say why.
NO_REASON = (
    "no reason recorded: its function did not finish its last try (a crash or a timeout?); "
    "see the function's logs at the time it was sent"
)
#: Long enough that one listing never receives a message twice, short enough that a listing cut
#: off before it could release its messages hides them only briefly.
PEEK_VISIBILITY_SECONDS = 30
#: SQS short polling samples a subset of its servers, so an empty answer may come from a queue
#: that still has messages; ask again this many times while the queue says it has some.
_EMPTY_RETRIES = 3
_BATCH = 10  # SQS's limit for ReceiveMessage and ChangeMessageVisibilityBatch
_RUN_ID = re.compile(RUN_ID_PATTERN)


# --- queues ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterQueues:
    """The DLQ and work queue URLs of one stack, by queue name (``QUEUE_NAMES``), and the
    readers of the infrastructure events its state queue takes
    (``flowrelay.launchers.kinds.event_readers``), which say which run such an event is about."""

    dead_letter: Mapping[str, str]
    work: Mapping[str, str]
    readers: Readers = field(default_factory=dict)

    @classmethod
    def from_outputs(
        cls, outputs: Mapping[str, str], readers: Readers | None = None
    ) -> DeadLetterQueues:
        """The queues named by a flowrelay stack's CloudFormation outputs; ``ValueError``
        naming the outputs that are missing."""
        wanted = [*DLQ_OUTPUTS.values(), *WORK_QUEUE_OUTPUTS.values()]
        missing = [output for output in wanted if not outputs.get(output)]
        if missing:
            raise ValueError(
                f"the stack has no {', '.join(missing)} output"
                f"{'s' if len(missing) > 1 else ''}: is it a flowrelay stack?"
            )
        return cls(
            dead_letter={name: outputs[output] for name, output in DLQ_OUTPUTS.items()},
            work={name: outputs[output] for name, output in WORK_QUEUE_OUTPUTS.items()},
            readers=dict(readers or {}),
        )

    def selected(self, only: str | None = None) -> list[str]:
        """The DLQ names to look at: all of them, or ``only``; ``ValueError`` for an unknown
        name."""
        if only is None:
            return [name for name in QUEUE_NAMES if name in self.dead_letter]
        if only not in self.dead_letter:
            known = ", ".join(name for name in QUEUE_NAMES if name in self.dead_letter)
            raise ValueError(f"no dead-letter queue {only!r} (known: {known})")
        return [only]

    def redrive_target(
        self, queue: str, detail_type: str | None, source: str | None = SOURCE
    ) -> str | None:
        """The work queue a message from DLQ ``queue`` goes back to: the queue whose consumer
        failed on it, or for ``delivery`` the one its rule targets (by its source and
        ``detail_type``). None when nothing says where it belongs."""
        target: str | None = queue
        if queue == "delivery":
            if (str(source), str(detail_type)) in self.readers:
                target = "state"
            else:
                target = DELIVERY_ROUTES.get(detail_type or "") if source == SOURCE else None
        return target if target in self.work else None


# --- messages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyFacts:
    """What a message body says about itself; every field None when it does not say."""

    source: str | None = None
    detail_type: str | None = None
    run_id: str | None = None
    flow: str | None = None


def parse_body(body: str, readers: Readers | None = None) -> BodyFacts:
    """The event type, run and flow of an SQS message body holding an EventBridge envelope.

    The run id is found as the consumers find it: ``detail.flow_run_id``; for a "Flow Run
    Requested" without one, the id the dispatcher gives the run (``requested_run_id``: from
    the idempotency key, else the envelope id); for an infrastructure event, what its reader
    in ``readers`` says. Never raises: anything else gives None fields.
    """
    try:
        data = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return BodyFacts()
    if not isinstance(data, dict):
        return BodyFacts()
    source = _text(data.get("source"))
    detail_type = _text(data.get("detail-type"))
    detail = data.get("detail")
    if not isinstance(detail, dict):
        return BodyFacts(source=source, detail_type=detail_type)
    return BodyFacts(
        source=source,
        detail_type=detail_type,
        run_id=_run_id(data, detail, source, detail_type, readers or {}),
        flow=_text(detail.get("flow")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _run_id(
    envelope: dict[str, Any],
    detail: dict[str, Any],
    source: str | None,
    detail_type: str | None,
    readers: Readers,
) -> str | None:
    reader = readers.get((str(source), str(detail_type)))
    if reader is not None:
        try:
            return reader(detail).run_id
        except Exception:  # a malformed event belongs to no run
            return None
    if "flow_run_id" in detail:
        # Present but not text: the consumers reject the event, so it belongs to no run.
        return _text(detail["flow_run_id"])
    if detail_type == FlowRunRequested.DETAIL_TYPE:
        # As Dispatcher.handle_request names the run it creates for this request.
        key, event_id = _text(detail.get("idempotency_key")), _text(envelope.get("id"))
        if key is None and event_id is None:
            return None
        return requested_run_id(None, key, event_id or "")
    return None


class DeadLetter(Model):
    """One message in a dead-letter queue, tied to its run where the body names one."""

    queue: str = Field(description="The DLQ: dispatch, state, cancel or delivery.")
    message_id: str
    receipt_handle: str = Field(exclude=True, repr=False)
    body: str
    source: str | None = None
    detail_type: str | None = None
    run_id: str | None = None
    flow: str | None = None
    receive_count: int | None = Field(
        default=None, description="ApproximateReceiveCount; each listing adds one."
    )
    sent_at: datetime | None = Field(
        default=None,
        description="SentTimestamp: when it was first sent (SQS keeps it when it moves a "
        "message to a DLQ), or when EventBridge put it in the delivery DLQ.",
    )
    redrive_to: str | None = Field(
        default=None, description="The work queue redrive sends it to; None: none fits."
    )
    delivery_error: str | None = Field(
        default=None,
        description="Why EventBridge could not deliver it (its ERROR_CODE and ERROR_MESSAGE "
        "message attributes; delivery DLQ only).",
    )
    error: str | None = Field(
        default=None,
        description="Why its function failed on it, as the function said when it dead-lettered "
        "it (its flowrelay-error message attribute).",
    )
    run_state: RunState | None = Field(default=None, description="The run's state now.")
    run_message: str | None = Field(
        default=None, description="The run's message: why its message failed, when recorded."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def why(self) -> str:
        """Why it is here, never empty: the function's reason, else EventBridge's, else what its
        run says, else that nothing recorded one."""
        return self.error or self.delivery_error or self.run_message or NO_REASON


class RedriveResult(Model):
    """What redrive did with one message id."""

    message_id: str
    status: Literal["moved", "skipped", "not_found"]
    queue: str | None = Field(default=None, description="The DLQ it was in.")
    to_queue: str | None = Field(default=None, description="The work queue it was sent to.")
    run_id: str | None = None
    detail_type: str | None = None
    reason: str | None = None


# --- listing -----------------------------------------------------------------------------------


def list_dead_letters(
    sqs: Any,
    queues: DeadLetterQueues,
    *,
    only: str | None = None,
    store: Store | None = None,
) -> list[DeadLetter]:
    """Every message in the DLQs (or in ``only``), without consuming any.

    Each queue is received until it answers with nothing (a message received once stays
    invisible for ``PEEK_VISIBILITY_SECONDS``, so it is not seen twice), then everything
    received is made visible again at once. A message another reader holds at that moment is
    not seen. With ``store``, each message's run is read for its current state and message.
    """
    letters: list[DeadLetter] = []
    for name in queues.selected(only):
        with _peek(sqs, queues.dead_letter[name]) as held:
            messages = list(held.values())
        letters += [_dead_letter(name, message, queues) for message in messages]
    # SQS returns messages in no useful order: oldest first reads as what happened.
    letters.sort(key=lambda letter: (QUEUE_NAMES.index(letter.queue), _sent_key(letter)))
    if store is not None:
        _add_runs(letters, store)
    return letters


def _dead_letter(queue: str, message: dict[str, Any], queues: DeadLetterQueues) -> DeadLetter:
    body = str(message.get("Body", ""))
    facts = parse_body(body, queues.readers)
    attributes = message.get("Attributes", {})
    message_attributes = message.get("MessageAttributes", {})
    return DeadLetter(
        queue=queue,
        message_id=message["MessageId"],
        receipt_handle=message["ReceiptHandle"],
        body=body,
        source=facts.source,
        detail_type=facts.detail_type,
        run_id=facts.run_id,
        flow=facts.flow,
        receive_count=_int(attributes.get("ApproximateReceiveCount")),
        sent_at=_sent_at(attributes.get("SentTimestamp")),
        redrive_to=queues.redrive_target(queue, facts.detail_type, facts.source),
        delivery_error=_delivery_error(message_attributes),
        error=_attribute(message_attributes, ERROR_ATTRIBUTE),
    )


def _attribute(attributes: dict[str, Any], name: str) -> str | None:
    attribute = attributes.get(name)
    return _text(attribute.get("StringValue")) if isinstance(attribute, dict) else None


def _delivery_error(attributes: dict[str, Any]) -> str | None:
    """EventBridge's reason for a message it put in a DLQ (it adds these attributes)."""
    parts = [_attribute(attributes, name) for name in ("ERROR_CODE", "ERROR_MESSAGE")]
    return ": ".join(part for part in parts if part is not None) or None


def _sent_key(letter: DeadLetter) -> tuple[datetime, str]:
    return (letter.sent_at or datetime.max.replace(tzinfo=UTC), letter.message_id)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _sent_at(milliseconds: Any) -> datetime | None:
    value = _int(milliseconds)
    return datetime.fromtimestamp(value / 1000, UTC) if value is not None else None


def _add_runs(letters: list[DeadLetter], store: Store) -> None:
    """Fill in each letter's run state and message (one read per run)."""
    runs: dict[str, Any] = {}
    for letter in letters:
        # An id the table could never hold is not looked up: DynamoDB would reject a huge key.
        if letter.run_id is None or not _RUN_ID.match(letter.run_id):
            continue
        if letter.run_id not in runs:
            runs[letter.run_id] = store.runs.get(letter.run_id)
        run = runs[letter.run_id]
        if run is not None:
            letter.run_state = run.state
            letter.run_message = run.message
            letter.flow = letter.flow or run.flow_name


# --- redrive -----------------------------------------------------------------------------------


def redrive(
    sqs: Any,
    queues: DeadLetterQueues,
    *,
    message_ids: Iterable[str] | None = None,
    only: str | None = None,
) -> list[RedriveResult]:
    """Send DLQ messages back to the queue they came from: those in ``message_ids`` (None: all
    of them) in every DLQ, or in ``only``.

    Each message's body is sent unchanged to its work queue (see
    ``DeadLetterQueues.redrive_target``), and only then deleted from the DLQ: a crash between
    the two leaves the message in both queues, never in neither. A duplicate is harmless,
    because every consumer is idempotent: a request names its run by ``flow_run_id``,
    idempotency key or event id, the run is created once, and a launch claim lets one delivery
    launch it; state events apply through conditional transitions.

    Returns one result per message: ``moved``, ``skipped`` (a delivery DLQ message whose
    detail-type no queue takes; it stays in the DLQ), and ``not_found`` for each requested id
    that is not in the DLQs (or was held by another reader at that moment).
    """
    wanted = None if message_ids is None else list(dict.fromkeys(message_ids))
    results: list[RedriveResult] = []
    found: set[str] = set()
    for name in queues.selected(only):
        if wanted is not None and found.issuperset(wanted):
            break  # every id asked for is handled: no need to read the other queues
        url = queues.dead_letter[name]
        with _peek(sqs, url) as held:
            for message_id, message in list(held.items()):
                if wanted is not None and message_id not in wanted:
                    continue
                found.add(message_id)
                results.append(_move(sqs, queues, name, url, message, forget=held.pop))
    results += [
        RedriveResult(message_id=message_id, status="not_found", reason="not in the DLQs")
        for message_id in wanted or []
        if message_id not in found
    ]
    return results


def _move(
    sqs: Any,
    queues: DeadLetterQueues,
    queue: str,
    url: str,
    message: dict[str, Any],
    forget: Callable[[str], Any],
) -> RedriveResult:
    body = str(message.get("Body", ""))
    facts = parse_body(body, queues.readers)
    result = RedriveResult(
        message_id=message["MessageId"],
        status="moved",
        queue=queue,
        run_id=facts.run_id,
        detail_type=facts.detail_type,
    )
    target = queues.redrive_target(queue, facts.detail_type, facts.source)
    if target is None:
        reason = (
            f"no queue takes detail-type {facts.detail_type!r}"
            if facts.detail_type
            else "not an EventBridge event: nothing says which queue it belongs to"
        )
        return result.model_copy(update={"status": "skipped", "reason": reason})
    sqs.send_message(QueueUrl=queues.work[target], MessageBody=body)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    forget(message["MessageId"])  # deleted: nothing to make visible again
    return result.model_copy(update={"to_queue": target})


# --- peeking -----------------------------------------------------------------------------------


@contextmanager
def _peek(sqs: Any, url: str) -> Iterator[dict[str, dict[str, Any]]]:
    """Every visible message of a queue by id, held invisible until the block ends; whatever
    is still in the dict then is made visible again (also when the block raises)."""
    held: dict[str, dict[str, Any]] = {}
    try:
        _receive_all(sqs, url, held)
        yield held
    finally:
        _release(sqs, url, list(held.values()))


def _receive_all(sqs: Any, url: str, held: dict[str, dict[str, Any]]) -> None:
    empty_answers = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=_BATCH,
            WaitTimeSeconds=0,
            VisibilityTimeout=PEEK_VISIBILITY_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            empty_answers += 1
            if empty_answers > _EMPTY_RETRIES or not _has_visible(sqs, url):
                return
            continue
        new = False
        for message in messages:
            known = held.get(message["MessageId"])
            if known is None:
                held[message["MessageId"]] = message
                new = True
            else:
                # Seen again (a listing longer than the visibility timeout): only the newest
                # receipt handle can delete it or change its visibility.
                known["ReceiptHandle"] = message["ReceiptHandle"]
        if not new:
            return  # the queue came round again: everything in it has been seen


def _has_visible(sqs: Any, url: str) -> bool:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    ).get("Attributes", {})
    return (_int(attributes.get("ApproximateNumberOfMessages")) or 0) > 0


def _release(sqs: Any, url: str, messages: list[dict[str, Any]]) -> None:
    """Make messages visible again, ten per call. A handle that fails (the message was deleted
    meanwhile, or its handle expired) is left alone: the visibility timeout ends it anyway."""
    for start in range(0, len(messages), _BATCH):
        chunk = messages[start : start + _BATCH]
        sqs.change_message_visibility_batch(
            QueueUrl=url,
            Entries=[
                {
                    "Id": str(index),
                    "ReceiptHandle": message["ReceiptHandle"],
                    "VisibilityTimeout": 0,
                }
                for index, message in enumerate(chunk)
            ],
        )


# --- on the run --------------------------------------------------------------------------------


def note_on_run(
    store: Store,
    *,
    queue: str,
    message_id: str,
    body: str,
    receives: int,
    error: Exception,
    readers: Readers | None = None,
) -> bool:
    """Write on a message's run that the message failed its last delivery and is going to the
    ``queue`` dead-letter queue, with the error, so the run shows why and where the message is.
    False when the message names no run, or its run is already final."""
    run_id = parse_body(body, readers).run_id
    run = store.runs.get(run_id) if run_id and _RUN_ID.match(run_id) else None
    if run is None or run.state.is_final:
        return False
    message = (
        f"a {queue} message for this run failed {receives} times and is now in the {queue} "
        f"dead-letter queue (flowrelay dlq ls): {type(error).__name__}: {error}"
    )
    store.runs.amend(
        run,
        Source.MONITOR if queue == "state" else Source.DISPATCHER,
        message[:2000],
        {},
        {"dead_letter": {"queue": queue, "message_id": message_id}},
    )
    return True
