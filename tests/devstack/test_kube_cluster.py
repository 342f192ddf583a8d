"""dask-kubernetes's ``KubeCluster`` against the dev stack's Kubernetes API: the emulated Dask
operator (``devstack/kubernetes/dask_operator.py``) makes its scheduler, Service and workers,
the job executor's kubelet runs them as local processes on loopback addresses of their own, and
the client reaches the scheduler by port-forwarding through the API, as from outside a cluster.

Once from this process (with a kubeconfig of its own) and once as a flow runner would, from
inside a pod: there only with what the kubelet gives every pod (its service account's token,
the API's address, the namespace), against an API that refuses anything else."""

from __future__ import annotations

import ipaddress
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowrelay.devstack.kubernetes import JobExecutor, KubernetesApi
from flowrelay.devstack.kubernetes.client import ApiClient
from tests.support.kubernetes import executing, job_body, serving, wait_for

pytestmark = pytest.mark.slow
NAMESPACE = "flowrelay"
#: The dev stack's image: it has no entrypoint, so the operator's ``args`` are the command.
IMAGE = "flowrelay-local"


@pytest.fixture(scope="module")
def api() -> Iterator[KubernetesApi]:
    # As in the dev stack: every request needs an EKS token or a service account's token.
    with serving(KubernetesApi(eks_cluster="flowrelay-dev")) as server:
        yield server


@pytest.fixture(scope="module")
def executor(api: KubernetesApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobExecutor]:
    with executing(api, tmp_path_factory.mktemp("pods")) as runner:
        yield runner


@pytest.fixture(scope="module")
def system(api: KubernetesApi) -> ApiClient:
    """The API with the controllers' credentials: what the tests look at."""
    return ApiClient(api.url, api.headers())


def of_cluster(system: ApiClient, plural: str, name: str) -> list[dict[str, Any]]:
    """The pods or services labelled as the cluster's, as the operator labels them."""
    path = f"/api/v1/namespaces/{NAMESPACE}/{plural}?labelSelector=dask.org/cluster-name={name}"
    return list(system.call("GET", path)["items"])


def workers(system: ApiClient, name: str) -> list[dict[str, Any]]:
    return [
        pod
        for pod in of_cluster(system, "pods", name)
        if pod["metadata"]["labels"].get("dask.org/component") == "worker"
        and not pod["metadata"].get("deletionTimestamp")
    ]


def gone(system: ApiClient, name: str) -> bool:
    """Nothing of the cluster is left: no DaskCluster, worker group, pod or service."""
    dask = f"/apis/kubernetes.dask.org/v1/namespaces/{NAMESPACE}"
    clusters = system.call("GET", f"{dask}/daskclusters")["items"]
    groups = system.call("GET", f"{dask}/daskworkergroups")["items"]
    return not (
        [c for c in clusters if c["metadata"]["name"] == name]
        or [g for g in groups if g["spec"]["cluster"] == name]
        or of_cluster(system, "pods", name)
        or of_cluster(system, "services", name)
    )


def kubeconfig(path: Path, api: KubernetesApi, system: ApiClient) -> Path:
    """A kubeconfig for this process, with a token of the namespace's default service account
    (what ``kubectl create token default`` gives)."""
    answer = system.call(
        "POST", f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default/token", {"spec": {}}
    )
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "dev", "cluster": {"server": api.url}}],
        "users": [{"name": "dev", "user": {"token": answer["status"]["token"]}}],
        "contexts": [
            {"name": "dev", "context": {"cluster": "dev", "user": "dev", "namespace": NAMESPACE}}
        ],
        "current-context": "dev",
    }
    path.write_text(json.dumps(config))
    return path


def pods_of_job(system: ApiClient, name: str) -> list[dict[str, Any]]:
    """The pods of the Job ``name``, by the label its controller gives them."""
    path = f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=job-name={name}"
    return list(system.call("GET", path)["items"])


@pytest.fixture
def cluster(
    api: KubernetesApi,
    executor: JobExecutor,
    system: ApiClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    """A KubeCluster of one worker made from this process, as a user's outside the cluster is
    (a kubeconfig of its own); closed after the test, and nothing of it may be left."""
    from dask_kubernetes.operator import KubeCluster

    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "kubeconfig", api, system)))
    made = KubeCluster(
        name=f"dask-{uuid.uuid4().hex[:8]}",
        namespace=NAMESPACE,
        image=IMAGE,
        n_workers=1,
        # No cluster DNS here: straight to the port-forward (pods get this as a setting).
        port_forward_cluster_ip=True,
        resource_timeout=30,
        quiet=True,
    )
    try:
        yield made
    finally:
        made.close(timeout=30)
    wait_for(lambda: gone(system, made.name))


def test_a_kube_cluster_computes_scales_and_leaves_nothing(cluster: Any, system: ApiClient) -> None:
    from distributed import Client

    name = cluster.name
    assert cluster.scheduler_address.startswith("tcp://localhost:")
    [service] = of_cluster(system, "services", name)
    [scheduler] = [
        p
        for p in of_cluster(system, "pods", name)
        if p["metadata"]["labels"]["dask.org/component"] == "scheduler"
    ]
    # The Service's cluster IP is the scheduler pod's own loopback address.
    assert service["metadata"]["name"] == f"{name}-scheduler"
    assert service["spec"]["clusterIP"] == scheduler["status"]["podIP"]
    assert ipaddress.ip_address(service["spec"]["clusterIP"]).is_loopback
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "tcp-comm": 8786,
        "http-dashboard": 8787,
    }
    with Client(cluster) as client:
        assert client.submit(sum, [1, 2, 3]).result(timeout=30) == 6
        [worker] = workers(system, name)
        labels = worker["metadata"]["labels"]
        assert labels["dask.org/workergroup-name"] == f"{name}-default"
        assert worker["metadata"]["ownerReferences"][0]["kind"] == "DaskWorkerGroup"

        cluster.scale(2)
        client.wait_for_workers(2, timeout=30)
        assert len(client.scheduler_info()["workers"]) == 2
        wait_for(lambda: len(workers(system, name)) == 2)
        # Each pod listens on a loopback address of its own.
        addresses = {w["status"]["podIP"] for w in workers(system, name)}
        addresses.add(scheduler["status"]["podIP"])
        assert len(addresses) == 3
        assert client.submit(lambda x: x * 2, 21).result(timeout=30) == 42

        cluster.scale(1)
        wait_for(lambda: len(client.scheduler_info()["workers"]) == 1)
        wait_for(lambda: len(workers(system, name)) == 1)
        names = {w["name"] for w in client.scheduler_info()["workers"].values()}
        assert names == {workers(system, name)[0]["metadata"]["name"]}


def test_a_kube_cluster_in_a_pod_reaches_the_api_as_the_pod(
    api: KubernetesApi, executor: JobExecutor, system: ApiClient
) -> None:
    name = f"dask-{uuid.uuid4().hex[:8]}"
    # A flow runner's use of it: nothing but the name, the image and the size; the namespace,
    # the API and its credentials come from the pod.
    code = f"""
import json
from dask_kubernetes.operator import KubeCluster
from distributed import Client
with KubeCluster(name={name!r}, image={IMAGE!r}, n_workers=1, quiet=True,
                 resource_timeout=30) as cluster, Client(cluster) as client:
    total = client.submit(sum, range(10)).result(timeout=30)
    cluster.scale(2)
    client.wait_for_workers(2, timeout=30)
    print(json.dumps({{"namespace": cluster.namespace, "total": total,
                      "workers": len(client.scheduler_info()["workers"])}}))
"""
    job = job_body(name, {"name": "flow", "image": IMAGE, "command": ["python", "-c", code]})
    before = len(api.requests)
    system.call("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", job)

    def finished() -> dict[str, Any] | None:
        found = system.call("GET", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs/{name}")
        done = [
            c
            for c in (found.get("status") or {}).get("conditions") or []
            if c["type"] in ("Complete", "Failed") and c["status"] == "True"
        ]
        return found if done else None

    done = wait_for(finished, timeout=90)
    [pod] = pods_of_job(system, name)
    log = (executor.read_log(NAMESPACE, pod["metadata"]["name"], "flow") or b"").decode()
    assert done["status"]["conditions"][-1]["type"] == "Complete", log[-3000:]
    result = json.loads(log.strip().splitlines()[-1])
    assert result == {"namespace": NAMESPACE, "total": 45, "workers": 2}
    # Every request of the pod carried the token the kubelet got for it, never the stack's.
    mine = [r for r in api.requests[before:] if "daskclusters" in r.path and r.method == "POST"]
    assert mine
    assert all((r.authorization or "").startswith("Bearer flowrelay-dev-sa.") for r in mine)
    wait_for(lambda: gone(system, name))


def test_a_pods_kubeconfig_never_is_the_stacks(
    api: KubernetesApi, executor: JobExecutor, system: ApiClient, tmp_path: Path
) -> None:
    name = f"j-{uuid.uuid4().hex[:8]}"
    code = (
        "import os; print(os.environ['KUBECONFIG']); print(open(os.environ['KUBECONFIG']).read())"
    )
    container = {"name": "flow", "image": IMAGE, "args": ["python", "-c", code]}
    job = job_body(name, container, pod={"automountServiceAccountToken": False})
    system.call("POST", f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs", job)

    def log() -> str | None:
        pods = pods_of_job(system, name)
        if not pods or pods[0]["status"].get("phase") != "Succeeded":
            return None
        return (executor.read_log(NAMESPACE, pods[0]["metadata"]["name"], "flow") or b"").decode()

    output = wait_for(log)
    path, _, config = output.partition("\n")
    assert path != os.environ.get("KUBECONFIG")
    parsed = json.loads(config)
    assert parsed["clusters"][0]["cluster"]["server"] == api.url
    assert parsed["users"][0]["user"] == {}  # no token: automountServiceAccountToken false


def test_an_adaptive_kube_cluster_grows_within_its_bounds(
    cluster: Any, executor: JobExecutor, system: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client

    # The operator asks the scheduler every 5 s; sooner here.
    monkeypatch.setattr(executor.dask_operator, "timer_seconds", 0.3)
    name = cluster.name
    with Client(cluster) as client:
        cluster.adapt(minimum=1, maximum=2)
        scaler = f"/apis/kubernetes.dask.org/v1/namespaces/{NAMESPACE}/daskautoscalers/{name}"
        owners = wait_for(lambda: system.call("GET", scaler)["metadata"].get("ownerReferences"))
        assert owners[0]["kind"] == "DaskCluster"
        futures = client.map(time.sleep, [0.5] * 40, pure=False)
        # More work than one worker's threads: the scheduler wants more, at most 2.
        wait_for(lambda: len(workers(system, name)) == 2)
        client.wait_for_workers(2, timeout=30)
        group = f"/apis/kubernetes.dask.org/v1/namespaces/{NAMESPACE}/daskworkergroups"
        replicas = system.call("GET", f"{group}/{name}-default")["spec"]["worker"]["replicas"]
        assert replicas == 2
        annotations = system.call("GET", scaler)["metadata"]["annotations"]
        assert float(annotations["kubernetes.dask.org/cooldown-until"]) > time.time()
        client.cancel(futures)
