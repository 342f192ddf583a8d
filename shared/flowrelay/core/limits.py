"""The sizes flowrelay keeps what it sends and stores within, and the AWS limits behind them.

A run is one DynamoDB item (400 KB, attribute names and values together), reached by events of
at most 256 KB (an EventBridge entry; an SQS message has the same limit). What a run carries
that a user chooses (its parameters, run config and labels) is therefore refused at the door
when it is over ``REQUEST_BYTES`` as JSON, with a message naming the limit and the size; what
flowrelay writes on a run (messages, details of a change) is clipped to its own limits. So the
run item always fits, with room for what it gains while it runs, and every event about it
fits on the bus.

>>> json_size({"rows": 10})
11
>>> clip("x" * 10, 5)
'xxxx…'
"""

from __future__ import annotations

import json
from typing import Any

#: AWS: an EventBridge PutEvents entry, and an SQS message.
EVENT_BYTES = 256 * 1024
#: AWS: a DynamoDB item.
ITEM_BYTES = 400 * 1024
#: A run request's parameters, run config and labels together, as JSON (and a registration's).
REQUEST_BYTES = 128 * 1024
#: A message on a run or in its history.
MESSAGE_CHARS = 8192
#: The details of one state change (where logs are, exit codes, the failing task...).
DETAILS_BYTES = 16 * 1024

_CLIP = "…"


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (UTF-8), as it is stored and sent."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def clip(text: str | None, limit: int = MESSAGE_CHARS) -> str | None:
    """``text`` cut to ``limit`` characters (the last one an ellipsis) when longer."""
    if text is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + _CLIP


def over(what: str, size: int, limit: int, hint: str) -> str:
    """The one-line refusal of something too big: what, its size, the limit, what to do.

    >>> over("parameters", 200_000, 131_072, "pass an S3 key")
    "parameters: 200,000 bytes as JSON, over flowrelay's limit of 131,072 bytes (pass an S3 key)"
    """
    return f"{what}: {size:,} bytes as JSON, over flowrelay's limit of {limit:,} bytes ({hint})"
