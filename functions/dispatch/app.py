"""Lambda: "Flow Run Requested" messages from DispatchQueue become launched runs."""

from typing import Any

from flowrelay.handlers.wiring import dispatch_batch, logger


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return dispatch_batch(event, context)
