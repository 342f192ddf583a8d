"""The Dispatch function: "Flow Run Requested" messages from DispatchQueue become launched runs
(``flowrelay.control.dispatch``). Records of a batch are dispatched concurrently."""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from flowrelay.aws.clients import client
from flowrelay.control.dispatch import RequestConflict, RetryLater, reject_request
from flowrelay.core.events import EventError
from flowrelay.handlers import wiring
from flowrelay.handlers.batches import batch_handler, dead_letter_with_reason, parse_record

QUEUE = "dispatch"
#: SQS's longest DelaySeconds.
MAX_SQS_DELAY = 900


def sqs_delay(seconds: float) -> int:
    """The ``DelaySeconds`` of a request sent back for ``seconds``: rounded up (back before its
    run's ``retry_at``, it would only be sent back again), within what SQS takes.

    >>> sqs_delay(0.2), sqs_delay(10.01), sqs_delay(5000)
    (1, 11, 900)
    """
    return max(1, min(MAX_SQS_DELAY, math.ceil(seconds)))


def dispatch_record(record: SQSRecord) -> dict[str, Any]:
    """Dispatch one "Flow Run Requested" message. A request that must wait (a failed attempt's
    backoff, a launch under way elsewhere) is queued again with that delay (SQS DelaySeconds)
    and this message is done."""
    try:
        event = parse_record(record, "Flow Run Requested")
    except EventError as exc:
        run_id = reject_request(wiring.store(), record.body, str(exc), wiring.slots())
        if run_id is None:
            raise
        wiring.logger.warning(
            "Rejected message %s: %s (recorded on run %s)", record.message_id, exc, run_id
        )
        return {"rejected": str(exc), "flow_run_id": run_id}
    try:
        outcome = wiring.dispatcher().handle_request(event)
    except RequestConflict as conflict:
        # Redelivering cannot make it fit: dead-lettered now, with the reason (else the
        # queue's redrive policy takes it after its deliveries, the reason in the logs).
        receives = int(record.attributes.approximate_receive_count or 1)
        if not dead_letter_with_reason(record, QUEUE, receives, conflict):
            raise
        wiring.logger.warning("Refused message %s: %s", record.message_id, conflict)
        return {"refused": str(conflict)}
    except RetryLater as later:
        delay = sqs_delay(later.delay)
        client("sqs").send_message(
            QueueUrl=wiring.queue_url(record.event_source_arn),
            MessageBody=record.body,
            DelaySeconds=delay,
        )
        wiring.logger.info("Dispatch later", extra={"reason": later.reason, "delay_seconds": delay})
        return {"retry_in": delay, "reason": later.reason}
    wiring.logger.info("Dispatched", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


dispatch_batch = batch_handler(QUEUE, dispatch_record, concurrent=True)


#: Lambda's entry point (``functions/dispatch/app.handler``).
handler = wiring.logger.inject_lambda_context(dispatch_batch)
