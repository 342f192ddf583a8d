"""What every SQS-fed function does with its records: read each as an event, and when one fails
its last delivery, say why on its run before SQS moves it to the dead-letter queue."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from flowrelay.aws.batch import process_sqs_batch
from flowrelay.aws.clients import client
from flowrelay.core.events import EventError, ParsedEvent, parse_event
from flowrelay.core.limits import clip
from flowrelay.core.settings import SettingsError
from flowrelay.handlers import wiring

#: The queues' maxReceiveCount (template.yaml): the delivery after which SQS dead-letters.
MAX_RECEIVES = 5


def dead_letter_queue_variable(queue: str) -> str:
    """The variable naming the dead-letter queue of the function fed by ``queue`` (template.yaml),
    where it dead-letters with the reason. One name per queue, not one shared name: functions
    that share a process (the dev stack, ``flowrelay invoke``) share one environment.

    >>> dead_letter_queue_variable("state")
    'FLOWRELAY_STATE_DEAD_LETTER_QUEUE_URL'
    """
    return f"FLOWRELAY_{queue.upper()}_DEAD_LETTER_QUEUE_URL"


RecordHandler = Callable[[SQSRecord], dict[str, Any]]
BatchHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def batch_handler(queue: str, handle: RecordHandler, *, concurrent: bool = False) -> BatchHandler:
    """The handler of an SQS-fed function: each record of a batch through ``handle`` (at once,
    when ``concurrent``), failures reported per record (``noting_dead_letters``)."""
    noted = noting_dead_letters(queue, handle)

    def handle_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return process_sqs_batch(event, context, noted, concurrent=concurrent)

    return handle_batch


def parse_record(
    record: SQSRecord, detail_type: str | None = None, *, infrastructure: bool = False
) -> ParsedEvent:
    """The event in an SQS record, which must be of ``detail_type`` when one is given;
    ``infrastructure``: the launchers' infrastructure events are taken too. ``EventError``
    naming what is wrong otherwise."""
    readers = wiring.event_readers() if infrastructure else None
    event = parse_event(record.body, readers)
    if detail_type is not None and event.envelope.detail_type != detail_type:
        raise EventError(
            f"this queue takes {detail_type!r} events, not {event.envelope.detail_type!r}"
        )
    return event


def noting_dead_letters(queue: str, handle: RecordHandler) -> RecordHandler:
    """``handle``, with each failed record logged (its message id, delivery and reason); and
    when a record fails on its last delivery, or cannot be read at all (``EventError``: no
    delivery will change that), the reason written on its run, if it names one, and the message
    dead-lettered with the reason (``dead_letter_with_reason``)."""

    def handle_noting(record: SQSRecord) -> dict[str, Any]:
        try:
            return handle(record)
        except Exception as exc:
            receives = int(record.attributes.approximate_receive_count or 1)
            # powertools logs a failed record only at DEBUG: say which message and why here.
            # Bad input (ValueError: EventError; LookupError: no such run) needs no traceback;
            # a function missing its settings is an error of the deployment, said as one.
            bad_input = isinstance(exc, ValueError | LookupError)
            log = wiring.logger.warning if bad_input else wiring.logger.exception
            if isinstance(exc, SettingsError):
                log = wiring.logger.error
            log(
                "Message %s failed (delivery %d of %d): %s: %s",
                record.message_id,
                receives,
                MAX_RECEIVES,
                type(exc).__name__,
                exc,
            )
            # A message that cannot be read never will be: no point in four more deliveries.
            if receives >= MAX_RECEIVES or isinstance(exc, EventError):
                note_dead_letter(record, queue, receives, exc)
                if dead_letter_with_reason(record, queue, receives, exc):
                    return {"dead_lettered": queue, "reason": reason_of(exc)}
            raise

    return handle_noting


def reason_of(error: Exception) -> str:
    """An exception as the one line a dead letter carries."""
    return clip(f"{type(error).__name__}: {error}", 4000) or type(error).__name__


def dead_letter_with_reason(record: SQSRecord, queue: str, receives: int, error: Exception) -> bool:
    """Put a message that failed its last delivery in the function's dead-letter queue
    ourselves, with why as message attributes, so the reason travels with it (SQS's redrive
    policy would move it there too, but with no word of why). False when the queue is not
    known here or the send fails: the redrive policy then moves it, and the reason is in the
    logs and, when it names one, on its run."""
    url = os.environ.get(dead_letter_queue_variable(queue))
    if not url:
        return False
    from flowrelay.control.dead_letters import (
        ERROR_ATTRIBUTE,
        ORIGINAL_ID_ATTRIBUTE,
        RECEIVES_ATTRIBUTE,
    )

    try:
        client("sqs").send_message(
            QueueUrl=url,
            MessageBody=record.body,
            MessageAttributes={
                ERROR_ATTRIBUTE: {"DataType": "String", "StringValue": reason_of(error)},
                RECEIVES_ATTRIBUTE: {"DataType": "Number", "StringValue": str(receives)},
                ORIGINAL_ID_ATTRIBUTE: {"DataType": "String", "StringValue": record.message_id},
            },
        )
    except Exception:
        wiring.logger.exception("Could not dead-letter message %s myself", record.message_id)
        return False
    wiring.logger.error(
        "Message %s dead-lettered after %d deliveries: %s",
        record.message_id,
        receives,
        reason_of(error),
    )
    return True


def note_dead_letter(record: SQSRecord, queue: str, receives: int, exc: Exception) -> None:
    """Best effort: a failure here must not hide the original error."""
    from flowrelay.control.dead_letters import note_on_run

    try:
        note_on_run(
            wiring.store(),
            queue=queue,
            message_id=record.message_id,
            body=record.body,
            receives=receives,
            error=exc,
            readers=wiring.event_readers() if queue == "state" else None,
        )
    except Exception:
        wiring.logger.exception("Could not note the dead letter %s on its run", record.message_id)
