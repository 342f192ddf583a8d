"""Run configurations: where a flow run goes and how its infrastructure is set up
(docs/run-configs.md).

Every run config is a pydantic model with a ``type`` discriminator, validated on creation and on
assignment, with a lossless JSON round trip::

    >>> config = ECSRun(image="example/flow:1", cpu="1 vcpu", memory="2 GB", labels=["prod"])
    >>> parse_run_config(config.model_dump_json()) == config
    True

Labels decide which launch targets may take a run (see ``flowrelay.core.routing``); the run
config's type must fit the target's kind (``UniversalRun`` fits every kind). One module per
kind: ``universal``, ``local``, ``docker``, ``kubernetes``, ``ecs``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from flowrelay.core.modeling import ModelUnion
from flowrelay.core.run_configs.base import RunConfigBase
from flowrelay.core.run_configs.docker import DockerRun
from flowrelay.core.run_configs.ecs import ECSRun
from flowrelay.core.run_configs.kubernetes import KubernetesRun
from flowrelay.core.run_configs.local import LocalRun
from flowrelay.core.run_configs.universal import UniversalRun

RunConfig = Annotated[
    UniversalRun | LocalRun | DockerRun | KubernetesRun | ECSRun, Field(discriminator="type")
]
RUN_CONFIG_TYPES: tuple[type[RunConfigBase], ...] = (
    UniversalRun,
    LocalRun,
    DockerRun,
    KubernetesRun,
    ECSRun,
)
_RUN_CONFIGS: ModelUnion[RunConfig] = ModelUnion(
    RunConfig, title="RunConfig", schema_id="https://flowrelay.dev/schemas/run-config.json"
)


def parse_run_config(data: str | bytes | dict[str, Any]) -> RunConfig:
    """A run config from its JSON text or dict (as ``model_dump`` / ``model_dump_json`` make).

    Raises ``pydantic.ValidationError`` naming the bad field.
    """
    return _RUN_CONFIGS.parse(data)


def run_config_json_schema() -> dict[str, Any]:
    """The JSON Schema of every run config type (discriminated by ``type``)."""
    return _RUN_CONFIGS.json_schema()


__all__ = [
    "RUN_CONFIG_TYPES",
    "DockerRun",
    "ECSRun",
    "KubernetesRun",
    "LocalRun",
    "RunConfig",
    "RunConfigBase",
    "UniversalRun",
    "parse_run_config",
    "run_config_json_schema",
]
