"""Lambda: state events from StateQueue (runner, dispatcher, monitor, ECS) applied to runs."""

from flowrelay.handlers.record_state import handler

__all__ = ["handler"]
