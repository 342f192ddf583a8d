"""Lambda: "Flow Run Requested" messages from DispatchQueue become launched runs."""

from flowrelay.handlers.dispatch import handler

__all__ = ["handler"]
