"""Ephemeral Dask clusters: what flowrelay supplies to the cluster a run's flow creates, and how a
cluster is found again, whatever happened to the runner that created it.

A flow whose executor is ``DaskExecutor(cluster_class="dask_cloudprovider.aws.FargateCluster")``
(or ``dask_kubernetes.operator.KubeCluster``) creates its cluster inside the runner. The launcher
kind of the run (``flowrelay.launchers.kinds.cluster_supply``) says what that cluster gets from
the run's target (``ClusterSupply``): network, roles, image and log group as defaults the flow's
own ``cluster_kwargs`` may override, and what flowrelay enforces because teardown rests on it
(the cluster's name, tags, the marks every task carries, no account-wide clean-up sweep). The
same supply holds a ``ClusterSweep``: what finds everything of that cluster later, recorded on
the run before the cluster is created, so the monitor can sweep it once the run is over.

>>> cluster_name("nightly-etl-2026-11-29", 1)
'frd-nightly-etl-1153765f03-1'
>>> len(cluster_name("r" * 64, 999)) <= MAX_CLUSTER_NAME
True
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from flowrelay.core.modeling import Model

#: ECS's ``startedBy`` holds at most 36 characters, and a cluster's name marks its tasks.
MAX_CLUSTER_NAME = 36
_NOT_NAME = re.compile(r"[^a-z0-9]+")

#: The cluster classes flowrelay knows how to supply, by their import paths.
FARGATE_CLUSTER = "dask_cloudprovider.aws.FargateCluster"
ECS_CLUSTER = "dask_cloudprovider.aws.ECSCluster"
KUBE_CLUSTER = "dask_kubernetes.operator.KubeCluster"
#: Cluster classes that create infrastructure of their own in a cloud account: such a cluster must
#: be supplied by its run's launcher (or it would create roles, networks and clusters of its own,
#: and sweep the whole account on start), so a run on a kind that cannot supply it is refused.
CLOUD_CLUSTERS = (FARGATE_CLUSTER, ECS_CLUSTER, KUBE_CLUSTER)


def cluster_name(run_id: str, attempt: int) -> str:
    """The name of the Dask cluster of one attempt of a run: ``frd-<up to 12 characters of the
    run id>-<10 hex digits of its sha256>-<attempt>``, lowercase letters, digits and dashes (a
    Kubernetes name, an ECS family and ``startedBy`` all take it), at most 36 characters."""
    slug = _NOT_NAME.sub("-", run_id.lower()).strip("-")[:12].strip("-") or "run"
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:10]
    return f"frd-{slug}-{digest}-{attempt}"


class ClusterSweep(Model):
    """A run's Dask cluster as reports name it: the launcher ``kind`` whose sweep finds it and
    the cluster's ``name`` (``cluster_name``). Where to look (the ECS cluster, the namespace)
    is never taken from a report: the launcher reads it from the run's recorded launch, so a
    report cannot point a sweep at anything but its own run's cluster."""

    kind: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=MAX_CLUSTER_NAME)
    cluster_class: str = Field(min_length=1, max_length=256)

    def is_of(self, run_id: str, attempts: int) -> bool:
        """Whether this is the name of one of the first ``attempts`` attempts' clusters of run
        ``run_id`` (what a report about that run may name).

        >>> ClusterSweep(kind="ecs", name=cluster_name("r", 2), cluster_class="x").is_of("r", 2)
        True
        >>> ClusterSweep(kind="ecs", name="flowrelay", cluster_class="x").is_of("r", 2)
        False
        """
        return any(self.name == cluster_name(run_id, n) for n in range(1, max(attempts, 1) + 1))


class ClusterSupply(Model):
    """What a run's launcher kind supplies to the Dask cluster its flow creates.

    ``defaults``: what the cluster gets unless the flow's ``cluster_kwargs`` say otherwise
    (network, roles, image, log group). ``enforced``: what flowrelay's teardown rests on, which
    the flow cannot change (a mapping there, such as tags, is merged over the flow's own).
    """

    classes: list[str]
    sweep: ClusterSweep
    defaults: dict[str, Any] = Field(default_factory=dict)
    enforced: dict[str, Any] = Field(default_factory=dict)
    required: dict[str, str] = Field(
        default_factory=dict,
        description="What the cluster's keyword arguments must hold once merged (without it "
        "the cluster class would create, or look up account-wide, something of its own), each "
        "with where it is set.",
    )
    spec_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Merged into a resource spec the flow gives (a mapping, or the path of a "
        "YAML file), when it gives one: e.g. the name and labels of a custom DaskCluster.",
    )

    def merged(self, cluster_kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """The cluster's keyword arguments: the defaults, the flow's ``cluster_kwargs`` over
        them, and the enforced ones over both; with one line for each of the flow's own values
        that flowrelay replaced (nothing is changed silently).

        >>> supply = ClusterSupply(classes=[], sweep=ClusterSweep(kind="ecs", name="c",
        ...     cluster_class="x"), defaults={"image": "a"}, enforced={"skip_cleanup": True,
        ...     "tags": {"run": "r"}})
        >>> supply.merged({"image": "b", "skip_cleanup": False, "tags": {"team": "t"}})[0]
        {'image': 'b', 'skip_cleanup': True, 'tags': {'team': 't', 'run': 'r'}}
        """
        kwargs = {**self.defaults, **cluster_kwargs}
        replaced: list[str] = []
        for key, value in self.enforced.items():
            own = cluster_kwargs.get(key)
            if isinstance(value, Mapping) and isinstance(own, Mapping):
                clashes = sorted(k for k in value if k in own and own[k] != value[k])
                kwargs[key] = {**own, **value}
                replaced.extend(
                    f"{key}[{k!r}]={own[k]!r} replaced by {value[k]!r}" for k in clashes
                )
            else:
                if key in cluster_kwargs and own != value:
                    replaced.append(f"{key}={own!r} replaced by {value!r}")
                kwargs[key] = value
        for key, override in self.spec_overrides.items():
            spec = kwargs.get(key)
            if spec is None:
                continue
            if isinstance(spec, str):
                spec = _load_yaml(spec, key)
            if not isinstance(spec, Mapping):
                raise ValueError(f"{key} must be a mapping or a YAML file's path, got {spec!r}")
            kwargs[key] = _deep_merged(spec, override)
        return kwargs, replaced


def _deep_merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = _deep_merged(old, value)
        else:
            merged[key] = value
    return merged


def _load_yaml(path: str, key: str) -> Any:
    import yaml

    try:
        with open(path, encoding="utf-8") as file:
            return yaml.safe_load(file)
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{key}: cannot read {path!r}: {exc}") from None


ClusterPhase = Literal["starting", "started", "scaled", "closed", "failed", "swept"]


__all__ = [
    "CLOUD_CLUSTERS",
    "ECS_CLUSTER",
    "FARGATE_CLUSTER",
    "KUBE_CLUSTER",
    "MAX_CLUSTER_NAME",
    "ClusterPhase",
    "ClusterSupply",
    "ClusterSweep",
    "cluster_name",
]
