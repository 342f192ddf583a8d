"""Storage: where the flow runner finds a flow object (the descriptions; loading is
``flowrelay.sdk.storage.load_flow``).

- ``Module("pkg.module:flow")``: importable code, e.g. baked into the run's image.
- ``Local("flows/etl.py")`` or ``Local("flows/etl.py:flow")``: a script on this machine
  (development and the dev stack).
- ``S3("my-bucket")``: a script uploaded to S3 at registration; the runner downloads and loads
  it.

When no attribute is named, the script or module must define exactly one ``Flow``.

>>> parse_storage({"type": "Local", "path": "flows/etl.py:daily"})
Local(type='Local', path='flows/etl.py:daily')
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator

from flowrelay.core.modeling import Model, ModelUnion


def split_location(location: str) -> tuple[str, str | None]:
    """``"path/flow.py:attr"`` -> ``("path/flow.py", "attr")``; no attribute -> None.

    >>> split_location("flows/etl.py:daily")
    ('flows/etl.py', 'daily')
    """
    head, sep, tail = location.rpartition(":")
    if sep and tail.isidentifier() and head and not re.fullmatch(r"[A-Za-z]", head):
        return head, tail
    return location, None


class _StorageBase(Model):
    """Where a flow is; ``flowrelay.sdk.storage.load_flow`` loads it."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Module(_StorageBase):
    """A flow in importable code: ``Module("pkg.module:flow")`` (``:flow`` optional)."""

    type: Literal["Module"] = "Module"
    path: str = Field(min_length=1, description="'package.module' or 'package.module:attribute'")

    # Defined on each class: the pydantic mypy plugin gives every model its own __init__.
    def __init__(self, path: str | None = None, /, **data: Any) -> None:
        if path is not None:
            data["path"] = path
        super().__init__(**data)


class Local(_StorageBase):
    """A flow in a script on this machine: ``Local("flows/etl.py")`` or ``"flows/etl.py:flow"``."""

    type: Literal["Local"] = "Local"
    path: str = Field(min_length=1, description="Script path, optionally ':attribute'.")

    def __init__(self, path: str | None = None, /, **data: Any) -> None:
        if path is not None:
            data["path"] = path
        super().__init__(**data)


class S3(_StorageBase):
    """A flow script in S3: ``S3("bucket")`` is completed by ``upload`` at registration, which
    stores the script under a content-addressed key."""

    type: Literal["S3"] = "S3"
    bucket: str = Field(min_length=3, max_length=63)
    key: str | None = Field(default=None, min_length=1)
    attr: str | None = Field(default=None, description="The Flow's name in the script.")

    def __init__(self, bucket: str | None = None, key: str | None = None, /, **data: Any) -> None:
        if bucket is not None:
            data["bucket"] = bucket
        if key is not None:
            data["key"] = key
        super().__init__(**data)

    @field_validator("bucket")
    @classmethod
    def _check_bucket(cls, bucket: str) -> str:
        if (
            not re.fullmatch(r"[a-z0-9][a-z0-9.-]+[a-z0-9]", bucket)
            or ".." in bucket
            or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket)
        ):
            raise ValueError(f"{bucket!r} is not an S3 bucket name")
        return bucket


Storage = Annotated[Module | Local | S3, Field(discriminator="type")]
_STORAGE: ModelUnion[Storage] = ModelUnion(Storage, title="Storage")


def parse_storage(data: str | bytes | dict[str, Any]) -> Storage:
    """A storage from its JSON text or dict."""
    return _STORAGE.parse(data)


def storage_json_schema() -> dict[str, Any]:
    """The JSON Schema of every storage type (discriminated by ``type``)."""
    return _STORAGE.json_schema()
