"""Ephemeral Dask clusters on Kubernetes for runs on Kubernetes targets: dask-kubernetes's
``KubeCluster`` (a ``DaskCluster`` resource the dask-kubernetes operator turns into a scheduler
pod and service and worker pods), in the run's namespace, named and labelled after the run; and
the sweep that removes whatever such a cluster left behind.

What flowrelay supplies (``cluster_supply``):

- **Defaults** (the flow's ``cluster_kwargs`` win): the run's image (so the scheduler and
  workers run the flow's code and the runner's versions of dask and distributed);
  ``idle_timeout`` of 300 seconds, the last resort that bounds the cost of a cluster nobody
  closed.
- **Enforced**: ``name`` from the run and attempt (``flowrelay.core.clusters.cluster_name``),
  the run's ``namespace``, ``shutdown_on_close=True``; a ``custom_cluster_spec`` (the seeds'
  ``scheduler_spec_file``/``worker_spec_file``) gets that name and the run's labels.

``sweep`` deletes the ``DaskCluster`` (its pods and services go with it, by owner reference) and
then any pod or service still labelled ``dask.org/cluster-name=<name>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrelay.core.clusters import KUBE_CLUSTER, ClusterSupply, ClusterSweep, cluster_name
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import Swept
from flowrelay.launchers.kubernetes.client import KubernetesApi
from flowrelay.launchers.kubernetes.names import run_labels

#: The dask-kubernetes operator's resource and the label it puts on everything of a cluster.
DASK_GROUP = "kubernetes.dask.org"
DASK_VERSION = "v1"
CLUSTER_LABEL = "dask.org/cluster-name"
IDLE_TIMEOUT_SECONDS = 300


def cluster_supply(
    run: FlowRun, target: Target, infrastructure: Mapping[str, Any]
) -> ClusterSupply:
    """What a KubeCluster created by the run's current attempt gets from its Kubernetes
    ``target`` and its launch (``infrastructure``, as recorded)."""
    from flowrelay.launchers.kubernetes.launcher import KubernetesLaunched, KubernetesLauncher
    from flowrelay.launchers.kubernetes.manifest import kubernetes_run

    settings = KubernetesLauncher.settings(target)
    launched = KubernetesLaunched.model_validate(infrastructure)
    attempt = launched.attempt or run.attempt
    name = cluster_name(run.run_id, attempt)
    labels = {**run_labels(run.run_id, attempt, run.flow_name), CLUSTER_LABEL: name}
    defaults: dict[str, Any] = {"idle_timeout": IDLE_TIMEOUT_SECONDS}
    image = kubernetes_run(run).image or settings.image
    if image:
        defaults["image"] = image
    return ClusterSupply(
        classes=[KUBE_CLUSTER],
        sweep=ClusterSweep(kind="kubernetes", name=name, cluster_class=KUBE_CLUSTER),
        defaults=defaults,
        enforced={"name": name, "namespace": launched.namespace, "shutdown_on_close": True},
        spec_overrides={
            "custom_cluster_spec": {
                "metadata": {"name": name, "namespace": launched.namespace, "labels": labels},
                # The scheduler's service finds its pod by the cluster's name, which the spec
                # (written before the run had one) cannot know.
                "spec": {"scheduler": {"service": {"selector": {CLUSTER_LABEL: name}}}},
            }
        },
    )


def sweep(api: KubernetesApi, namespace: str, name: str) -> Swept:
    """Delete cluster ``name``'s ``DaskCluster`` in ``namespace`` (the run's), then any of its
    pods and services still there."""
    swept = Swept(stop_noun="pod", remove_verb="deleted", remove_noun="object")
    if api.delete_custom(DASK_GROUP, DASK_VERSION, "daskclusters", namespace, name):
        swept.removed.append(f"DaskCluster {namespace}/{name}")
    selector = f"{CLUSTER_LABEL}={name}"
    for pod in api.list_pods(namespace, selector):
        metadata = pod.get("metadata") or {}
        if metadata.get("deletionTimestamp"):
            continue
        if api.delete_pod(namespace, str(metadata.get("name"))):
            swept.stopped.append(f"pod {metadata.get('name')}")
    for service in api.list_services(namespace, selector):
        metadata = service.get("metadata") or {}
        if api.delete_service(namespace, str(metadata.get("name"))):
            swept.removed.append(f"service {metadata.get('name')}")
    return swept
