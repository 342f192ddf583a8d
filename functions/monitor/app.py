"""Lambda, every minute: hold every active run to its limits (see flowrelay.control.monitor)."""

from flowrelay.handlers.monitor import handler

__all__ = ["handler"]
