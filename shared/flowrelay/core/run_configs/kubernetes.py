"""``KubernetesRun``: a run as a Kubernetes Job."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from flowrelay.core.run_configs.base import RunConfigBase, quantity

_K8S_CPU = re.compile(r"^(\d+(\.\d+)?|\.\d+)m?$")
_K8S_MEMORY = re.compile(r"^(\d+(\.\d+)?|\.\d+)([eE]\d+|Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?$")


class KubernetesRun(RunConfigBase):
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
        return quantity(
            value,
            _K8S_CPU,
            info.field_name,
            "a Kubernetes CPU quantity such as '2', '1.5' or '500m'",
        )

    @field_validator("memory_limit", "memory_request", mode="before")
    @classmethod
    def _check_memory(cls, value: Any, info: Any) -> Any:
        return quantity(
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
