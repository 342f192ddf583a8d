"""What an ECS target says about where and how its runs start (``Target.settings``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from flowrelay.core.modeling import Model


class EcsSettings(Model):
    """Where and how an ECS target starts tasks; a run's ECSRun fields are merged over these."""

    model_config = ConfigDict(extra="forbid")

    cluster: str = Field(min_length=1)
    subnets: list[str] = Field(default_factory=list)
    security_groups: list[str] = Field(default_factory=list)
    assign_public_ip: bool = False
    launch_type: Literal["FARGATE", "EC2", "EXTERNAL"] | None = "FARGATE"
    capacity_provider_strategy: list[dict[str, Any]] | None = None
    platform_version: str | None = None
    image: str | None = None
    cpu: str = "256"
    memory: str = "512"
    task_role_arn: str | None = None
    execution_role_arn: str | None = None
    log_group: str | None = None

    @model_validator(mode="after")
    def _launch_type_or_capacity(self) -> EcsSettings:
        if self.capacity_provider_strategy:
            self.launch_type = None
        return self
