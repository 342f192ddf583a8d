"""Storage (public path): ``from flowrelay.storage import Module, Local, S3``.

Defined in ``flowrelay.sdk.storage``; see there and docs/flows.md.
"""

from flowrelay.sdk.storage import (
    S3,
    FlowLoadError,
    Local,
    Module,
    Storage,
    parse_storage,
    split_location,
)

__all__ = ["S3", "FlowLoadError", "Local", "Module", "Storage", "parse_storage", "split_location"]
