"""``flowrelay.utilities.logging.get_logger`` (public path), as the seeds' engine's."""

import logging


def get_logger(name: str | None = None) -> logging.Logger:
    """The ``flowrelay`` logger, or its child ``flowrelay.<name>``: lines reach the run's log."""
    return logging.getLogger("flowrelay" if name is None else f"flowrelay.{name}")


__all__ = ["get_logger"]
