"""``flowrelay.utilities.edges`` (public path), as the seeds' engine's
``prefect.utilities.edges``."""

from flowrelay.sdk.tasks import flatten, mapped, unmapped

__all__ = ["flatten", "mapped", "unmapped"]
