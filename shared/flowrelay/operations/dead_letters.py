"""Sending dead letters back (``flowrelay dlq redrive`` and the UI's Redrive): the request
checked once for both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowrelay.control.dead_letters import DeadLetterQueues, RedriveResult, redrive
from flowrelay.operations import RefusedError


def redrive_letters(
    sqs: Any,
    queues: DeadLetterQueues,
    *,
    message_ids: Sequence[str] = (),
    everything: bool = False,
    only: str | None = None,
) -> list[RedriveResult]:
    """Send the dead letters ``message_ids`` (or, ``everything``, all of them, of the DLQ
    ``only`` if given) back to the queues they came from. Refused when it names neither, or
    both."""
    if not message_ids and not everything:
        raise RefusedError(
            "name the messages to redrive (their ids: flowrelay dlq ls), or redrive them all"
        )
    if message_ids and everything:
        raise RefusedError("name messages to redrive or redrive them all, not both")
    return redrive(sqs, queues, message_ids=None if everything else message_ids, only=only)
