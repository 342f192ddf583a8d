"""What every run config has (environment variables and labels), and the shared checks."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import ConfigDict, Field, ValidationError, field_validator

from flowrelay.core.contract import RUNNER_OWNED
from flowrelay.core.labels import check_labels
from flowrelay.core.modeling import Model

_ENV_NAME = re.compile(r"^[^=\x00]+$")
_LEADING_NUMBER = re.compile(r"\d*\.?\d+")


class RunConfigBase(Model):
    """Fields every run config has: environment variables for the run and labels."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    #: The launch-target kinds this run config can go to.
    target_kinds: ClassVar[frozenset[str]] = frozenset()

    env: dict[str, str] | None = Field(
        default=None, description="Environment variables set for the flow run (no secrets)."
    )
    labels: list[str] = Field(
        default_factory=list, description="A launch target must carry all of these labels."
    )

    @field_validator("env", mode="before")
    @classmethod
    def _check_env(cls, env: Any) -> Any:
        if not isinstance(env, dict):
            return env
        for name, value in env.items():
            if not isinstance(name, str) or not _ENV_NAME.match(name):
                raise ValueError(f"environment variable name {name!r} is empty or contains '='")
            if name in RUNNER_OWNED:
                raise ValueError(
                    f"{name} is set by flowrelay for every run (it ties the runner to its run); "
                    f"a run config cannot set it"
                )
            if not isinstance(value, str):
                raise ValueError(
                    f"environment variable {name!r} must be a string, got "
                    f"{type(value).__name__} {value!r}"
                )
        return env

    @field_validator("labels", mode="before")
    @classmethod
    def _check_labels(cls, labels: Any) -> Any:
        if isinstance(labels, str):
            raise ValueError(f"labels must be a list of strings, not the string {labels!r}")
        if labels is None:
            return []
        if isinstance(labels, (set, frozenset, tuple)):
            labels = sorted(labels) if isinstance(labels, (set, frozenset)) else list(labels)
        if isinstance(labels, list):
            check_labels(labels)
            return list(dict.fromkeys(labels))
        return labels

    def __setattr__(self, name: str, value: Any) -> None:
        # pydantic applies an assignment before the model validators run: undo it when they
        # reject it, so a failed assignment leaves the config as it was.
        saved_dict, saved_fields_set = dict(self.__dict__), set(self.model_fields_set)
        try:
            super().__setattr__(name, value)
        except ValidationError:
            object.__setattr__(self, "__dict__", saved_dict)
            object.__setattr__(self, "__pydantic_fields_set__", saved_fields_set)
            raise

    def fits(self, target_kind: str) -> bool:
        """Whether a launch target of ``target_kind`` (ecs, kubernetes, local, ...) can run it."""
        return target_kind in self.target_kinds


def quantity(value: Any, pattern: re.Pattern[str], field: str, expected: str) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{field} must be {expected}, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    amount = _LEADING_NUMBER.match(text)
    if not pattern.match(text) or amount is None or float(amount.group()) <= 0:
        raise ValueError(f"{field} {value!r} is not {expected}")
    return text
