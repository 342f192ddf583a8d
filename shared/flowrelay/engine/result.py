"""``from flowrelay.engine.result import Result`` (public path), as the seeds' engine's
``prefect.engine.result``. Defined in ``flowrelay.sdk.results``."""

from flowrelay.sdk.results import Result

__all__ = ["Result"]
