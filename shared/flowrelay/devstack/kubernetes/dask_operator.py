"""The Dask Kubernetes operator, emulated for the dev stack: what dask-kubernetes's controller
(``dask_kubernetes.operator.controller``, kopf) does with ``DaskCluster``, ``DaskWorkerGroup``
and ``DaskAutoscaler`` objects, done by polling the dev stack's API from the job executor's
thread, so that ``dask_kubernetes.operator.KubeCluster`` works against it as against a cluster
with the operator installed.

Why not the real operator: kopf lives on watch streams (list, then ``?watch=true`` from a
resourceVersion, with bookmarks, 410 Gone and resumption), which the dev stack's API does not
serve; and the real controller makes Deployments (the dev stack has no Deployment or ReplicaSet
controller), a PodDisruptionBudget, and reaches each scheduler by its Service's DNS name
(``<cluster>-scheduler.<namespace>``), which nothing resolves here. docs/devstack.md says more.

What is emulated, as the real controller 2026.3 does it:

- a new DaskCluster gets ``status.phase`` Created, then its scheduler pod (labels
  ``dask.org/cluster-name``, ``dask.org/component=scheduler``), its Service
  ``<cluster>-scheduler`` (the cluster's ``spec.scheduler.service``) and the DaskWorkerGroup
  ``<cluster>-default`` (``spec.worker``), and Pending; Running once the Service exists;
- a DaskWorkerGroup is adopted by its cluster and keeps ``spec.worker.replicas`` worker pods
  named ``<group>-worker-<10 hex>`` (labels ``dask.org/workergroup-name``,
  ``dask.org/component=worker``), with ``DASK_WORKER_NAME`` and ``DASK_SCHEDULER_ADDRESS``;
  fewer replicas retire workers through the scheduler (``workers_to_close``, then
  ``retire_workers``, the controller's RPC path), newest first when the scheduler cannot say;
- a change of a DaskCluster's ``spec.worker.replicas`` scales its default group;
- a DaskAutoscaler is adopted by its cluster; every 5 s the scheduler's ``adaptive_target``
  sets the default group's replicas within ``minimum``/``maximum`` (at most a quarter fewer at
  a time, then 15 s of cooldown in the ``kubernetes.dask.org/cooldown-until`` annotation);
- ``spec.idleTimeout``: a cluster whose scheduler is idle for longer is deleted;
- deleting a DaskCluster deletes everything above through owner references (the API's garbage
  collector; pods gracefully, through the kubelet).

Where it differs: pods are made directly, owned by the DaskCluster (scheduler) or the
DaskWorkerGroup (workers), not through Deployments and ReplicaSets, so a scheduler or worker
whose process exits is not replaced; the Service's cluster IP is the scheduler pod's own
loopback address (there is no kube-proxy), so the Service is made once that pod has an IP; and
workers are given ``tcp://<cluster IP>:<port>`` where the controller writes the Service's DNS
name. Its log lines say "dask operator (emulated)".

The kubelet (``jobs.py``) runs the scheduler and worker containers as it runs an ECS task's
(``devstack/dask_tasks.py``): the operator's pod specs give only ``args``, which the Dask image's
entrypoint runs; ``dask-scheduler``/``dask-worker`` (console scripts distributed 2026 no longer
has) become this Python's ``dask scheduler``/``dask worker``, listening on the pod's own
loopback address.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from flowrelay.devstack.kubernetes.client import ApiClient, KubernetesCallError
from flowrelay.devstack.kubernetes.objects import DASK_GROUP

API = f"/apis/{DASK_GROUP}/v1"
SAY = "dask operator (emulated)"
CLUSTER_LABEL = "dask.org/cluster-name"
COMPONENT_LABEL = "dask.org/component"
GROUP_LABEL = "dask.org/workergroup-name"
COOLDOWN_ANNOTATION = f"{DASK_GROUP}/cooldown-until"
#: Annotations the controller does not copy from a cluster to what it makes (kopf's, kubectl's).
IGNORED_ANNOTATIONS = ("kopf.zalando.org", "kubectl.kubernetes.io")
#: The controller's timers (``@kopf.timer(interval=5.0)``) and the autoscaler's cooldown.
TIMER_SECONDS = 5.0
COOLDOWN_SECONDS = 15.0
NAME_CHARACTERS = "bcdfghjklmnpqrstvwxz2456789"
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
    """Run one call to a scheduler in a loop of its own (this thread has none)."""

    async def bounded() -> T:
        return await asyncio.wait_for(coroutine, timeout)

    return asyncio.run(bounded())


class DaskOperator:
    """The Dask operator's emulation (see the module docstring): ``step`` is one pass over the
    Dask objects of the API ``api`` speaks to, with the controllers' credentials."""

    def __init__(
        self,
        api: ApiClient,
        say: Callable[[str], None],
        *,
        timer_seconds: float = TIMER_SECONDS,
        scheduler_timeout: float = 10.0,
    ) -> None:
        self.api = api
        self.say = say
        self.timer_seconds = timer_seconds
        self.scheduler_timeout = scheduler_timeout
        #: The ``spec.worker.replicas`` of each DaskCluster (by uid) last seen: a change scales
        #: its default group (kopf keeps this in an annotation; an emulation restarts empty).
        self._cluster_replicas: dict[str, Any] = {}
        self._timers: dict[str, float] = {}

    # --- the pass ----------------------------------------------------------------------------

    def step(self) -> bool:
        """One pass; True when it changed something."""
        clusters = self._items(f"{API}/daskclusters")
        groups = self._items(f"{API}/daskworkergroups")
        scalers = self._items(f"{API}/daskautoscalers")
        if not (clusters or groups or scalers):
            self._cluster_replicas.clear()
            self._timers.clear()
            return False
        selector = urlencode({"labelSelector": CLUSTER_LABEL})
        pods = self._items(f"/api/v1/pods?{selector}")
        services = self._items(f"/api/v1/services?{selector}")
        changed = False
        for cluster in clusters:
            changed |= self._cluster(cluster, pods, services, groups)
        for group in groups:
            changed |= self._group(group, clusters, pods, services)
        for scaler in scalers:
            changed |= self._autoscaler(scaler, clusters, groups, pods, services)
        alive = {obj["metadata"]["uid"] for obj in clusters + scalers}
        for key in [key for key in self._timers if key.split(":", 1)[1] not in alive]:
            del self._timers[key]
        for uid in [uid for uid in self._cluster_replicas if uid not in alive]:
            del self._cluster_replicas[uid]
        return changed

    def _items(self, path: str) -> list[dict[str, Any]]:
        return list(self.api.call("GET", path).get("items") or [])

    # --- DaskCluster -------------------------------------------------------------------------

    def _cluster(
        self,
        cluster: dict[str, Any],
        pods: list[dict[str, Any]],
        services: list[dict[str, Any]],
        groups: list[dict[str, Any]],
    ) -> bool:
        meta, spec = cluster["metadata"], cluster.get("spec") or {}
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if meta.get("deletionTimestamp"):
            return False
        path = f"{API}/namespaces/{namespace}/daskclusters/{quote(name)}"
        phase = (cluster.get("status") or {}).get("phase")
        changed = False
        if phase is None:
            self.say(f"{SAY}: DaskCluster {name} created in {namespace}")
            self._patch(path, {"status": {"phase": "Created"}})
            phase, changed = "Created", True
        if phase == "Created":
            self.say(f"{SAY}: creating the components of DaskCluster {namespace}/{name}")
            if not _members(pods, namespace, name, "scheduler"):
                self._create_scheduler(cluster)
            if not any(_named(g, namespace, f"{name}-default") for g in groups):
                self._create_default_group(cluster)
            self._cluster_replicas[uid] = (spec.get("worker") or {}).get("replicas")
            self._patch(path, {"status": {"phase": "Pending"}})
            return True
        if phase not in ("Pending", "Running"):
            return changed
        service = next(
            (s for s in services if _named(s, namespace, f"{name}-scheduler")),
            None,
        )
        if service is None:
            scheduler = _members(pods, namespace, name, "scheduler")
            address = ((scheduler[0].get("status") or {}).get("podIP")) if scheduler else None
            if address:
                service = self._create_service(cluster, str(address))
                changed = True
        if service is not None and phase == "Pending":
            # The controller's Service status handler: a LoadBalancer without ingress (there is
            # no load balancer controller here) keeps its cluster Pending.
            balanced = (service.get("spec") or {}).get("type") != "LoadBalancer" or (
                (service.get("status") or {}).get("loadBalancer") or {}
            ).get("ingress")
            if balanced:
                self._patch(path, {"status": {"phase": "Running"}})
                self.say(f"{SAY}: DaskCluster {namespace}/{name} running")
                changed = True
        replicas = (spec.get("worker") or {}).get("replicas")
        seen = self._cluster_replicas.get(uid, replicas)
        self._cluster_replicas[uid] = replicas
        if replicas != seen and isinstance(replicas, int):
            group_path = f"{API}/namespaces/{namespace}/daskworkergroups/{quote(name)}-default"
            with _suppress_missing():
                self._patch(group_path, {"spec": {"worker": {"replicas": replicas}}})
                changed = True
        changed |= self._idle_check(cluster, service)
        return changed

    def _create_scheduler(self, cluster: dict[str, Any]) -> None:
        meta, spec = cluster["metadata"], cluster.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        scheduler = spec.get("scheduler") or {}
        labels, annotations = _inherited(meta, scheduler.get("metadata") or {})
        labels |= {
            CLUSTER_LABEL: name,
            COMPONENT_LABEL: "scheduler",
            "sidecar.istio.io/inject": "false",
        }
        # The pod of the Deployment the controller makes, named as a ReplicaSet names its pods.
        pod_name = f"{name}-scheduler-{_random(10)}-{_random(5)}"
        pod = {
            "metadata": {
                "name": pod_name,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [_owner(cluster, "DaskCluster")],
            },
            "spec": copy.deepcopy(scheduler.get("spec") or {}),
        }
        self.api.call("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
        self.say(f"{SAY}: scheduler pod {pod_name} created in {namespace}")

    def _create_service(self, cluster: dict[str, Any], address: str) -> dict[str, Any]:
        meta, spec = cluster["metadata"], cluster.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        scheduler = spec.get("scheduler") or {}
        labels, annotations = _inherited(meta, scheduler.get("metadata") or {})
        labels |= {CLUSTER_LABEL: name, COMPONENT_LABEL: "scheduler"}
        service_spec = copy.deepcopy(scheduler.get("service") or {})
        # No kube-proxy: the cluster IP is the scheduler pod's own address, where it listens.
        service_spec["clusterIP"] = address
        service_spec.pop("clusterIPs", None)
        body = {
            "metadata": {
                "name": f"{name}-scheduler",
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [_owner(cluster, "DaskCluster")],
            },
            "spec": service_spec,
        }
        created: dict[str, Any] = self.api.call(
            "POST", f"/api/v1/namespaces/{namespace}/services", body
        )
        self.say(f"{SAY}: scheduler service {name}-scheduler created in {namespace} ({address})")
        return created

    def _create_default_group(self, cluster: dict[str, Any]) -> None:
        meta, spec = cluster["metadata"], cluster.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        worker = spec.get("worker") or {}
        labels, annotations = _inherited(meta, worker.get("metadata") or {})
        body = {
            "apiVersion": f"{DASK_GROUP}/v1",
            "kind": "DaskWorkerGroup",
            "metadata": {
                "name": f"{name}-default",
                "labels": labels | {CLUSTER_LABEL: name, COMPONENT_LABEL: "workergroup"},
                "annotations": annotations,
            },
            "spec": {"cluster": name, "worker": copy.deepcopy(worker)},
        }
        self.api.call("POST", f"{API}/namespaces/{namespace}/daskworkergroups", body)
        self.say(f"{SAY}: worker group {name}-default created in {namespace}")

    def _idle_check(self, cluster: dict[str, Any], service: dict[str, Any] | None) -> bool:
        """``spec.idleTimeout``: delete a cluster whose scheduler has been idle for longer."""
        meta = cluster["metadata"]
        timeout = (cluster.get("spec") or {}).get("idleTimeout") or 0
        if not timeout or service is None or not self._timer(f"idle:{meta['uid']}"):
            return False
        address = _scheduler_address(service, "tcp-comm")
        if address is None:
            return False
        try:
            idle_since = _run(_scheduler_call(address, "check_idle"), self.scheduler_timeout)
        except Exception as exc:
            self.say(f"{SAY}: cannot reach the scheduler of {meta['name']}: {exc!r}")
            return False
        if idle_since and time.time() > float(idle_since) + float(timeout):
            path = f"{API}/namespaces/{meta['namespace']}/daskclusters/{quote(meta['name'])}"
            with _suppress_missing():
                self.api.call("DELETE", path)
            self.say(f"{SAY}: DaskCluster {meta['name']} idle for {timeout} s: deleted")
            return True
        return False

    # --- DaskWorkerGroup ---------------------------------------------------------------------

    def _group(
        self,
        group: dict[str, Any],
        clusters: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        services: list[dict[str, Any]],
    ) -> bool:
        meta, spec = group["metadata"], group.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        if meta.get("deletionTimestamp"):
            return False
        cluster_name = str(spec.get("cluster") or "")
        cluster = next((c for c in clusters if _named(c, namespace, cluster_name)), None)
        if cluster is None or cluster["metadata"].get("deletionTimestamp"):
            return False  # the controller's handler fails and is retried; so is this
        changed = self._adopt(group, cluster, "daskworkergroups")
        workers = [
            pod
            for pod in _members(pods, namespace, cluster_name, "worker")
            if (pod["metadata"].get("labels") or {}).get(GROUP_LABEL) == name
        ]
        wanted = (spec.get("worker") or {}).get("replicas")
        wanted = wanted if isinstance(wanted, int) and wanted >= 0 else 0
        if wanted > len(workers):
            service = next(
                (s for s in services if _named(s, namespace, f"{cluster_name}-scheduler")), None
            )
            address = _scheduler_address(service, "tcp-comm") if service else None
            if address is None:
                return changed  # workers wait for the scheduler's address
            for _ in range(wanted - len(workers)):
                self._create_worker(group, cluster, address)
            self.say(f"{SAY}: scaled worker group {name} up to {wanted} workers")
            return True
        if wanted < len(workers):
            retired = self._retire(
                workers, len(workers) - wanted, namespace, cluster_name, services
            )
            for pod_name in retired:
                with _suppress_missing():
                    self.api.call(
                        "DELETE", f"/api/v1/namespaces/{namespace}/pods/{quote(pod_name)}"
                    )
            self.say(
                f"{SAY}: scaled worker group {name} down to {wanted} workers "
                f"(closed {', '.join(retired)})"
            )
            return True
        return changed

    def _create_worker(self, group: dict[str, Any], cluster: dict[str, Any], address: str) -> None:
        meta, spec = group["metadata"], group.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        worker = spec.get("worker") or {}
        labels, annotations = _inherited(meta, worker.get("metadata") or {})
        labels |= {
            CLUSTER_LABEL: str(spec.get("cluster")),
            GROUP_LABEL: name,
            COMPONENT_LABEL: "worker",
            "sidecar.istio.io/inject": "false",
        }
        for key, value in (cluster["metadata"].get("labels") or {}).items():
            labels.setdefault(key, value)  # kopf.label: the cluster's labels, not overriding
        worker_name = f"{name}-worker-{uuid.uuid4().hex[:10]}"
        pod_spec = copy.deepcopy(worker.get("spec") or {})
        for container in pod_spec.get("containers") or []:
            env = container.setdefault("env", None) or []
            names = {item.get("name") for item in env if isinstance(item, dict)}
            if "DASK_WORKER_NAME" not in names:
                env.append({"name": "DASK_WORKER_NAME", "value": worker_name})
            if "DASK_SCHEDULER_ADDRESS" not in names:
                # The controller writes tcp://<cluster>-scheduler.<ns>.svc.cluster.local:8786;
                # there is no cluster DNS here, so the Service's cluster IP instead.
                env.append({"name": "DASK_SCHEDULER_ADDRESS", "value": address})
            container["env"] = env
        pod = {
            "metadata": {
                "name": worker_name,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [_owner(group, "DaskWorkerGroup")],
            },
            "spec": pod_spec,
        }
        self.api.call("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
        self.say(f"{SAY}: worker pod {worker_name} created in {namespace}")

    def _retire(
        self,
        workers: list[dict[str, Any]],
        count: int,
        namespace: str,
        cluster_name: str,
        services: list[dict[str, Any]],
    ) -> list[str]:
        """The names of ``count`` workers to close: those the scheduler retires (its
        ``workers_to_close`` then ``retire_workers``, as the controller asks), then the newest
        (the controller's last-in-first-out fallback)."""
        names = {pod["metadata"]["name"] for pod in workers}
        service = next(
            (s for s in services if _named(s, namespace, f"{cluster_name}-scheduler")), None
        )
        address = _scheduler_address(service, "tcp-comm") if service else None
        chosen: list[str] = []
        if address is not None:
            try:
                retired = _run(_retire_workers(address, count), self.scheduler_timeout)
                chosen = [name for name in retired if name in names][:count]
            except Exception as exc:
                self.say(
                    f"{SAY}: retiring workers through the scheduler of {cluster_name} failed "
                    f"({exc!r}): falling back to last-in-first-out"
                )
        newest = sorted(
            workers,
            key=lambda pod: (pod["metadata"].get("creationTimestamp", ""), pod["metadata"]["name"]),
            reverse=True,
        )
        for pod in newest:
            if len(chosen) >= count:
                break
            if pod["metadata"]["name"] not in chosen:
                chosen.append(pod["metadata"]["name"])
        return chosen

    # --- DaskAutoscaler ----------------------------------------------------------------------

    def _autoscaler(
        self,
        scaler: dict[str, Any],
        clusters: list[dict[str, Any]],
        groups: list[dict[str, Any]],
        pods: list[dict[str, Any]],
        services: list[dict[str, Any]],
    ) -> bool:
        meta, spec = scaler["metadata"], scaler.get("spec") or {}
        namespace, name = meta["namespace"], meta["name"]
        if meta.get("deletionTimestamp"):
            return False
        cluster_name = str(spec.get("cluster") or "")
        cluster = next((c for c in clusters if _named(c, namespace, cluster_name)), None)
        if cluster is None:
            return False
        changed = self._adopt(scaler, cluster, "daskautoscalers")
        if not self._timer(f"adapt:{meta['uid']}"):
            return changed
        scheduler = _members(pods, namespace, cluster_name, "scheduler")
        if not scheduler or not _ready(scheduler[0]):
            return changed  # "Scheduler not ready, skipping autoscaling"
        group = next((g for g in groups if _named(g, namespace, f"{cluster_name}-default")), None)
        service = next(
            (s for s in services if _named(s, namespace, f"{cluster_name}-scheduler")), None
        )
        address = _scheduler_address(service, "tcp-comm") if service else None
        if group is None or address is None:
            return changed
        cooldown = (meta.get("annotations") or {}).get(COOLDOWN_ANNOTATION)
        if cooldown is not None and time.time() < float(cooldown):
            return changed
        try:
            desired = int(_run(_scheduler_call(address, "adaptive_target"), self.scheduler_timeout))
        except Exception as exc:
            self.say(
                f"{SAY}: unable to get the desired number of workers of {cluster_name}: {exc!r}"
            )
            return changed
        minimum, maximum = spec.get("minimum"), spec.get("maximum")
        if isinstance(minimum, int):
            desired = max(minimum, desired)
        if isinstance(maximum, int):
            desired = min(maximum, desired)
        current = ((group.get("spec") or {}).get("worker") or {}).get("replicas") or 0
        if current > 0:
            desired = max(current - max(int(current * 0.25), 1), desired)
        if desired == current:
            return changed
        group_path = f"{API}/namespaces/{namespace}/daskworkergroups/{quote(cluster_name)}-default"
        self._patch(group_path, {"spec": {"worker": {"replicas": desired}}})
        scaler_path = f"{API}/namespaces/{namespace}/daskautoscalers/{quote(name)}"
        annotation = {COOLDOWN_ANNOTATION: str(time.time() + COOLDOWN_SECONDS)}
        self._patch(scaler_path, {"metadata": {"annotations": annotation}})
        self.say(
            f"{SAY}: autoscaler updated {cluster_name} worker count from {current} to {desired}"
        )
        return True

    # --- helpers -----------------------------------------------------------------------------

    def _patch(self, path: str, patch: Mapping[str, Any]) -> Any:
        return self.api.merge_patch(path, patch)

    def _adopt(self, obj: dict[str, Any], cluster: dict[str, Any], plural: str) -> bool:
        """Make ``cluster`` an owner of ``obj`` (``cluster.adopt``), for cascading deletion."""
        meta = obj["metadata"]
        refs = list(meta.get("ownerReferences") or [])
        if any(ref.get("uid") == cluster["metadata"]["uid"] for ref in refs):
            return False
        path = f"{API}/namespaces/{meta['namespace']}/{plural}/{quote(meta['name'])}"
        with _suppress_missing():
            owners = [*refs, _owner(cluster, "DaskCluster")]
            self._patch(path, {"metadata": {"ownerReferences": owners}})
            self.say(f"{SAY}: {meta['name']} adopted by {cluster['metadata']['name']}")
        return True

    def _timer(self, key: str) -> bool:
        """Whether the timer ``key`` is due (``timer_seconds`` since it was last), starting it."""
        now = time.monotonic()
        due = self._timers.setdefault(key, now + self.timer_seconds)
        if now < due:
            return False
        self._timers[key] = now + self.timer_seconds
        return True


class _suppress_missing:
    """Ignore a 404: what was to change is gone already."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: Any, trace: Any) -> bool:
        return isinstance(error, KubernetesCallError) and error.status == 404


def _named(obj: Mapping[str, Any], namespace: str, name: str) -> bool:
    meta = obj["metadata"]
    return bool(meta.get("namespace") == namespace and meta.get("name") == name)


def _members(
    pods: list[dict[str, Any]], namespace: str, cluster: str, component: str
) -> list[dict[str, Any]]:
    """The pods of ``cluster`` in ``component`` that are not being deleted, oldest first."""
    found = [
        pod
        for pod in pods
        if pod["metadata"].get("namespace") == namespace
        and not pod["metadata"].get("deletionTimestamp")
        and (pod["metadata"].get("labels") or {}).get(CLUSTER_LABEL) == cluster
        and (pod["metadata"].get("labels") or {}).get(COMPONENT_LABEL) == component
    ]
    return sorted(found, key=lambda pod: pod["metadata"].get("creationTimestamp", ""))


def _inherited(
    meta: Mapping[str, Any], extra: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, str]]:
    """The labels and annotations the controller copies from an object to what it makes (with
    those of the spec's own ``metadata`` over them)."""
    labels = dict(meta.get("labels") or {}) | dict(extra.get("labels") or {})
    annotations = {
        key: value
        for key, value in (meta.get("annotations") or {}).items()
        if not key.startswith(IGNORED_ANNOTATIONS)
    } | dict(extra.get("annotations") or {})
    return labels, annotations


def _owner(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """A controlling owner reference to ``obj``, a Dask resource of ``kind`` (listed objects
    carry no kind of their own)."""
    return {
        "apiVersion": f"{DASK_GROUP}/v1",
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _scheduler_address(service: Mapping[str, Any] | None, port_name: str) -> str | None:
    """``tcp://<cluster IP>:<port>`` of the scheduler's Service, None without a cluster IP."""
    spec = (service or {}).get("spec") or {}
    address = spec.get("clusterIP")
    if not address or address == "None":
        return None
    ports = spec.get("ports") or []
    port = next((p.get("port") for p in ports if p.get("name") == port_name), None)
    if port is None and ports:
        port = ports[0].get("port")
    return f"tcp://{address}:{port or 8786}" if address else None


def _random(length: int) -> str:
    return "".join(secrets.choice(NAME_CHARACTERS) for _ in range(length))


async def _scheduler_call(address: str, method: str) -> Any:
    from distributed.core import rpc

    async with rpc(address) as scheduler:  # type: ignore[no-untyped-call]
        return await getattr(scheduler, method)()


async def _retire_workers(address: str, count: int) -> list[str]:
    from distributed.core import rpc

    async with rpc(address) as scheduler:  # type: ignore[no-untyped-call]
        names = list(await scheduler.workers_to_close(n=count, attribute="name"))
        await scheduler.retire_workers(names=names)
        return [str(name) for name in names]
