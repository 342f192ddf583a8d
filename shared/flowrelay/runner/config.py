"""The runner's settings, read once from its environment (the runner contract's variables,
``flowrelay.core.contract``)."""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import ConfigDict, Field, field_validator

from flowrelay.core.contract import (
    DEFAULT_HEARTBEAT_SECONDS,
    ENV_ATTEMPT,
    ENV_BUS_NAME,
    ENV_HEARTBEAT_SECONDS,
    ENV_LOG_LEVEL,
    ENV_RUN_ID,
    ENV_TABLE_NAME,
)
from flowrelay.core.modeling import Model
from flowrelay.core.runs import RUN_ID_PATTERN
from flowrelay.core.settings import SettingsError, from_environment

#: Whether tasks checkpoint their results (the seeds' engine's ``PREFECT__FLOWS__CHECKPOINTING``,
#: on by default in runs its server started, as here): set ``false`` in a run config's ``env``
#: to turn it off. A flow that checkpoints nothing leaves nothing for a restart to reuse.
ENV_CHECKPOINTING = "FLOWRELAY__FLOWS__CHECKPOINTING"


class ConfigError(SettingsError):
    """The runner's environment is missing a setting or has a bad one."""


class RunnerConfig(Model):
    """The runner's settings."""

    model_config = ConfigDict(frozen=True)

    run_id: str = Field(pattern=RUN_ID_PATTERN, json_schema_extra={"expects": "a flow run id"})
    table_name: str
    bus_name: str
    attempt: int | None = Field(
        default=None, ge=1, json_schema_extra={"expects": "a whole number >= 1"}
    )
    heartbeat_seconds: float = Field(
        default=DEFAULT_HEARTBEAT_SECONDS,
        gt=0,
        json_schema_extra={"expects": "a number > 0"},
    )
    log_level: str = Field(default="INFO", json_schema_extra={"expects": "a logging level"})
    checkpointing: bool = Field(default=True, json_schema_extra={"expects": "true or false"})

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        import logging

        level = level.upper()
        if not isinstance(logging.getLevelName(level), int):
            raise ValueError(f"{level!r} is not a logging level")
        return level


#: Each setting's variable.
ENVIRONMENT = {
    "run_id": ENV_RUN_ID,
    "table_name": ENV_TABLE_NAME,
    "bus_name": ENV_BUS_NAME,
    "attempt": ENV_ATTEMPT,
    "heartbeat_seconds": ENV_HEARTBEAT_SECONDS,
    "log_level": ENV_LOG_LEVEL,
    "checkpointing": ENV_CHECKPOINTING,
}


def config_from_env(env: Mapping[str, str]) -> RunnerConfig:
    """The settings in ``env``; ``ConfigError`` names every missing or bad one at once, so a
    misconfigured task definition is fixed in one round."""
    try:
        return from_environment(RunnerConfig, env, ENVIRONMENT)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None
