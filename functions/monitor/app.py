"""Lambda, every minute: hold every active run to its limits (see flowrelay.control.monitor)."""

from typing import Any

from flowrelay.handlers.wiring import logger, metrics, monitor


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return monitor(event, context)
