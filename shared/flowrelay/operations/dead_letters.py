"""Sending dead letters back (``flowrelay dlq redrive`` and the UI's Redrive): the request
checked once for both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flowrelay.control.dead_letters import DeadLetterQueues, RedriveResult, redrive
from flowrelay.operations import RefusedError

#: How the request's two fields are named to the user, by default (the JSON API's names).
REDRIVE_FIELDS = {"message_ids": "message_ids", "all": "all"}


def redrive_letters(
    sqs: Any,
    queues: DeadLetterQueues,
    *,
    message_ids: Sequence[str] = (),
    everything: bool = False,
    only: str | None = None,
    field_names: Mapping[str, str] = REDRIVE_FIELDS,
) -> list[RedriveResult]:
    """Send the dead letters ``message_ids`` (or, ``everything``, all of them, of the DLQ
    ``only`` if given) back to the queues they came from. Refused when it names neither, or
    both; ``field_names``: how the caller names ``message_ids`` and ``all`` (the CLI's
    ``MESSAGE_IDs`` and ``--all``)."""
    ids, every = field_names["message_ids"], field_names["all"]
    if not message_ids and not everything:
        raise RefusedError(f"name the {ids} to redrive (see `flowrelay dlq ls`), or give {every}")
    if message_ids and everything:
        raise RefusedError(f"give {ids} or {every}, not both")
    return redrive(sqs, queues, message_ids=None if everything else message_ids, only=only)
