"""Routing: which launch target takes a run.

A target is the serverless stand-in for an agent: a named place runs can go, with a kind (the
infrastructure its launcher starts), labels, and the settings that launcher needs (validated by
the launcher of its kind: ``flowrelay.launchers.kinds.checked_target``). ``choose_target`` applies
the label rule and the run-config kind rule, and says in words why no target fits.

The label rule (docs/run-configs.md): a target may take a run when the target's labels are a
superset of the run's labels. An empty label set counts as a label of its own: a run with no
labels goes only to targets with no labels.

>>> match_labels(target_labels=["dev", "staging", "ml"], run_labels=["dev", "ml"]).matches
True
>>> match_labels(target_labels=["dev", "staging"], run_labels=["dev", "ml"]).reason
'missing labels: ml'
>>> ecs = Target(name="fargate", kind="ecs", labels=["prod"], settings={"cluster": "flows"})
>>> choose_target([ecs], run_labels=["prod", "ml"], run_config=None).reason
"no target fits: 'fargate': missing labels: ml"
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from flowrelay.core.labels import check_labels
from flowrelay.core.modeling import Model
from flowrelay.core.policies import TimeoutOverrides
from flowrelay.core.run_configs import RunConfig, parse_run_config
from flowrelay.core.wording import with_article

#: The kinds of infrastructure a target can name; each has its launcher package.
TargetKind = Literal["ecs", "kubernetes", "local"]


@dataclass(frozen=True, slots=True)
class LabelMatch:
    """The outcome of matching one run against one target; ``reason`` says why not."""

    matches: bool
    missing: frozenset[str]
    reason: str

    def __bool__(self) -> bool:
        return self.matches


def match_labels(target_labels: Iterable[str], run_labels: Iterable[str]) -> LabelMatch:
    """Whether a target with ``target_labels`` may take a run with ``run_labels``, and why not."""
    target, run = frozenset(target_labels), frozenset(run_labels)
    if not run and target:
        return LabelMatch(
            matches=False,
            missing=frozenset(),
            reason=(
                "the run has no labels, and a run with no labels only goes to targets with no "
                f"labels (this target has: {', '.join(sorted(target))})"
            ),
        )
    missing = run - target
    if missing:
        return LabelMatch(False, missing, f"missing labels: {', '.join(sorted(missing))}")
    return LabelMatch(True, frozenset(), "labels match")


class Target(Model):
    """A named launch target. ``settings`` are the launcher's for its ``kind`` (checked by
    ``flowrelay.launchers.kinds.checked_target`` when a target is saved, and by the launcher when it
    launches)."""

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
        return sorted(set(check_labels(labels)))


class TargetChoice(Model):
    target: Target | None
    reason: str


def choose_target(
    targets: Iterable[Target],
    run_labels: Iterable[str],
    run_config: RunConfig | Mapping[str, Any] | None,
    launchable: Collection[str] | None = None,
) -> TargetChoice:
    """The first target (by name) whose labels and kind fit the run, or None with the reason
    each target was passed over. ``launchable``: the kinds this deployment can launch (targets
    of other kinds are passed over, saying so); all kinds when None."""
    config_type = _config_type(run_config)
    fits_kind = _kind_rule(run_config)
    reasons = []
    for target in sorted(targets, key=lambda t: t.name):
        match = match_labels(target.labels, run_labels)
        if launchable is not None and target.kind not in launchable:
            reasons.append(f"{target.name!r}: this stack does not launch {target.kind} targets")
        elif not match:
            reasons.append(f"{target.name!r}: {match.reason}")
        elif not fits_kind(target.kind):
            reasons.append(
                f"{target.name!r}: {with_article(config_type)} cannot run on "
                f"{with_article(target.kind)} target"
            )
        else:
            return TargetChoice(target=target, reason=f"labels and kind fit {target.name!r}")
    if not reasons:
        return TargetChoice(target=None, reason="no target fits: there are no targets")
    return TargetChoice(target=None, reason="no target fits: " + "; ".join(reasons))


def unlaunchable(
    run_config: RunConfig | Mapping[str, Any] | None, launchable: Collection[str]
) -> str | None:
    """Why a run with ``run_config`` can never run where only ``launchable`` kinds are launched
    (its type fits none of them); None when some kind fits.

    >>> unlaunchable({"type": "KubernetesRun"}, ["ecs"])
    'a KubernetesRun runs on kubernetes targets, and this stack launches ecs targets'
    """
    fits = _kind_rule(run_config)
    if any(fits(kind) for kind in launchable):
        return None
    config_type = _config_type(run_config)
    kinds = sorted(kind for kind in ("ecs", "kubernetes", "local", "docker") if fits(kind))
    return (
        f"{with_article(config_type)} runs on {' or '.join(kinds)} targets, and this stack "
        f"launches {' and '.join(sorted(launchable))} targets"
    )


def _config_type(run_config: RunConfig | Mapping[str, Any] | None) -> str:
    if run_config is None:
        return "UniversalRun"
    if isinstance(run_config, Mapping):
        return str(run_config.get("type", "UniversalRun"))
    return run_config.type


def _kind_rule(run_config: RunConfig | Mapping[str, Any] | None) -> Callable[[str], bool]:
    if run_config is None:
        return lambda kind: True
    config = parse_run_config(dict(run_config)) if isinstance(run_config, Mapping) else run_config
    return config.fits
