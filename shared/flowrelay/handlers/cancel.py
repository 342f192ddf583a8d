"""The Cancel function: "Flow Run Cancel Requested" messages from CancelQueue stop their runs'
infrastructure (``flowrelay.control.cancel``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from flowrelay.core.events import FlowRunCancelRequested
from flowrelay.handlers import wiring
from flowrelay.handlers.batches import batch_handler, parse_record


def cancel_record(record: SQSRecord) -> dict[str, Any]:
    """Apply one cancel request: stop the run's infrastructure."""
    event = parse_record(record, FlowRunCancelRequested.DETAIL_TYPE)
    assert isinstance(event.detail, FlowRunCancelRequested)
    outcome = wiring.canceller().cancel(event.detail)
    wiring.logger.info("Cancel", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


cancel_batch = batch_handler("cancel", cancel_record, concurrent=True)


#: Lambda's entry point (``functions/cancel/app.handler``).
handler = wiring.logger.inject_lambda_context(cancel_batch)
