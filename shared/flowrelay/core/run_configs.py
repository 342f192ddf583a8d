"""Run configurations: where a flow run goes and how its infrastructure is set up (seed 004).

Every run config is a pydantic model with a ``type`` discriminator, validated on creation and on
assignment, with a lossless JSON round trip::

    >>> config = ECSRun(image="example/flow:1", cpu="1 vcpu", memory="2 GB", labels=["prod"])
    >>> parse_run_config(config.model_dump_json()) == config
    True

Labels decide which launch targets may take a run (see ``flowrelay.core.labels``); the run config's
type must fit the target's kind (``UniversalRun`` fits every kind).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flowrelay.core.modeling import Model, ModelUnion

_ENV_NAME = re.compile(r"^[^=\x00]+$")
_K8S_CPU = re.compile(r"^(\d+(\.\d+)?|\.\d+)m?$")
_K8S_MEMORY = re.compile(r"^(\d+(\.\d+)?|\.\d+)([eE]\d+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")
_ECS_CPU = re.compile(r"^(\d+|\d+(\.\d+)?\s*vcpu)$", re.IGNORECASE)
_ECS_MEMORY = re.compile(r"^(\d+|\d+(\.\d+)?\s*gb)$", re.IGNORECASE)
_TASK_DEFINITION_ARN = re.compile(
    r"^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition/[A-Za-z0-9_-]{1,255}(:\d+)?$"
)
_LEADING_NUMBER = re.compile(r"\d*\.?\d+")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")


class _RunConfigBase(Model):
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
            for label in labels:
                if not isinstance(label, str) or not label.strip():
                    raise ValueError(f"each label must be a non-empty string, got {label!r}")
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


class UniversalRun(_RunConfigBase):
    """Runs on any kind of launch target with that target's defaults; only env and labels."""

    type: Literal["UniversalRun"] = "UniversalRun"
    target_kinds: ClassVar[frozenset[str]] = frozenset({"ecs", "kubernetes", "local", "docker"})


class LocalRun(_RunConfigBase):
    """Runs as a local process (the dev stack's local target)."""

    type: Literal["LocalRun"] = "LocalRun"
    target_kinds: ClassVar[frozenset[str]] = frozenset({"local"})

    working_dir: str | None = Field(default=None, description="Directory the run starts in.")


class DockerRun(_RunConfigBase):
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


class KubernetesRun(_RunConfigBase):
    """Runs as a Kubernetes Job (the job template is merged with these fields)."""

    type: Literal["KubernetesRun"] = "KubernetesRun"
    target_kinds: ClassVar[frozenset[str]] = frozenset({"kubernetes"})

    job_template_path: str | None = Field(
        default=None, min_length=1, description="Job template file: local path, s3:// or https://."
    )
    job_template: dict[str, Any] | None = Field(
        default=None, description="Job template, as a dict or a YAML string."
    )
    image: str | None = Field(default=None, min_length=1)
    cpu_limit: str | None = Field(default=None, description="Kubernetes CPU quantity, e.g. '2'.")
    cpu_request: str | None = Field(default=None, description="e.g. '500m'.")
    memory_limit: str | None = Field(default=None, description="e.g. '4Gi'.")
    memory_request: str | None = Field(default=None, description="e.g. '512Mi'.")
    service_account_name: str | None = Field(default=None, min_length=1)
    image_pull_secrets: list[str] | None = Field(
        default=None, description="Names of Kubernetes secrets used to pull the image."
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None

    @field_validator("cpu_limit", "cpu_request", mode="before")
    @classmethod
    def _check_cpu(cls, value: Any, info: Any) -> Any:
        return _quantity(
            value,
            _K8S_CPU,
            info.field_name,
            "a Kubernetes CPU quantity such as '2', '1.5' or '500m'",
        )

    @field_validator("memory_limit", "memory_request", mode="before")
    @classmethod
    def _check_memory(cls, value: Any, info: Any) -> Any:
        return _quantity(
            value,
            _K8S_MEMORY,
            info.field_name,
            "a Kubernetes memory quantity such as '512Mi', '2Gi' or '1G'",
        )

    @field_validator("job_template", mode="before")
    @classmethod
    def _parse_job_template(cls, value: Any) -> Any:
        if isinstance(value, str):
            import yaml  # only for templates given as text; keeps the import light

            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise ValueError(f"job_template is not valid YAML: {exc}") from None
            if not isinstance(value, dict):
                raise ValueError("job_template YAML must hold a mapping (a Job manifest)")
        return value

    @field_validator("image_pull_secrets", mode="before")
    @classmethod
    def _split_pull_secrets(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(f"image_pull_secrets must be a list of secret names, not {value!r}")
        return value

    @model_validator(mode="after")
    def _one_template_source(self) -> KubernetesRun:
        if self.job_template is not None and self.job_template_path is not None:
            raise ValueError("give job_template or job_template_path, not both")
        return self


class ECSRun(_RunConfigBase):
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
        return _quantity(value, _ECS_CPU, "cpu", "CPU units such as 1024 or vCPUs such as '1 vcpu'")

    @field_validator("memory", mode="before")
    @classmethod
    def _check_memory(cls, value: Any) -> Any:
        return _quantity(value, _ECS_MEMORY, "memory", "MiB such as 2048 or GB such as '2 GB'")

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


RunConfig = Annotated[
    UniversalRun | LocalRun | DockerRun | KubernetesRun | ECSRun, Field(discriminator="type")
]
RUN_CONFIG_TYPES: tuple[type[_RunConfigBase], ...] = (
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


def _quantity(value: Any, pattern: re.Pattern[str], field: str, expected: str) -> Any:
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


__all__ = [
    "RUN_CONFIG_TYPES",
    "DockerRun",
    "ECSRun",
    "KubernetesRun",
    "LocalRun",
    "RunConfig",
    "UniversalRun",
    "parse_run_config",
    "run_config_json_schema",
]
