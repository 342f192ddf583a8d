"""``flowrelay.utilities.tasks`` (public path), as the seeds' engine's
``prefect.utilities.tasks``."""

from flowrelay.sdk.apply_map import apply_map
from flowrelay.sdk.tasks import defaults_from_attrs, tags, task

__all__ = ["apply_map", "defaults_from_attrs", "tags", "task"]
