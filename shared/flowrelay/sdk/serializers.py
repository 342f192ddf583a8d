"""How a ``Result`` turns a task's value into bytes and back (public path
``flowrelay.engine.serializers``, as the seeds' engine's ``prefect.engine.serializers``).

``PickleSerializer`` (cloudpickle) is every result's default; ``JSONSerializer`` writes text
other programs can read::

    >>> JSONSerializer().serialize({"rows": 3})
    b'{"rows": 3}'
    >>> PickleSerializer().deserialize(PickleSerializer().serialize({1, 2}))
    {1, 2}

A serializer is picklable and compares equal to another of the same kind and settings.
"""

from __future__ import annotations

import base64
import bz2
import datetime
import gzip
import json
import lzma
import zlib
from collections.abc import Callable
from typing import Any

__all__ = [
    "CompressedSerializer",
    "DateTimeSerializer",
    "JSONSerializer",
    "PickleSerializer",
    "Serializer",
]

COMPRESSION_FORMATS: dict[str, tuple[Callable[..., bytes], Callable[..., bytes]]] = {
    "bz2": (bz2.compress, bz2.decompress),
    "gzip": (gzip.compress, gzip.decompress),
    "lzma": (lzma.compress, lzma.decompress),
    "zlib": (zlib.compress, zlib.decompress),
}


class Serializer:
    """Turns Python objects into bytes and back; subclasses implement ``serialize`` and
    ``deserialize``."""

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def serialize(self, value: Any) -> bytes:
        """``value`` as bytes."""
        raise NotImplementedError(f"{type(self).__name__} does not implement serialize()")

    def deserialize(self, value: bytes) -> Any:
        """The object ``value`` (bytes made by ``serialize``) stands for."""
        raise NotImplementedError(f"{type(self).__name__} does not implement deserialize()")


class PickleSerializer(Serializer):
    """cloudpickle: any picklable value, including functions and classes defined in a flow
    script. Read back only with the same Python and library versions that wrote it."""

    def serialize(self, value: Any) -> bytes:
        """``value`` pickled with cloudpickle."""
        import cloudpickle

        data: bytes = cloudpickle.dumps(value)
        return data

    def deserialize(self, value: bytes) -> Any:
        """The value unpickled; base64-wrapped pickles are read too (as the seeds' engine
        wrote them in its early versions)."""
        import cloudpickle

        try:
            return cloudpickle.loads(value)
        except Exception as exc:
            try:
                return cloudpickle.loads(base64.b64decode(value, validate=True))
            except Exception:
                # The base64 attempt was only a fallback: the first error is the real one.
                raise exc from None


class JSONSerializer(Serializer):
    """JSON (UTF-8): dicts, lists, strings, numbers, booleans and None."""

    def serialize(self, value: Any) -> bytes:
        """``value`` as JSON; ``TypeError`` naming the type JSON cannot hold."""
        return json.dumps(value).encode()

    def deserialize(self, value: bytes) -> Any:
        """The JSON document ``value`` parsed."""
        return json.loads(value)


class DateTimeSerializer(Serializer):
    """A ``datetime`` as ISO 8601 text (``2024-05-01T12:00:00+00:00``)."""

    def serialize(self, value: Any) -> bytes:
        """``value`` (a ``datetime`` or ``date``) in ISO 8601."""
        if not isinstance(value, datetime.date):
            raise TypeError(f"DateTimeSerializer needs a datetime, got {type(value).__name__}")
        return value.isoformat().encode()

    def deserialize(self, value: bytes) -> Any:
        """The ``datetime`` the ISO 8601 text ``value`` names."""
        return datetime.datetime.fromisoformat(value.decode())


class CompressedSerializer(Serializer):
    """Another serializer's bytes, compressed: ``format`` one of ``bz2``, ``gzip``, ``lzma``,
    ``zlib``, or your own ``compress``/``decompress`` functions (not both)."""

    def __init__(
        self,
        serializer: Serializer,
        format: str | None = None,
        compress: Callable[..., bytes] | None = None,
        decompress: Callable[..., bytes] | None = None,
        compress_kwargs: dict[str, Any] | None = None,
        decompress_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self._serializer = serializer
        if format is not None:
            if format not in COMPRESSION_FORMATS:
                known = ", ".join(COMPRESSION_FORMATS)
                raise ValueError(f"compression format {format!r} is not one of: {known}")
            if compress is not None or decompress is not None:
                raise ValueError("give either format= or compress=/decompress=, not both")
            self._compress, self._decompress = COMPRESSION_FORMATS[format]
        elif compress is not None and decompress is not None:
            self._compress, self._decompress = compress, decompress
        else:
            raise ValueError(
                "give format= (bz2, gzip, lzma, zlib) or both compress= and decompress="
            )
        self._compress_kwargs = compress_kwargs or {}
        self._decompress_kwargs = decompress_kwargs or {}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, CompressedSerializer)
            and self._serializer == other._serializer
            and self._compress == other._compress
            and self._decompress == other._decompress
            and self._compress_kwargs == other._compress_kwargs
            and self._decompress_kwargs == other._decompress_kwargs
        )

    def __hash__(self) -> int:
        return hash((type(self), self._serializer))

    def serialize(self, value: Any) -> bytes:
        """``value`` serialized by the wrapped serializer, then compressed."""
        return self._compress(self._serializer.serialize(value), **self._compress_kwargs)

    def deserialize(self, value: bytes) -> Any:
        """``value`` decompressed, then deserialized by the wrapped serializer."""
        return self._serializer.deserialize(self._decompress(value, **self._decompress_kwargs))
