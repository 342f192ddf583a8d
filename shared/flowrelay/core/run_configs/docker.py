"""``DockerRun``: a run as a Docker container."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field

from flowrelay.core.run_configs.base import RunConfigBase


class DockerRun(RunConfigBase):
    """Runs as a Docker container."""

    type: Literal["DockerRun"] = "DockerRun"
    target_kinds: ClassVar[frozenset[str]] = frozenset({"docker"})

    image: str | None = Field(default=None, min_length=1, description="Image to run.")
    ports: list[Annotated[int, Field(ge=1, le=65535)]] | None = Field(
        default=None, description="Container ports to expose."
    )
    host_config: dict[str, Any] | None = Field(
        default=None, description="Docker host_config settings for the container."
    )
