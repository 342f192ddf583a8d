"""Storage (public path): ``from flowrelay.storage import Module, Local, S3``.

The descriptions are defined in ``flowrelay.core.storage``, loading in ``flowrelay.sdk.storage``;
see docs/flows.md.
"""

from flowrelay.core.storage import S3, Local, Module, Storage, parse_storage, split_location
from flowrelay.sdk.storage import FlowLoadError, load_flow, load_flow_from_script, upload_script

__all__ = [
    "S3",
    "FlowLoadError",
    "Local",
    "Module",
    "Storage",
    "load_flow",
    "load_flow_from_script",
    "parse_storage",
    "split_location",
    "upload_script",
]
