"""The RecordState function: state events from StateQueue (runner, dispatcher, monitor, and the
launchers' infrastructure events) applied to their runs (``flowrelay.control.recorder``)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from flowrelay.handlers import wiring
from flowrelay.handlers.batches import batch_handler, parse_record


def record_state_record(record: SQSRecord) -> dict[str, Any]:
    """Apply one state event to its run."""
    outcome = wiring.recorder().handle(parse_record(record, infrastructure=True))
    wiring.logger.info("Recorded", extra={"outcome": outcome.model_dump(mode="json")})
    return outcome.model_dump(mode="json")


record_state_batch = batch_handler("state", record_state_record)


#: Lambda's entry point (``functions/record_state/app.handler``).
handler = wiring.logger.inject_lambda_context(record_state_batch)
