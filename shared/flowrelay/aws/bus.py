"""Putting flowrelay events on the bus, with per-entry failure handling."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from flowrelay.core.events import FlowrelayEvent

_MAX_ATTEMPTS = 5


class PublishError(RuntimeError):
    """Some events could not be put on the bus; the message gives EventBridge's reasons."""


class Publisher:
    """Puts events on one bus. ``PutEvents`` can fail per entry while the call succeeds, so
    failed entries are retried (with backoff) and a final failure raises ``PublishError``.

    >>> publisher = Publisher(boto3.client("events"), "flowrelay")  # doctest: +SKIP
    >>> publisher.publish(FlowRunRequested(flow="etl"))  # doctest: +SKIP
    """

    def __init__(self, client: Any, bus_name: str) -> None:
        self.client = client
        self.bus_name = bus_name

    def publish(self, *events: FlowrelayEvent) -> None:
        entries = [event.entry(self.bus_name) for event in events]
        for start in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
            self._put(entries[start : start + 10])

    def _put(self, entries: Sequence[dict[str, Any]]) -> None:
        pending = list(entries)
        reasons: list[str] = []
        for attempt in range(_MAX_ATTEMPTS):
            response = self.client.put_events(Entries=pending)
            if not response.get("FailedEntryCount"):
                return
            results = response.get("Entries", [])
            failed = [
                (entry, result)
                for entry, result in zip(pending, results, strict=False)
                if result.get("ErrorCode")
            ]
            reasons = [
                f"{result['ErrorCode']}: {result.get('ErrorMessage', '')}" for _, result in failed
            ]
            pending = [entry for entry, _ in failed]
            time.sleep(min(0.1 * 2**attempt, 2.0))
        raise PublishError(
            f"{len(pending)} event(s) not accepted by bus {self.bus_name!r}: {'; '.join(reasons)}"
        )
