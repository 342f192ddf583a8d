"""Settings read from environment variables: one model per concern, one reader for them all.

Each concern (the stack's names, launch retries, timeouts, the runner's contract) is a pydantic
model; ``from_environment`` fills it from the variables named for its fields and turns every
problem into one line that names the variable, its value and what it should be::

    >>> from pydantic import Field
    >>> class Pool(Model):
    ...     size: int = Field(default=4, ge=1, json_schema_extra={"expects": "a whole number >= 1"})
    >>> from_environment(Pool, {"POOL_SIZE": "8"}, {"size": "POOL_SIZE"}).size
    8
    >>> from_environment(Pool, {"POOL_SIZE": "many"}, {"size": "POOL_SIZE"})
    Traceback (most recent call last):
    ...
    flowrelay.core.settings.SettingsError: POOL_SIZE='many' is not a whole number >= 1

A variable that is unset or blank leaves the field to its default; a required field without one
is reported as "NAME is not set".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from flowrelay.core.modeling import Model

M = TypeVar("M", bound=BaseModel)


class SettingsError(ValueError):
    """Environment variables that do not make usable settings; the message names each one."""


def expects(model: type[BaseModel], field: str) -> str | None:
    """What a field's variable must hold, in words (the field's ``expects`` schema extra)."""
    info = model.model_fields.get(field)
    extra = info.json_schema_extra if info is not None else None
    phrase = extra.get("expects") if isinstance(extra, dict) else None
    return phrase if isinstance(phrase, str) else None


def from_environment(model: type[M], env: Mapping[str, str], names: Mapping[str, str]) -> M:
    """``model`` with each field in ``names`` (field -> variable) read from ``env``; raises
    ``SettingsError`` naming every unusable variable at once, so a misconfigured function or
    task is fixed in one round."""
    raw = {field: env[name].strip() for field, name in names.items() if env.get(name, "").strip()}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems: list[str] = []
        for error in exc.errors(include_url=False):
            field = str(error["loc"][0]) if error["loc"] else None
            name = names.get(field) if field is not None else None
            if name is None:
                problem = error["msg"].removeprefix("Value error, ")
            elif error["type"] == "missing":
                problem = f"{name} is not set"
            else:
                wanted = expects(model, str(field)) or error["msg"]
                problem = f"{name}={raw[str(field)]!r} is not {wanted}"
            if problem not in problems:
                problems.append(problem)
        raise SettingsError("; ".join(problems)) from None


__all__ = ["Model", "SettingsError", "expects", "from_environment"]
