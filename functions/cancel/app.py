"""Lambda: "Flow Run Cancel Requested" messages from CancelQueue stop their runs' tasks."""

from flowrelay.handlers.cancel import handler

__all__ = ["handler"]
