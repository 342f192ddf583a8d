"""Lambda: state events from StateQueue (runner, dispatcher, monitor, ECS) applied to runs."""

from typing import Any

from flowrelay.handlers.wiring import logger, record_state_batch


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return record_state_batch(event, context)
