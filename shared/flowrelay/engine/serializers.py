"""Serializers (public path, the seeds' engine's ``prefect.engine.serializers``):
``from flowrelay.engine.serializers import JSONSerializer``.

Defined in ``flowrelay.sdk.serializers``; see there and docs/flows.md.
"""

from flowrelay.sdk.serializers import (
    CompressedSerializer,
    DateTimeSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
)

__all__ = [
    "CompressedSerializer",
    "DateTimeSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
]
