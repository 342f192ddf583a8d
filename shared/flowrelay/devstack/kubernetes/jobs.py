"""Kubernetes Jobs of the dev stack's API, run as local processes: the Job controller, the
scheduler and the kubelet of one node (``flowrelay-dev``), in one thread, through the API over
HTTP as the real ones are.

- **Job controller**: one pod per Job (completions and parallelism 1), named
  ``<job>-<5 random [a-z0-9]>``, with the template's labels, the job-name and controller-uid
  labels and the Job as its controlling owner; another after a failure while ``backoffLimit``
  allows (flowrelay's Jobs have 0); the Job's status as Kubernetes keeps it (startTime, active,
  ready, succeeded, failed, conditions Complete or Failed with Kubernetes's reasons,
  completionTime); ``activeDeadlineSeconds`` (its pods deleted, then Failed DeadlineExceeded);
  ``ttlSecondsAfterFinished`` (the Job deleted, its pods in the background).
- **Scheduler**: a pod whose cpu or memory requests exceed the node's allocatable, or whose
  nodeSelector the node's labels do not match, stays Pending, Unschedulable, with the
  scheduler's message and a FailedScheduling event; others are bound to the node. Only the
  pod's own requests are compared (the node never fills up with other pods).
- **Kubelet**: the pod's first container runs as a local process group, as the dev stack's ECS
  tasks do (``devstack/processes.py``: the guard, the stack's environment and marker), with the
  container's ``command`` and ``args`` (``args`` alone are the command: the dev stack's images
  have no entrypoint; ``$(VAR)`` expanded), ``env`` (values, and ``valueFrom`` secrets, config
  maps and pod fields), ``envFrom`` and ``workingDir``; output to ``<log dir>/<pod name>.log``,
  which ``pods/NAME/log`` reads. Its status goes Pending, Running, Succeeded or Failed with
  the container's waiting, running and terminated states, and the events a kubelet records.
  A memory limit bounds the resident memory of the group (sampled, as for ECS tasks): over it,
  exit code 137, reason OOMKilled. Deleting a pod sends SIGTERM to its group, SIGKILL after its
  grace period, and removes the pod once the process is gone.
- **A pod's network and credentials**: each pod gets a loopback address of its own
  (``POD_NETWORK``, its ``status.podIP``), so pods listen on the same ports side by side; a Dask
  scheduler or worker is made to listen there (``devstack/dask_tasks.py``, as for ECS tasks;
  a Dask command that cannot run here is a StartError saying why). The pod
  reaches the API as pods do: ``KUBERNETES_SERVICE_HOST``/``_PORT``, and its service account's
  token (a TokenRequest bound to the pod, renewed at 80% of its hour) in a kubeconfig named by
  ``KUBECONFIG``, since the token's fixed path on a node cannot be per pod on one machine.
  A readiness probe (HTTP GET or TCP) keeps the pod unready until it first passes.
- **The Dask operator**, emulated (``dask_operator.py``), one pass per step before the rest.

Failures come from real causes, in Kubernetes's words: an image reference that does not parse
(InvalidImageName); an image the dev stack's "registry" does not have (a registry host ending in
``.invalid``, a repository ending in ``no-such-image``, or one of ``missing_images``) is
ErrImagePull, then ImagePullBackOff until it appears (the control plane decides when to give
up); a container with neither command nor args is CreateContainerError (the dev stack has no
images, so it cannot run an image's default command); a missing secret or config map is
CreateContainerConfigError (tried again until it appears); a program that is not found or a
missing workingDir is StartError, exit code 128. ``evict`` does what the kubelet does under
node pressure.

Containers other than the first, init containers, liveness and startup probes, volumes and
restarts (``restartPolicy: OnFailure`` and ``Always`` are treated as Never) are not emulated.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from flowrelay.core.network import is_loopback_host
from flowrelay.devstack.dask_tasks import local_dask_command
from flowrelay.devstack.kubernetes.client import ApiClient, KubernetesCallError
from flowrelay.devstack.kubernetes.dask_operator import DaskOperator
from flowrelay.devstack.kubernetes.quantities import parse_quantity
from flowrelay.devstack.kubernetes.store import timestamp
from flowrelay.devstack.processes import (
    MARKER,
    Lifeline,
    child_environment,
    command_pid,
    group_rss,
    signal_group,
    start_group,
)
from flowrelay.launchers.local.processes import resolve_command

NODE = "flowrelay-dev"
NODE_LABELS = {
    "kubernetes.io/os": "linux",
    "kubernetes.io/arch": "amd64",
    "kubernetes.io/hostname": NODE,
}
DEFAULT_ALLOCATABLE = {"cpu": "4", "memory": "8Gi"}
#: Where pods get their IPs: one loopback address each.
POD_NETWORK = ipaddress.IPv4Network("127.88.0.0/16")
#: How long the token the kubelet asks for a pod's service account lives (refreshed at 80%).
TOKEN_SECONDS = 3600
NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
TERMINAL = ("Succeeded", "Failed")
MISSING_IMAGE_SUFFIX = "no-such-image"
BACKOFF_LIMIT_MESSAGE = "Job has reached the specified backoff limit"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
COMMAND_REQUIRED = (
    "the flowrelay dev stack runs only containers that give a command (or args): container "
    "{container!r} of image {image!r} gives neither, and this machine has no image whose "
    "entrypoint or default command it could run"
)

_DOMAIN = (
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
)
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference: its registry host and repository."""

    host: str
    repository: str
    full: str


def parse_image(image: str) -> ImageReference | None:
    """The image's registry and repository as a container runtime reads them; None when the
    reference does not parse.

    >>> parse_image("python:3.11").full
    'docker.io/library/python:3.11'
    >>> parse_image("Bad Image") is None
    True
    """
    match = _REFERENCE.fullmatch(image)
    if match is None or len(image) > 255:
        return None
    domain, path = match.group("domain"), match.group("path")
    # A first part without '.' or ':' is a registry host only as "localhost" or when it has
    # capitals (a repository may not); otherwise it is Docker Hub's first path component.
    local = domain is not None and not ("." in domain or ":" in domain or domain == "localhost")
    if domain is not None and local and domain.lower() == domain:
        path, domain = f"{domain}/{path}", None
    host = domain or "docker.io"
    if host == "docker.io" and "/" not in path:
        path = f"library/{path}"
    tag = match.group("tag") or ("" if match.group("digest") else "latest")
    suffix = (f":{tag}" if tag else "") + (
        f"@{match.group('digest')}" if match.group("digest") else ""
    )
    return ImageReference(host=host, repository=path, full=f"{host}/{path}{suffix}")


@dataclass
class PodRun:
    """One pod on this node: what its kubelet knows and runs."""

    namespace: str
    name: str
    uid: str
    container: str
    image: str
    grace_seconds: int
    attempts: int = 0
    next_attempt: float = 0.0
    waiting: tuple[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    log_file: IO[bytes] | None = None
    memory_limit: int | None = None
    started_at: str = ""
    term_sent_at: float | None = None
    kill_after: float = 0.0
    killed: bool = False
    out_of_memory: bool = False
    evicted: str | None = None
    finished: bool = False
    events: set[str] = field(default_factory=set)
    pod_ip: str = ""
    probe: dict[str, Any] | None = None
    """The container's readiness probe while it has not passed (HTTP GET or TCP)."""
    ports: dict[str, int] = field(default_factory=dict)
    next_probe: float = 0.0
    ready: bool = False
    kubeconfig: Path | None = None
    token_refresh_at: float = 0.0

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def _parse_time(value: str | None) -> float | None:
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    return None


def _condition(kind: str, status: bool, reason: str = "", message: str = "") -> dict[str, Any]:
    now = timestamp(time.time())
    item: dict[str, Any] = {
        "type": kind,
        "status": "True" if status else "False",
        "lastProbeTime": None,
        "lastTransitionTime": now,
    }
    if reason:
        item["reason"] = reason
    if message:
        item["message"] = message
    return item


class JobExecutor(threading.Thread):
    """Runs the Jobs of the API at ``url`` as local processes (see the module docstring)."""

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str] | None = None,
        stack_env: Callable[[], dict[str, str]],
        log_dir: Path,
        stopping: threading.Event | None = None,
        say: Callable[[str], None] | None = None,
        poll_seconds: float = 0.2,
        memory_seconds: float = 0.2,
        pull_backoff_seconds: float = 2.0,
        allocatable: Mapping[str, str] | None = None,
        shutdown_grace_seconds: float = 5.0,
    ) -> None:
        super().__init__(name="devstack-kubernetes-jobs", daemon=True)
        self.api = ApiClient(url, headers or {})
        self.stack_env = stack_env
        self.log_dir = log_dir
        self.stopping = stopping or threading.Event()
        self.say = say or (lambda line: None)
        self.poll_seconds = poll_seconds
        self.memory_seconds = memory_seconds
        self.pull_backoff_seconds = pull_backoff_seconds
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.allocatable = {
            name: parse_quantity(value)
            for name, value in {**DEFAULT_ALLOCATABLE, **(allocatable or {})}.items()
        }
        #: Images the dev stack's registry does not have, besides the ``.invalid`` hosts and the
        #: ``no-such-image`` repositories (tests add to it, and may remove again).
        self.missing_images: set[str] = set()
        self.runs: dict[tuple[str, str], PodRun] = {}
        self.logs: dict[tuple[str, str], Path] = {}
        self.started_pids: list[int] = []
        self._evictions: dict[tuple[str, str], str] = {}
        self._unschedulable: set[str] = set()
        self._job_started: dict[str, float] = {}
        self._deadlined: set[str] = set()
        self._busy = False
        self._lock = threading.RLock()
        self._lifeline = Lifeline()
        self._memory = threading.Thread(
            target=self._watch_memory, name="devstack-kubernetes-memory", daemon=True
        )
        self._pod_ips = 0
        #: dask-kubernetes's operator, emulated (``dask_operator.py``): its pods run here.
        self.dask_operator = DaskOperator(self.api, self.say)

    # --- for the stack and tests -------------------------------------------------------------

    def busy(self) -> bool:
        """Whether a pod's process runs, or the last step started or changed something."""
        with self._lock:
            return self._busy or any(
                run.process is not None and not run.finished for run in self.runs.values()
            )

    def pid_of_pod(self, namespace: str, name: str) -> int | None:
        """The process id of the pod's container command, while it runs."""
        with self._lock:
            run = self.runs.get((namespace, name))
            guard = run.process.pid if run and run.process and not run.finished else None
        return command_pid(guard) if guard is not None else None

    def read_log(self, namespace: str, pod: str, container: str) -> bytes | None:
        """What the pod's container wrote so far; None if it never started (``pods/log``)."""
        with self._lock:
            path = self.logs.get((namespace, pod))
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError:
            return b""

    def evict(self, namespace: str, pod: str, message: str | None = None) -> None:
        """Evict the pod as the kubelet does under node pressure: its processes killed, the pod
        Failed with reason Evicted and ``message``."""
        with self._lock:
            self._evictions[(namespace, pod)] = message or (
                "The node was low on resource: memory. Threshold quantity: 100Mi, available: 64Mi. "
            )

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> None:
        self._memory.start()
        while not self.stopping.is_set():
            try:
                self.step()
            except Exception as exc:  # keep going: one bad object must not stop the stack
                if self.stopping.is_set():
                    break
                self.say(f"kubernetes: error: {exc!r}")
            self.stopping.wait(self.poll_seconds)
        self.shutdown()

    def step(self) -> None:
        """One pass of the controller, the scheduler and the kubelet."""
        changed = False
        try:
            changed |= self.dask_operator.step()
        except Exception as exc:  # the operator's trouble must not stop the kubelet
            if self.stopping.is_set():
                return
            self.say(f"kubernetes: dask operator (emulated): error: {exc!r}")
        jobs = self.api.call("GET", "/apis/batch/v1/jobs")["items"]
        pods = self.api.call("GET", "/api/v1/pods")["items"]
        for job in jobs:
            changed |= self._control(job, pods)
        pods = self.api.call("GET", "/api/v1/pods")["items"]
        for pod in pods:
            if not (pod.get("spec") or {}).get("nodeName"):
                changed |= self._schedule(pod)
        pods = self.api.call("GET", "/api/v1/pods")["items"]
        present = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") == NODE:
                changed |= self._kubelet(pod)
        with self._lock:
            for key in [k for k in self.runs if k not in present and self.runs[k].finished]:
                del self.runs[key]
            self._busy = changed

    # --- the Job controller ------------------------------------------------------------------

    def _control(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
        meta, spec = job["metadata"], job.get("spec") or {}
        status = job.get("status") or {}
        uid, namespace, name = meta["uid"], meta["namespace"], meta["name"]
        path = f"/apis/batch/v1/namespaces/{namespace}/jobs/{quote(name)}"
        conditions = status.get("conditions") or []
        finished = next(
            (
                c
                for c in conditions
                if c["type"] in ("Complete", "Failed") and c["status"] == "True"
            ),
            None,
        )
        if finished is not None:
            ttl = spec.get("ttlSecondsAfterFinished")
            ended = _parse_time(finished.get("lastTransitionTime"))
            if ttl is not None and ended is not None and time.time() >= ended + int(ttl):
                self.say(f"kubernetes: job {namespace}/{name} deleted {ttl} s after it finished")
                with contextlib.suppress(KubernetesCallError):
                    self.api.call("DELETE", path, {"propagationPolicy": "Background"})
                return True
            return False
        if meta.get("deletionTimestamp"):
            return False
        owned = [
            pod
            for pod in pods
            if (pod["metadata"].get("labels") or {}).get("batch.kubernetes.io/controller-uid")
            == uid
            and any(r.get("uid") == uid for r in pod["metadata"].get("ownerReferences") or [])
        ]
        phases = [(pod.get("status") or {}).get("phase") for pod in owned]
        succeeded = phases.count("Succeeded")
        failed = phases.count("Failed")
        running = [p for p in owned if (p.get("status") or {}).get("phase") not in TERMINAL]
        active = [p for p in running if not p["metadata"].get("deletionTimestamp")]
        ready = sum(1 for p in active if _is_ready(p))
        started = self._job_started.setdefault(
            uid, _parse_time(status.get("startTime")) or time.time()
        )
        new: dict[str, Any] = {
            "startTime": status.get("startTime") or timestamp(started),
            "active": len(active),
            "ready": ready,
            "succeeded": succeeded,
            "failed": failed,
            "terminating": len(running) - len(active),
        }
        deadline = spec.get("activeDeadlineSeconds")
        changed = False
        if succeeded >= 1:
            now = timestamp(time.time())
            new["conditions"] = [
                _condition(
                    "SuccessCriteriaMet",
                    True,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
                _condition(
                    "Complete",
                    True,
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                ),
            ]
            new["completionTime"] = now
            self._event(job, "Normal", "Completed", "Job completed", "job-controller")
        elif uid in self._deadlined or (
            deadline is not None and time.time() >= started + int(deadline)
        ):
            self._deadlined.add(uid)
            for pod in active:
                pod_name = pod["metadata"]["name"]
                with contextlib.suppress(KubernetesCallError):
                    self.api.call(
                        "DELETE", f"/api/v1/namespaces/{namespace}/pods/{quote(pod_name)}"
                    )
                self._event(
                    job, "Normal", "SuccessfulDelete", f"Deleted pod: {pod_name}", "job-controller"
                )
                changed = True
            if not running:
                new["conditions"] = [
                    _condition("FailureTarget", True, "DeadlineExceeded", DEADLINE_MESSAGE),
                    _condition("Failed", True, "DeadlineExceeded", DEADLINE_MESSAGE),
                ]
                new["failed"] = max(failed, 1)
                self._event(job, "Warning", "DeadlineExceeded", DEADLINE_MESSAGE, "job-controller")
            elif not active:
                new["conditions"] = [
                    _condition("FailureTarget", True, "DeadlineExceeded", DEADLINE_MESSAGE)
                ]
        elif failed > int(spec.get("backoffLimit", 6)) and not running:
            new["conditions"] = [
                _condition("FailureTarget", True, "BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE),
                _condition("Failed", True, "BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE),
            ]
            self._event(
                job, "Warning", "BackoffLimitExceeded", BACKOFF_LIMIT_MESSAGE, "job-controller"
            )
        elif not running and not spec.get("suspend"):
            pod_name = self._create_pod(job)
            if pod_name is not None:
                new["active"] = 1
                changed = True
        current = {key: status.get(key) for key in new}
        if "conditions" in new and any(c["type"] == "FailureTarget" for c in conditions):
            kept = [c for c in new["conditions"] if c["type"] != "FailureTarget"]
            new["conditions"] = [c for c in conditions if c["type"] == "FailureTarget"] + kept
        if new != current:
            with contextlib.suppress(KubernetesCallError):
                self.api.patch_status(path, new)
            changed = True
        return changed

    def _create_pod(self, job: dict[str, Any]) -> str | None:
        meta = job["metadata"]
        template = (job.get("spec") or {}).get("template") or {}
        template_meta = template.get("metadata") or {}
        name = f"{meta['name']}-" + "".join(secrets.choice(NAME_CHARACTERS) for _ in range(5))
        labels = dict(template_meta.get("labels") or {})
        labels.update(
            {
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "controller-uid": meta["uid"],
                "batch.kubernetes.io/job-name": meta["name"],
                "job-name": meta["name"],
            }
        )
        pod = {
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": dict(template_meta.get("annotations") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": template.get("spec") or {},
        }
        try:
            self.api.call("POST", f"/api/v1/namespaces/{meta['namespace']}/pods", pod)
        except KubernetesCallError as exc:
            self._event(job, "Warning", "FailedCreate", f"Error creating: {exc}", "job-controller")
            return None
        self._event(job, "Normal", "SuccessfulCreate", f"Created pod: {name}", "job-controller")
        self.say(f"kubernetes: job {meta['namespace']}/{meta['name']} created pod {name}")
        return name

    # --- the scheduler -----------------------------------------------------------------------

    def _schedule(self, pod: dict[str, Any]) -> bool:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        if meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") in TERMINAL:
            return False
        namespace, name = meta["namespace"], meta["name"]
        path = f"/api/v1/namespaces/{namespace}/pods/{quote(name)}"
        reasons = []
        selector = spec.get("nodeSelector") or {}
        if any(NODE_LABELS.get(key) != value for key, value in selector.items()):
            reasons.append("1 node(s) didn't match Pod's node affinity/selector")
        requested = _requests(spec)
        for resource in ("cpu", "memory"):
            if requested[resource] > self.allocatable[resource]:
                reasons.append(f"1 Insufficient {resource}")
        if reasons:
            if meta["uid"] in self._unschedulable:
                return False
            self._unschedulable.add(meta["uid"])
            preemption = (
                "1 Preemption is not helpful for scheduling."
                if any("selector" in r for r in reasons)
                else "1 No preemption victims found for incoming pod."
            )
            message = (
                f"0/1 nodes are available: {', '.join(sorted(reasons))}. "
                f"preemption: 0/1 nodes are available: {preemption}"
            )
            condition = _condition("PodScheduled", False, "Unschedulable", message)
            with contextlib.suppress(KubernetesCallError):
                self.api.patch_status(path, {"phase": "Pending", "conditions": [condition]})
            self._event(pod, "Warning", "FailedScheduling", message, "default-scheduler")
            self.say(f"kubernetes: pod {namespace}/{name} unschedulable: {message}")
            return True
        try:
            self.api.call(
                "POST",
                f"{path}/binding",
                {
                    "apiVersion": "v1",
                    "kind": "Binding",
                    "metadata": {"name": name, "namespace": namespace},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
                },
            )
        except KubernetesCallError:
            return False
        with contextlib.suppress(KubernetesCallError):
            self.api.patch_status(path, {"conditions": [_condition("PodScheduled", True)]})
        self._event(
            pod,
            "Normal",
            "Scheduled",
            f"Successfully assigned {namespace}/{name} to {NODE}",
            "default-scheduler",
        )
        return True

    # --- the kubelet -------------------------------------------------------------------------

    def _kubelet(self, pod: dict[str, Any]) -> bool:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        key = (meta["namespace"], meta["name"])
        phase = (pod.get("status") or {}).get("phase")
        with self._lock:
            run = self.runs.get(key)
            eviction = self._evictions.pop(key, None)
        if run is None:
            containers = spec.get("containers") or [{}]
            run = PodRun(
                namespace=key[0],
                name=key[1],
                uid=meta["uid"],
                container=str(containers[0].get("name") or ""),
                image=str(containers[0].get("image") or ""),
                grace_seconds=int(spec.get("terminationGracePeriodSeconds") or 30),
                finished=phase in TERMINAL,
            )
            with self._lock:
                self.runs[key] = run
        if eviction is not None and not run.finished:
            run.evicted = eviction
            self._kill(run, pod, signal.SIGKILL, 0)
        if meta.get("deletionTimestamp"):
            return self._terminate(run, pod)
        if run.finished:
            return False
        if run.process is not None:
            if self._check_exit(run, pod):
                return True
            return self._probe(run, pod) | self._refresh_token(run, pod)
        if run.evicted is not None:
            self._finish(run, pod, None)
            return True
        if run.waiting is not None and time.time() < run.next_attempt:
            return False
        return self._try_start(run, pod)

    def _try_start(self, run: PodRun, pod: dict[str, Any]) -> bool:
        spec = pod.get("spec") or {}
        container = (spec.get("containers") or [{}])[0]
        image = run.image
        reference = parse_image(image)
        if not run.pod_ip:  # the pod's sandbox and its network, before any container
            run.pod_ip = self._allocate_ip()
        run.attempts += 1
        run.next_attempt = time.time() + self.pull_backoff_seconds
        if reference is None:
            message = (
                f'Failed to apply default image tag "{image}": couldn\'t parse image name '
                f'"{image}": invalid reference format'
            )
            self._event_once(run, pod, "Warning", "InspectFailed", message)
            self._event_once(run, pod, "Warning", "Failed", "Error: InvalidImageName")
            return self._wait(run, pod, "InvalidImageName", message)
        if self._missing(image, reference):
            if run.waiting is None or run.waiting[0] not in ("ErrImagePull", "ImagePullBackOff"):
                self._event(pod, "Normal", "Pulling", f'Pulling image "{image}"', "kubelet")
                message = _pull_error(reference)
                self._event(
                    pod,
                    "Warning",
                    "Failed",
                    f'Failed to pull image "{image}": {message}',
                    "kubelet",
                )
                self._event(pod, "Warning", "Failed", "Error: ErrImagePull", "kubelet")
                return self._wait(run, pod, "ErrImagePull", message)
            self._event(pod, "Normal", "BackOff", f'Back-off pulling image "{image}"', "kubelet")
            self._event(pod, "Warning", "Failed", "Error: ImagePullBackOff", "kubelet")
            return self._wait(run, pod, "ImagePullBackOff", f'Back-off pulling image "{image}"')
        if container.get("imagePullPolicy") == "Always" or run.waiting is not None:
            self._event_once(run, pod, "Normal", "Pulling", f'Pulling image "{image}"')
            self._event_once(
                run, pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in 0s'
            )
        else:
            self._event_once(
                run,
                pod,
                "Normal",
                "Pulled",
                f'Container image "{image}" already present on machine',
            )
        command = [str(part) for part in (container.get("command") or [])]
        args = [str(part) for part in container.get("args") or []]
        if not command:
            # The dev stack's images have no entrypoint: the arguments are the command, as in an
            # image without an ENTRYPOINT (or the Dask image, whose entrypoint runs them).
            command, args = args, []
        if not command:
            message = COMMAND_REQUIRED.format(container=run.container, image=image)
            self._event_once(run, pod, "Warning", "Failed", f"Error: {message}")
            return self._wait(run, pod, "CreateContainerError", message)
        try:
            own = self._container_env(pod, container, run)
        except LookupError as exc:
            message = str(exc.args[0])
            self._event(pod, "Warning", "Failed", f"Error: {message}", "kubelet")
            return self._wait(run, pod, "CreateContainerConfigError", message)
        env = child_environment(self.stack_env(), own)
        # $(NAME) in the command and its arguments is the container's variable, as the kubelet
        # expands it.
        command = [_expand(part, own) for part in command + args]
        probe = container.get("readinessProbe") or {}
        run.probe = probe if (probe.get("httpGet") or probe.get("tcpSocket")) else None
        run.ready = run.probe is None
        run.ports = {
            str(port.get("name")): int(port["containerPort"])
            for port in container.get("ports") or []
            if port.get("name") and port.get("containerPort")
        }
        limits = (container.get("resources") or {}).get("limits") or {}
        with contextlib.suppress(ValueError):
            if limits.get("memory") is not None:
                run.memory_limit = int(parse_quantity(limits["memory"]))
        cwd = container.get("workingDir") or None
        log_path = self.log_dir / f"{run.name}.log"
        log_file = log_path.open("wb")
        run.started_at = timestamp(time.time())
        try:
            if cwd is not None and not Path(cwd).is_dir():
                raise FileNotFoundError(
                    f'chdir to cwd ("{cwd}") set in config.json failed: no such file or directory'
                )
            # The Dask operator's schedulers and workers need this Python's dask CLI and the
            # pod's own address (dask_tasks); any other command runs as it is.
            process = start_group(
                resolve_command(local_dask_command(command, run.pod_ip)),
                env={**env, MARKER: env.get(MARKER) or str(self.log_dir)},
                log_file=log_file,
                lifeline=self._lifeline,
                grace_seconds=float(run.grace_seconds),
                cwd=cwd,
            )
        except (OSError, ValueError) as exc:
            log_file.close()
            message = (
                "failed to create containerd task: failed to create shim task: OCI runtime "
                f"create failed: runc create failed: unable to start container process: {exc}: "
                "unknown"
            )
            self._event(pod, "Warning", "Failed", f"Error: {message}", "kubelet")
            self._finish(run, pod, 128, reason="StartError", message=message)
            return True
        with self._lock:
            run.process, run.log_path, run.log_file = process, log_path, log_file
            run.waiting = None
            self.logs[run.key] = log_path
            self.started_pids.append(process.pid)
        self._event(pod, "Normal", "Created", f"Created container: {run.container}", "kubelet")
        self._event(pod, "Normal", "Started", f"Started container {run.container}", "kubelet")
        run.next_probe = time.time() + float(probe.get("initialDelaySeconds") or 0)
        self._patch_pod(
            pod,
            "Running",
            {"running": {"startedAt": run.started_at}},
            ready=run.ready,
            run=run,
        )
        self.say(
            f"kubernetes: pod {run.namespace}/{run.name} started: group {process.pid} "
            f"(log {log_path})"
        )
        return True

    def _missing(self, image: str, reference: ImageReference) -> bool:
        host = reference.host.rsplit(":", 1)[0] if not reference.host.startswith("[") else ""
        return (
            host.endswith(".invalid")
            or reference.repository.endswith(MISSING_IMAGE_SUFFIX)
            or image in self.missing_images
        )

    def _wait(self, run: PodRun, pod: dict[str, Any], reason: str, message: str) -> bool:
        if run.waiting == (reason, message):
            return False
        run.waiting = (reason, message)
        self._patch_pod(
            pod, "Pending", {"waiting": {"reason": reason, "message": message}}, run=run
        )
        self.say(f"kubernetes: pod {run.namespace}/{run.name} waiting: {reason}: {message}")
        return True

    def _container_env(
        self, pod: dict[str, Any], container: Mapping[str, Any], run: PodRun
    ) -> dict[str, str]:
        """The container's own environment (the stack's goes under it): the API's address and
        credentials, then ``envFrom`` and ``env``; ``LookupError`` with the kubelet's message
        when a secret, config map or key it needs is missing."""
        namespace = pod["metadata"]["namespace"]
        own: dict[str, str] = {
            **self._service_account(pod, run),
            "HOSTNAME": pod["metadata"]["name"],
        }
        for source in container.get("envFrom") or []:
            prefix = str(source.get("prefix") or "")
            for ref_kind, ref in (
                ("secret", source.get("secretRef")),
                ("configmap", source.get("configMapRef")),
            ):
                if not ref:
                    continue
                data = self._data(
                    ref_kind, namespace, str(ref.get("name")), bool(ref.get("optional"))
                )
                own.update({prefix + key: value for key, value in (data or {}).items()})
        for item in container.get("env") or []:
            name = str(item.get("name"))
            if "value" in item or "valueFrom" not in item:
                own[name] = _expand(str(item.get("value") or ""), own)
                continue
            source = item.get("valueFrom") or {}
            value: str | None = None
            if source.get("secretKeyRef") or source.get("configMapKeyRef"):
                secret = source.get("secretKeyRef")
                ref = secret or source.get("configMapKeyRef") or {}
                ref_kind = "secret" if secret else "configmap"
                optional = bool(ref.get("optional"))
                data = self._data(ref_kind, namespace, str(ref.get("name")), optional)
                key = str(ref.get("key"))
                if data is not None:
                    value = data.get(key)
                    if value is None and not optional:
                        noun = "Secret" if secret else "ConfigMap"
                        raise LookupError(
                            f"couldn't find key {key} in {noun} {namespace}/{ref.get('name')}"
                        )
            elif source.get("fieldRef"):
                value = _field_of(pod, str(source["fieldRef"].get("fieldPath")), run.pod_ip)
            if value is not None:
                own[name] = value
        return own

    # --- pods' network, credentials and readiness --------------------------------------------

    def _allocate_ip(self) -> str:
        """A loopback address of the pod's own (Linux routes all of 127.0.0.0/8 to lo), so each
        pod's servers can listen on their usual ports side by side."""
        self._pod_ips = self._pod_ips % (POD_NETWORK.num_addresses - 3) + 1
        return str(POD_NETWORK[self._pod_ips + 1])

    def _service_account(self, pod: dict[str, Any], run: PodRun) -> dict[str, str]:
        """What a kubelet gives a pod to reach the API: ``KUBERNETES_SERVICE_HOST`` and
        ``_PORT``, and its service account's token. The token is a file in a fixed directory
        on a node (``/var/run/secrets/kubernetes.io/serviceaccount``), which this machine's
        processes share, so it comes as a kubeconfig instead (``KUBECONFIG``, which kr8s and
        the ``kubernetes`` client read before the service account): the API's URL, a token from
        its TokenRequest bound to the pod, and the pod's namespace. A pod without a token
        (``automountServiceAccountToken: false``, a missing service account) still gets a
        kubeconfig, without credentials: never the stack's own ``KUBECONFIG``, which may name a
        real cluster.

        And one setting of dask-kubernetes: ``DASK_KUBERNETES__PORT_FORWARD_CLUSTER_IP``, since
        there is no cluster DNS here. Without it, a KubeCluster in a pod looks its scheduler's
        Service up by DNS (``<name>-scheduler.<namespace>``) for 10 s, asking the machine's
        resolver, before it port-forwards through the API anyway."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        env = {
            "KUBERNETES_SERVICE_HOST": self.api.host,
            "KUBERNETES_SERVICE_PORT": str(self.api.port),
            "KUBERNETES_PORT": f"tcp://{self.api.host}:{self.api.port}",
            "DASK_KUBERNETES__PORT_FORWARD_CLUSTER_IP": "True",
        }
        token = None
        if spec.get("automountServiceAccountToken") is not False:
            token = self._token(pod)
            if token is None:
                self.say(
                    f"kubernetes: pod {meta['namespace']}/{meta['name']}: no token for its "
                    f"service account {spec.get('serviceAccountName') or 'default'}"
                )
        env["KUBECONFIG"] = str(self._write_kubeconfig(pod, run, token))
        return env

    def _token(self, pod: dict[str, Any]) -> str | None:
        """A token of the pod's service account, bound to the pod (TokenRequest)."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        namespace, account = meta["namespace"], spec.get("serviceAccountName") or "default"
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "expirationSeconds": TOKEN_SECONDS,
                "boundObjectRef": {
                    "kind": "Pod",
                    "apiVersion": "v1",
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
            },
        }
        try:
            answer = self.api.call(
                "POST",
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{quote(account)}/token",
                request,
            )
        except KubernetesCallError:
            return None
        return str((answer.get("status") or {}).get("token") or "") or None

    def _write_kubeconfig(self, pod: dict[str, Any], run: PodRun, token: str | None) -> Path:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        namespace, account = meta["namespace"], spec.get("serviceAccountName") or "default"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": NODE, "cluster": {"server": self.api.url}}],
            "users": [
                {"name": f"{namespace}-{account}", "user": {"token": token} if token else {}}
            ],
            "contexts": [
                {
                    "name": NODE,
                    "context": {
                        "cluster": NODE,
                        "user": f"{namespace}-{account}",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": NODE,
        }
        folder = self.log_dir / "serviceaccounts"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{namespace}_{meta['name']}.kubeconfig"
        partial = path.with_suffix(".partial")
        # Written whole, then renamed: a client reading it while it is refreshed never sees
        # half of it (the kubelet swaps a projected token the same way).
        partial.touch(mode=0o600)
        partial.write_text(json.dumps(config, indent=2))
        partial.replace(path)
        if token:
            run.kubeconfig = path
            run.token_refresh_at = time.time() + TOKEN_SECONDS * 0.8
        return path

    def _refresh_token(self, run: PodRun, pod: dict[str, Any]) -> bool:
        """A new token at 80% of the old one's life, as the kubelet rotates projected tokens."""
        if run.kubeconfig is None or time.time() < run.token_refresh_at:
            return False
        token = self._token(pod)
        if token is not None:
            self._write_kubeconfig(pod, run, token)
        else:
            run.token_refresh_at = time.time() + 60
        return False

    def _probe(self, run: PodRun, pod: dict[str, Any]) -> bool:
        """The container's readiness probe, until it first passes: the pod Ready then (probes
        are not repeated after that, and liveness probes are not run)."""
        if run.ready or run.probe is None or time.time() < run.next_probe:
            return False
        probe = run.probe
        run.next_probe = time.time() + min(float(probe.get("periodSeconds") or 10), 1.0)
        check = probe.get("httpGet") or probe.get("tcpSocket") or {}
        port = check.get("port")
        number = run.ports.get(port) if isinstance(port, str) and not port.isdigit() else port
        host = str(check.get("host") or run.pod_ip)
        if number is None or not is_loopback_host(host):
            return False  # a probe of a port it does not have, or of another machine: fails
        try:
            if probe.get("httpGet"):
                if str(check.get("scheme") or "HTTP").upper() != "HTTP":
                    passed = True  # HTTPS probes are not run
                else:
                    connection = http.client.HTTPConnection(host, int(number), timeout=0.5)
                    try:
                        connection.request("GET", str(check.get("path") or "/"))
                        passed = 200 <= connection.getresponse().status < 400
                    finally:
                        connection.close()
            else:
                with socket.create_connection((host, int(number)), timeout=0.5):
                    passed = True
        except OSError:
            passed = False
        if not passed:
            return False
        run.ready = True
        self._patch_pod(
            pod, "Running", {"running": {"startedAt": run.started_at}}, ready=True, run=run
        )
        self.say(f"kubernetes: pod {run.namespace}/{run.name} ready")
        return True

    def _data(self, kind: str, namespace: str, name: str, optional: bool) -> dict[str, str] | None:
        plural = "secrets" if kind == "secret" else "configmaps"
        try:
            obj = self.api.call("GET", f"/api/v1/namespaces/{namespace}/{plural}/{quote(name)}")
        except KubernetesCallError as exc:
            if exc.status == 404 and optional:
                return None
            if exc.status == 404:
                raise LookupError(f'{kind} "{name}" not found') from None
            raise
        if kind == "secret":
            import base64

            return {
                key: base64.b64decode(value).decode(errors="replace")
                for key, value in (obj.get("data") or {}).items()
            }
        return {key: str(value) for key, value in (obj.get("data") or {}).items()}

    def _check_exit(self, run: PodRun, pod: dict[str, Any]) -> bool:
        assert run.process is not None
        code = run.process.poll()
        if code is None:
            if run.term_sent_at is not None and not run.killed and time.time() >= run.kill_after:
                run.killed = True
                signal_group(run.process.pid, signal.SIGKILL)
            return False
        self._finish(run, pod, 128 - code if code < 0 else code)
        return True

    def _finish(
        self,
        run: PodRun,
        pod: dict[str, Any],
        exit_code: int | None,
        *,
        reason: str | None = None,
        message: str | None = None,
    ) -> None:
        """The container ended (``exit_code``; None: it never started): the pod's final
        status, as the kubelet reports it."""
        if run.process is not None:
            signal_group(run.process.pid, signal.SIGKILL)  # what the command left running
        if run.log_file is not None:
            run.log_file.close()
        with self._lock:
            run.finished = True
        if reason is None:
            if run.out_of_memory:
                reason = "OOMKilled"
            elif exit_code == 0:
                reason = "Completed"
            else:
                reason = "Error"
        code = 137 if exit_code is None else exit_code
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": reason,
            "startedAt": run.started_at or None,
            "finishedAt": timestamp(time.time()),
            "containerID": f"flowrelay://{run.process.pid}" if run.process else None,
        }
        if message:
            terminated["message"] = message
        phase = "Succeeded" if code == 0 and run.evicted is None else "Failed"
        extra: dict[str, Any] = {}
        if run.evicted is not None:
            extra = {"reason": "Evicted", "message": run.evicted}
            self._event(pod, "Warning", "Evicted", run.evicted, "kubelet")
        self._patch_pod(pod, phase, {"terminated": terminated}, run=run, extra=extra)
        self.say(
            f"kubernetes: pod {run.namespace}/{run.name} {phase.lower()}: exit code {code} "
            f"({reason})"
        )

    def _kill(self, run: PodRun, pod: dict[str, Any], signum: signal.Signals, grace: float) -> None:
        if run.process is None or run.finished:
            return
        if run.term_sent_at is None:
            self._event(pod, "Normal", "Killing", f"Stopping container {run.container}", "kubelet")
            run.term_sent_at = time.time()
            run.kill_after = run.term_sent_at + grace
        if signum == signal.SIGKILL:
            run.killed = True
        signal_group(run.process.pid, signum)

    def _terminate(self, run: PodRun, pod: dict[str, Any]) -> bool:
        """A pod being deleted: SIGTERM, SIGKILL after its grace, then its final deletion."""
        meta = pod["metadata"]
        if run.process is not None and not run.finished:
            grace = float(meta.get("deletionGracePeriodSeconds") or run.grace_seconds)
            if run.term_sent_at is None:
                self._kill(run, pod, signal.SIGTERM, grace)
            self._check_exit(run, pod)
            if not run.finished:
                return True
        path = f"/api/v1/namespaces/{run.namespace}/pods/{quote(run.name)}"
        with contextlib.suppress(KubernetesCallError):
            self.api.call("DELETE", path, {"gracePeriodSeconds": 0})
        with self._lock:
            run.finished = True
        return True

    def _patch_pod(
        self,
        pod: dict[str, Any],
        phase: str,
        state: dict[str, Any],
        *,
        run: PodRun,
        ready: bool = False,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        meta = pod["metadata"]
        running = "running" in state
        not_ready = "" if ready else "ContainersNotReady"
        message = "" if ready else f"containers with unready status: [{run.container}]"
        if phase in TERMINAL:
            not_ready, message = "PodCompleted", ""
        conditions = [
            _condition("PodReadyToStartContainers", True),
            _condition("Initialized", True),
            _condition("Ready", ready, not_ready, message),
            _condition("ContainersReady", ready, not_ready, message),
            _condition("PodScheduled", True),
        ]
        if run.evicted is not None:
            conditions.append(
                _condition("DisruptionTarget", True, "TerminationByKubelet", run.evicted)
            )
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": conditions,
            "hostIP": "127.0.0.1",
            **({"podIP": run.pod_ip, "podIPs": [{"ip": run.pod_ip}]} if run.pod_ip else {}),
            "startTime": (pod.get("status") or {}).get("startTime") or timestamp(time.time()),
            "containerStatuses": [
                {
                    "name": run.container,
                    "image": run.image,
                    "imageID": "",
                    "ready": ready,
                    "started": running,
                    "restartCount": 0,
                    "state": state,
                    "lastState": {},
                    **(
                        {"containerID": f"flowrelay://{run.process.pid}"}
                        if run.process is not None
                        else {}
                    ),
                }
            ],
            **(extra or {}),
        }
        path = f"/api/v1/namespaces/{meta['namespace']}/pods/{quote(meta['name'])}"
        with contextlib.suppress(KubernetesCallError):
            self.api.patch_status(path, status)

    # --- events ------------------------------------------------------------------------------

    def _event_once(
        self, run: PodRun, pod: dict[str, Any], kind: str, reason: str, message: str
    ) -> None:
        if (reason, message) in {tuple(e.split("\0", 1)) for e in run.events}:
            return
        run.events.add(f"{reason}\0{message}")
        self._event(pod, kind, reason, message, "kubelet")

    def _event(
        self, obj: Mapping[str, Any], kind: str, reason: str, message: str, component: str
    ) -> None:
        """Record a core/v1 Event about ``obj``, best effort (as components do)."""
        meta = obj["metadata"]
        now = timestamp(time.time())
        is_job = "completions" in (obj.get("spec") or {}) or "template" in (obj.get("spec") or {})
        event = {
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "kind": "Job" if is_job else "Pod",
                "apiVersion": "batch/v1" if is_job else "v1",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "source": {
                "component": component,
                **({"host": NODE} if component == "kubelet" else {}),
            },
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
            "reportingInstance": NODE if component == "kubelet" else "",
        }
        with contextlib.suppress(Exception):
            self.api.call("POST", f"/api/v1/namespaces/{meta['namespace']}/events", event)

    # --- memory and shutdown -----------------------------------------------------------------

    def _watch_memory(self) -> None:
        while not self.stopping.wait(self.memory_seconds):
            with self._lock:
                limited = [
                    run
                    for run in self.runs.values()
                    if run.memory_limit
                    and run.process is not None
                    and not run.killed
                    and not run.finished
                ]
            if not limited:
                continue
            groups = {run.process.pid for run in limited if run.process is not None}
            used = group_rss(groups, leave_out=groups)  # each group's leader is its guard
            for run in limited:
                assert run.process is not None
                assert run.memory_limit is not None
                if used[run.process.pid] > run.memory_limit:
                    run.out_of_memory = run.killed = True
                    signal_group(run.process.pid, signal.SIGKILL)
                    self.say(
                        f"kubernetes: pod {run.namespace}/{run.name} out of memory: "
                        f"{used[run.process.pid]} bytes of {run.memory_limit}: killed"
                    )

    def shutdown(self) -> None:
        """End every pod's processes (SIGTERM, then SIGKILL after the grace period) and wait
        for them. No status: the API they would report to is going away. Safe to call again."""
        self.stopping.set()
        with self._lock:
            runs = [r for r in self.runs.values() if r.process is not None and not r.finished]
        for run in runs:
            assert run.process is not None
            if run.process.poll() is None:
                signal_group(run.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.shutdown_grace_seconds
        for run in runs:
            assert run.process is not None
            try:
                run.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(run.process.pid, signal.SIGKILL)
                run.process.wait()
            signal_group(run.process.pid, signal.SIGKILL)
            if run.log_file is not None:
                run.log_file.close()
            run.finished = True
            self.say(f"kubernetes: pod {run.namespace}/{run.name} terminated")
        if self._memory.is_alive() and self._memory is not threading.current_thread():
            self._memory.join()
        self._lifeline.close()


def _is_ready(pod: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


def _requests(spec: Mapping[str, Any]) -> dict[str, Decimal]:
    """The pod's cpu and memory requests (a container's limit when it gives no request)."""
    total = {"cpu": Decimal(0), "memory": Decimal(0)}
    for container in spec.get("containers") or []:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
        for name in total:
            value = requests.get(name, limits.get(name))
            if value is not None:
                with contextlib.suppress(ValueError):
                    total[name] += parse_quantity(value)
    return total


def _pull_error(reference: ImageReference) -> str:
    """What containerd says when it cannot pull ``reference``."""
    full = reference.full
    host = reference.host
    if host.rsplit(":", 1)[0].endswith(".invalid"):
        tag = full.rsplit(":", 1)[-1] if ":" in full.removeprefix(host) else "latest"
        return (
            f'rpc error: code = Unknown desc = failed to pull and unpack image "{full}": failed '
            f'to resolve reference "{full}": failed to do request: Head '
            f'"https://{host}/v2/{reference.repository}/manifests/{tag}": dial tcp: lookup '
            f"{host.rsplit(':', 1)[0]}: no such host"
        )
    return (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{full}": failed to '
        f'resolve reference "{full}": {full}: not found'
    )


def _field_of(pod: Mapping[str, Any], path: str, pod_ip: str = "") -> str | None:
    """The downward API's ``fieldRef`` values."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    labels = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if labels:
        return str((meta.get(labels.group(1)) or {}).get(labels.group(2), ""))
    return {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": NODE,
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": "127.0.0.1",
        "status.podIP": pod_ip or "127.0.0.1",
    }.get(path)


def _expand(value: str, env: Mapping[str, str]) -> str:
    """``$(NAME)`` references to variables defined before, as the kubelet expands them
    (``$$`` escapes)."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, value)
