"""One way to parse and publish a discriminated union of pydantic models (run configs, storage,
and later the event schemas)."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter

T = TypeVar("T")


class Model(BaseModel):
    """Base of flowrelay's models. Validators are built on first use, not at import: a Lambda
    function imports many models and uses a few, and cold start is paid per import. A float
    field takes finite numbers only: JSON has no NaN or Infinity, and pydantic would write them
    back as null."""

    model_config = ConfigDict(defer_build=True, allow_inf_nan=False)


class ModelUnion(Generic[T]):
    """Parses JSON text or dicts into one of several models, and gives their JSON Schema.

    >>> from flowrelay.core.run_configs import RunConfig
    >>> ModelUnion(RunConfig, title="RunConfig").parse('{"type": "LocalRun"}').type
    'LocalRun'
    """

    def __init__(self, union: Any, title: str, schema_id: str | None = None) -> None:
        self.union = union
        self.title = title
        self.schema_id = schema_id

    @cached_property
    def adapter(self) -> TypeAdapter[T]:
        """Built on first use (see ``Model``)."""
        return TypeAdapter(self.union)

    def parse(self, data: str | bytes | dict[str, Any]) -> T:
        """The model that ``data`` describes; ``pydantic.ValidationError`` names a bad field."""
        if isinstance(data, (str, bytes)):
            return self.adapter.validate_json(data)
        return self.adapter.validate_python(data)

    def json_schema(self) -> dict[str, Any]:
        schema = self.adapter.json_schema()
        if self.schema_id:
            schema["$id"] = self.schema_id
        schema["title"] = self.title
        return schema
