"""``ECSRun``: a run as an ECS task (Fargate or EC2)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from flowrelay.core.run_configs.base import RunConfigBase, quantity

_ECS_CPU = re.compile(r"^(\d+|\d+(\.\d+)?\s*vcpu)$", re.IGNORECASE)
_ECS_MEMORY = re.compile(r"^(\d+|\d+(\.\d+)?\s*gb)$", re.IGNORECASE)
_TASK_DEFINITION_ARN = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}(:\d+)?$"
)
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


def ecs_cpu(value: Any) -> Any:
    """An ECS task's CPU as ECS takes it (text), from a number or text; ``ValueError`` saying
    what it must be. ``ecs_cpu(256) == "256"``."""
    return quantity(value, _ECS_CPU, "cpu", "CPU units such as 1024 or vCPUs such as '1 vcpu'")


def ecs_memory(value: Any) -> Any:
    """An ECS task's memory as ECS takes it (text), from a number or text; ``ValueError`` saying
    what it must be. ``ecs_memory(512) == "512"``."""
    return quantity(value, _ECS_MEMORY, "memory", "MiB such as 2048 or GB such as '2 GB'")


class ECSRun(RunConfigBase):
    """Runs as an ECS task (Fargate or EC2); the target supplies cluster and network defaults."""

    type: Literal["ECSRun"] = "ECSRun"
    target_kinds: ClassVar[frozenset[str]] = frozenset({"ecs"})

    task_definition: dict[str, Any] | None = Field(
        default=None, description="A task definition, as register_task_definition takes it."
    )
    task_definition_path: str | None = Field(
        default=None,
        min_length=1,
        description="Task definition file: local path, s3:// or https://.",
    )
    task_definition_arn: str | None = Field(
        default=None, description="A task definition registered outside flowrelay."
    )
    image: str | None = Field(default=None, min_length=1)
    cpu: str | None = Field(default=None, description="CPU units ('1024') or vCPUs ('1 vcpu').")
    memory: str | None = Field(default=None, description="MiB ('2048') or GB ('2 GB').")
    task_role_arn: str | None = None
    execution_role_arn: str | None = None
    run_task_kwargs: dict[str, Any] | None = Field(
        default=None, description="Extra RunTask arguments, merged over the target's."
    )

    @field_validator("cpu", mode="before")
    @classmethod
    def _check_cpu(cls, value: Any) -> Any:
        return ecs_cpu(value)

    @field_validator("memory", mode="before")
    @classmethod
    def _check_memory(cls, value: Any) -> Any:
        return ecs_memory(value)

    @field_validator("task_definition_arn")
    @classmethod
    def _check_task_definition_arn(cls, value: str | None) -> str | None:
        if value is not None and not _TASK_DEFINITION_ARN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a task definition ARN "
                f"(arn:aws:ecs:REGION:ACCOUNT:task-definition/FAMILY[:REVISION])"
            )
        return value

    @field_validator("task_role_arn", "execution_role_arn")
    @classmethod
    def _check_role_arn(cls, value: str | None, info: Any) -> str | None:
        if value is not None and not _ROLE_ARN.fullmatch(value):
            raise ValueError(
                f"{info.field_name} {value!r} is not an IAM role ARN "
                "(arn:aws:iam::ACCOUNT:role/NAME)"
            )
        return value

    @model_validator(mode="after")
    def _one_task_definition_source(self) -> ECSRun:
        given = [
            name
            for name in ("task_definition", "task_definition_path", "task_definition_arn")
            if getattr(self, name) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give at most one task definition source; got {' and '.join(given)}")
        return self
