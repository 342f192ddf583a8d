"""What tests of the dev stack's Kubernetes share (tests/devstack/test_kubernetes_api.py,
test_kubernetes_jobs.py, test_kube_cluster.py): its API serving, its job executor running
against it, a Job's body, and waiting for what they do in the background. The fixtures that use
them are in those modules, each with the options its tests need."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from flowrelay.devstack.kubernetes import JobExecutor, KubernetesApi

T = TypeVar("T")


@contextmanager
def serving(api: KubernetesApi) -> Iterator[KubernetesApi]:
    """``api`` serving over HTTP on loopback until the block ends."""
    api.start()
    try:
        yield api
    finally:
        api.stop()


@contextmanager
def executing(
    api: KubernetesApi,
    log_dir: Path,
    *,
    stack_env: Callable[[], dict[str, str]] = dict,
    pull_backoff_seconds: float = 2.0,
    shutdown_grace_seconds: float = 5.0,
) -> Iterator[JobExecutor]:
    """The job executor (Job controller, scheduler, kubelet, Dask operator) running against
    ``api`` with the controllers' credentials until the block ends, then stopped with every pod's
    process ended. It polls every 0.1 s (tests wait on it), and ``api`` serves its pods' logs,
    as the dev stack wires them."""
    runner = JobExecutor(
        url=api.url,
        headers=api.headers(),
        stack_env=stack_env,
        log_dir=log_dir,
        poll_seconds=0.1,
        pull_backoff_seconds=pull_backoff_seconds,
        shutdown_grace_seconds=shutdown_grace_seconds,
    )
    api.pod_logs = runner.read_log
    runner.start()
    try:
        yield runner
    finally:
        runner.stopping.set()
        runner.join(10)
        runner.shutdown()


def job_body(
    name: str,
    container: dict[str, Any],
    *,
    labels: dict[str, str] | None = None,
    pod: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A Job of one pod running ``container`` once, never restarted or retried (as flowrelay's
    launcher makes them): ``labels`` on the Job and its pods, ``pod`` more of the pod's spec,
    ``spec`` more of the Job's."""
    template = {
        "metadata": {"labels": dict(labels or {})},
        "spec": {"restartPolicy": "Never", "containers": [container], **(pod or {})},
    }
    return {
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": {"backoffLimit": 0, "template": template, **spec},
    }


def wait_for(check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.05) -> T:
    """The first true value of ``check()``, called every ``interval`` seconds; AssertionError
    naming it when there is none within ``timeout`` seconds (long enough for a Dask cluster's
    pods to come and go: only a failing test waits it out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout} s: {check}")
