"""Lambda, every minute: watch active runs (today: offer waiting runs to new targets)."""

from typing import Any

from flowrelay.lambda_runtime import logger, monitor


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return monitor(event, context)
