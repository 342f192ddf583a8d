"""Lambda: "Flow Run Cancel Requested" messages from CancelQueue stop their runs' tasks."""

from typing import Any

from flowrelay.handlers.wiring import cancel_batch, logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return cancel_batch(event, context)
