"""Launch targets: the serverless stand-in for an agent. A named place runs can go, with a kind,
labels, and the settings its launcher needs. ``choose_target`` applies the label rule and the
run-config kind rule, and says in words why no target fits.

>>> ecs = Target(name="fargate", kind="ecs", labels=["prod"],
...              settings={"cluster": "flows", "subnets": ["subnet-1"]})
>>> choose_target([ecs], run_labels=["prod", "ml"], run_config=None).reason
"no target fits: 'fargate': missing labels: ml"
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flowrelay.core.labels import match_labels
from flowrelay.core.modeling import Model
from flowrelay.core.run_configs import RunConfig
from flowrelay.core.timeouts import TimeoutOverrides

TargetKind = Literal["ecs", "kubernetes", "local"]


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


class LocalSettings(Model):
    """A local target: runs as processes on the machine hosting the dev stack."""

    model_config = ConfigDict(extra="forbid")

    working_dir: str | None = None


class KubernetesSettings(Model):
    model_config = ConfigDict(extra="forbid")

    namespace: str = "default"
    image: str | None = None
    service_account_name: str | None = None
    kubeconfig: str | None = None
    eks_cluster: str | None = None


_SETTINGS: dict[str, type[BaseModel]] = {
    "ecs": EcsSettings,
    "local": LocalSettings,
    "kubernetes": KubernetesSettings,
}


class Target(Model):
    """A named launch target."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    kind: TargetKind
    labels: list[str] = Field(default_factory=list)
    settings: dict[str, Any] = Field(default_factory=dict)
    timeouts: TimeoutOverrides | None = Field(
        default=None, description="Start and heartbeat timeouts for runs launched here."
    )

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        return sorted(set(labels))

    @model_validator(mode="after")
    def _settings_fit_kind(self) -> Target:
        model = _SETTINGS[self.kind].model_validate(self.settings)
        self.settings = model.model_dump(exclude_none=True)
        return self

    def typed_settings(self) -> Any:
        """The settings as the model of this target's kind (e.g. ``EcsSettings``)."""
        return _SETTINGS[self.kind].model_validate(self.settings)


class TargetChoice(Model):
    target: Target | None
    reason: str


def choose_target(
    targets: Iterable[Target],
    run_labels: Iterable[str],
    run_config: RunConfig | Mapping[str, Any] | None,
) -> TargetChoice:
    """The first target (by name) whose labels and kind fit the run, or None with the reason
    each target was passed over."""
    config_type = _config_type(run_config)
    fits_kind = _kind_rule(run_config)
    reasons = []
    for target in sorted(targets, key=lambda t: t.name):
        match = match_labels(target.labels, run_labels)
        if not match:
            reasons.append(f"{target.name!r}: {match.reason}")
        elif not fits_kind(target.kind):
            reasons.append(f"{target.name!r}: a {config_type} cannot run on a {target.kind} target")
        else:
            return TargetChoice(target=target, reason=f"labels and kind fit {target.name!r}")
    if not reasons:
        return TargetChoice(target=None, reason="no target fits: there are no targets")
    return TargetChoice(target=None, reason="no target fits: " + "; ".join(reasons))


def _config_type(run_config: RunConfig | Mapping[str, Any] | None) -> str:
    if run_config is None:
        return "UniversalRun"
    if isinstance(run_config, Mapping):
        return str(run_config.get("type", "UniversalRun"))
    return run_config.type


def _kind_rule(run_config: RunConfig | Mapping[str, Any] | None) -> Any:
    from flowrelay.core.run_configs import parse_run_config

    if run_config is None:
        return lambda kind: True
    config = parse_run_config(dict(run_config)) if isinstance(run_config, Mapping) else run_config
    return config.fits
