"""The dev stack's Kubernetes API against the real ``kubernetes`` client over real HTTP: what it
answers as Kubernetes does (flowrelay's launcher relies on each), and what kmock 0.8 alone
answers differently (so a kmock upgrade that changes one fails here and the fix is revisited)."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp.web
import boto3
import pytest
from kmock import KubernetesEmulator, ResourceInfo
from kubernetes import client

from flowrelay.devstack.kubernetes import KubernetesApi
from tests.support.kubernetes import serving


def _client(url: str, token: str | None = None) -> Any:
    """A client configured explicitly: no kubeconfig, no proxy."""
    configuration = client.Configuration(host=url)
    configuration.retries = False
    if token is not None:
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(configuration)


def _core(url: str, token: str | None = None) -> Any:
    return client.CoreV1Api(_client(url, token))


@pytest.fixture(scope="module")
def api() -> Iterator[KubernetesApi]:
    with serving(KubernetesApi(host="127.0.0.1", port=0)) as server:
        yield server


@pytest.fixture(scope="module")
def core(api: KubernetesApi) -> Any:
    return client.CoreV1Api(_client(api.url))


@pytest.fixture(scope="module")
def batch(api: KubernetesApi) -> Any:
    return client.BatchV1Api(_client(api.url))


def job(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "flow", "image": "python:3.11", "command": ["true"]}],
                }
            },
        },
    }


def pod(name: str, labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels or {}, **meta},
        "spec": {"containers": [{"name": "c", "image": "python:3.11"}]},
    }


def error(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(client.ApiException) as caught:
        call(*args, **kwargs)
    return caught.value.status, json.loads(str(caught.value.body))


# --- create, get, metadata -----------------------------------------------------------------------


def test_create_sets_metadata_and_job_defaults(batch: Any) -> None:
    first = batch.create_namespaced_job("default", job("meta-a"))
    second = batch.create_namespaced_job("default", job("meta-b"))
    assert first.metadata.uid
    assert first.metadata.uid != second.metadata.uid
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert first.metadata.creation_timestamp is not None
    assert first.metadata.generation == 1
    assert first.spec.selector.match_labels == {
        "batch.kubernetes.io/controller-uid": first.metadata.uid
    }
    labels = first.spec.template.metadata.labels
    assert labels["job-name"] == labels["batch.kubernetes.io/job-name"] == "meta-a"
    assert labels["controller-uid"] == first.metadata.uid
    read = batch.read_namespaced_job("meta-a", "default")
    assert read.metadata.uid == first.metadata.uid
    assert read.kind == "Job"


def test_a_taken_name_is_409_already_exists(batch: Any) -> None:
    batch.create_namespaced_job("default", job("taken"))
    status, body = error(batch.create_namespaced_job, "default", job("taken"))
    assert status == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'jobs.batch "taken" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "taken", "group": "batch", "kind": "jobs"},
        "code": 409,
    }


def test_a_missing_object_is_404_not_found(batch: Any, core: Any) -> None:
    status, body = error(batch.read_namespaced_job, "nowhere", "default")
    assert (status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'jobs.batch "nowhere" not found',
    )
    status, body = error(core.read_namespaced_pod, "nowhere", "default")
    assert body["message"] == 'pods "nowhere" not found'
    assert body["details"]["kind"] == "pods"


def test_a_create_in_a_missing_namespace_is_404(batch: Any) -> None:
    status, body = error(batch.create_namespaced_job, "no-such-ns", job("orphan-ns"))
    assert (status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'namespaces "no-such-ns" not found',
    )


def test_default_namespaces_and_service_accounts(core: Any) -> None:
    names = {ns.metadata.name for ns in core.list_namespace().items}
    assert {"default", "flowrelay"} <= names
    for namespace in ("default", "flowrelay"):
        assert core.read_namespaced_service_account("default", namespace).metadata.name == "default"
    assert core.read_namespace("flowrelay").status.phase == "Active"


def test_secrets_and_configmaps(core: Any) -> None:
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "creds"}, "stringData": {"token": "s3cret"}}
    )
    core.create_namespaced_config_map("default", {"metadata": {"name": "conf"}, "data": {"a": "1"}})
    assert (
        base64.b64decode(core.read_namespaced_secret("creds", "default").data["token"]) == b"s3cret"
    )
    assert core.read_namespaced_config_map("conf", "default").data == {"a": "1"}


# --- validation ----------------------------------------------------------------------------------


def test_a_job_name_over_63_characters_is_invalid(batch: Any) -> None:
    name = "j" * 64
    status, body = error(batch.create_namespaced_job, "default", job(name))
    assert (status, body["reason"]) == (422, "Invalid")
    too_long = f'Invalid value: "{name}": must be no more than 63 characters'
    # As Kubernetes lists them: the name, then the job-name labels its pods would carry.
    assert body["message"].startswith(
        f'Job.batch "{name}" is invalid: [metadata.name: {too_long}, '
    )
    assert f"spec.template.labels: {too_long}" in body["message"]
    assert body["details"]["causes"][0]["field"] == "metadata.name"


def test_a_name_not_a_dns_subdomain_is_invalid(core: Any) -> None:
    status, body = error(core.create_namespaced_pod, "default", pod("Bad_Name"))
    assert status == 422
    assert body["message"].startswith(
        'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 '
        "subdomain must consist of"
    )
    status, body = error(core.create_namespaced_pod, "default", pod("p" * 254))
    assert "must be no more than 253 characters" in body["message"]


def test_a_services_cluster_ip_is_a_loopback_address_of_its_own(core: Any) -> None:
    """No kube-proxy: a cluster IP is reachable only where something listens on it, so one a
    creator names (the Dask operator's emulation: its scheduler pod's) must be loopback, and
    is refused as Kubernetes refuses an IP outside its range or already allocated."""

    def service(name: str, cluster_ip: str) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": {"clusterIP": cluster_ip, "ports": [{"port": 1}]},
        }

    created = core.create_namespaced_service("default", service("svc-named", "127.88.9.9"))
    assert created.spec.cluster_ip == "127.88.9.9"
    for name, cluster_ip, problem in (
        ("svc-taken", "127.88.9.9", "provided IP is already allocated"),
        ("svc-far", "10.0.0.1", "the provided IP (10.0.0.1) is not in the valid range."),
        ("svc-bad", "not-an-ip", "the provided IP (not-an-ip) is not in the valid range."),
    ):
        status, body = error(core.create_namespaced_service, "default", service(name, cluster_ip))
        assert (status, body["reason"]) == (422, "Invalid")
        assert body["details"]["causes"][0]["field"] == "spec.clusterIPs"
        assert f"failed to allocate IP {cluster_ip}: {problem}" in body["message"]


def test_label_values_and_keys_are_validated(batch: Any) -> None:
    value = "v" * 64
    status, body = error(batch.create_namespaced_job, "default", job("labels", {"run": value}))
    assert status == 422
    assert body["message"] == (
        f'Job.batch "labels" is invalid: metadata.labels: Invalid value: "{value}": must be no '
        "more than 63 characters"
    )
    status, body = error(batch.create_namespaced_job, "default", job("labels", {"bad key": "x"}))
    assert 'metadata.labels: Invalid value: "bad key": name part must consist of' in body["message"]
    status, body = error(batch.create_namespaced_job, "default", job("labels", {"k": "a b"}))
    assert 'Invalid value: "a b": a valid label must be an empty string' in body["message"]


# --- list and selectors --------------------------------------------------------------------------


def test_label_selectors(core: Any) -> None:
    for name, labels in [
        ("sel-a", {"sel": "x", "tier": "web"}),
        ("sel-b", {"sel": "y"}),
        ("sel-c", {"sel": "z", "tier": "db"}),
    ]:
        core.create_namespaced_pod("flowrelay", pod(name, labels))

    def names(selector: str) -> list[str]:
        items = core.list_namespaced_pod("flowrelay", label_selector=selector).items
        return [item.metadata.name for item in items]

    assert names("sel=x") == ["sel-a"]
    assert names("sel==y") == ["sel-b"]
    assert names("sel,sel!=x") == ["sel-b", "sel-c"]
    assert names("sel in (x, z)") == ["sel-a", "sel-c"]
    assert names("sel notin (x,z),sel") == ["sel-b"]
    assert names("sel,tier") == ["sel-a", "sel-c"]
    assert names("sel,!tier") == ["sel-b"]
    listed = core.list_pod_for_all_namespaces(label_selector="sel=x")
    assert [p.metadata.name for p in listed.items] == ["sel-a"]
    assert int(listed.metadata.resource_version) > 0


def test_field_selectors(core: Any) -> None:
    core.create_namespaced_pod("default", pod("field-a"))
    core.patch_namespaced_pod_status("field-a", "default", {"status": {"phase": "Running"}})
    by_name = core.list_pod_for_all_namespaces(field_selector="metadata.name=field-a").items
    assert [p.metadata.name for p in by_name] == ["field-a"]
    running = core.list_namespaced_pod("default", field_selector="status.phase=Running").items
    assert [p.metadata.name for p in running] == ["field-a"]
    in_ns = core.list_pod_for_all_namespaces(
        field_selector="metadata.namespace=default,metadata.name=field-a"
    ).items
    assert len(in_ns) == 1
    status, body = error(core.list_namespaced_pod, "default", field_selector="spec.bogus=1")
    assert (status, body["message"]) == (400, "field label not supported: spec.bogus")


# --- patch ---------------------------------------------------------------------------------------


def test_merge_patch_status_subresource_and_generation(batch: Any) -> None:
    created = batch.create_namespaced_job("default", job("patched", {"a": "1"}))
    patched = batch.patch_namespaced_job(
        "patched",
        "default",
        {"metadata": {"labels": {"a": None, "b": "2"}}, "status": {"active": 9}},
    )
    assert patched.metadata.labels == {"b": "2"}
    assert patched.status.active is None  # the main resource ignores status
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    status = batch.patch_namespaced_job_status(
        "patched", "default", {"status": {"active": 1}, "spec": {"backoffLimit": 5}}
    )
    assert status.status.active == 1
    assert status.spec.backoff_limit == 0
    assert status.metadata.generation == 1
    spec = batch.patch_namespaced_job("patched", "default", {"spec": {"activeDeadlineSeconds": 9}})
    assert spec.metadata.generation == 2
    assert spec.status.active == 1
    status, body = error(
        batch.patch_namespaced_job, "patched", "default", {"metadata": {"labels": {"x": "y" * 64}}}
    )
    assert (status, body["reason"]) == (422, "Invalid")


def test_a_stale_resource_version_is_a_conflict(batch: Any) -> None:
    batch.create_namespaced_job("default", job("stale"))
    status, body = error(
        batch.patch_namespaced_job, "stale", "default", {"metadata": {"resourceVersion": "1"}}
    )
    assert (status, body["reason"]) == (409, "Conflict")


# --- delete and propagation ----------------------------------------------------------------------


def _owned_pod(core: Any, owner: Any, name: str, node: str | None = None) -> None:
    body = pod(
        name,
        ownerReferences=[
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "name": owner.metadata.name,
                "uid": owner.metadata.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    )
    if node:
        body["spec"]["nodeName"] = node
    core.create_namespaced_pod("default", body)


def test_deleting_a_job_orphans_its_pods_by_default(batch: Any, core: Any) -> None:
    owner = batch.create_namespaced_job("default", job("orphaner"))
    _owned_pod(core, owner, "orphaner-pod1", node="flowrelay-dev")
    answer = batch.delete_namespaced_job("orphaner", "default", _preload_content=False)
    assert json.loads(answer.data)["status"] == "Success"
    error(batch.read_namespaced_job, "orphaner", "default")
    left = core.read_namespaced_pod("orphaner-pod1", "default")
    assert left.metadata.owner_references is None
    assert left.metadata.deletion_timestamp is None


def test_background_deletes_the_pods_gracefully(batch: Any, core: Any) -> None:
    owner = batch.create_namespaced_job("default", job("backgrounded"))
    _owned_pod(core, owner, "bg-bound", node="flowrelay-dev")
    _owned_pod(core, owner, "bg-unbound")
    batch.delete_namespaced_job("backgrounded", "default", propagation_policy="Background")
    error(batch.read_namespaced_job, "backgrounded", "default")
    bound = core.read_namespaced_pod("bg-bound", "default")
    assert bound.metadata.deletion_timestamp is not None
    assert bound.metadata.deletion_grace_period_seconds == 30
    error(core.read_namespaced_pod, "bg-unbound", "default")  # never ran: gone at once
    core.delete_namespaced_pod("bg-bound", "default", grace_period_seconds=0)  # its kubelet
    error(core.read_namespaced_pod, "bg-bound", "default")


def test_propagation_policy_in_the_query_and_foreground(
    api: KubernetesApi, batch: Any, core: Any
) -> None:
    owner = batch.create_namespaced_job("default", job("foreground"))
    _owned_pod(core, owner, "fg-bound", node="flowrelay-dev")
    request = urllib.request.Request(
        f"{api.url}/apis/batch/v1/namespaces/default/jobs/foreground?propagationPolicy=Foreground",
        method="DELETE",
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request) as response:
        answer = json.loads(response.read())
    assert answer["metadata"]["finalizers"] == ["foregroundDeletion"]
    assert batch.read_namespaced_job("foreground", "default").metadata.deletion_timestamp
    core.delete_namespaced_pod("fg-bound", "default", grace_period_seconds=0)
    error(batch.read_namespaced_job, "foreground", "default")


# --- pod log, binding ----------------------------------------------------------------------------


def test_pod_log_reads_the_kubelets_output(api: KubernetesApi, core: Any) -> None:
    core.create_namespaced_pod("default", pod("logged"))
    _, body = error(core.read_namespaced_pod_log, "logged", "default")
    assert body["message"] == 'container "c" in pod "logged" is waiting to start: ContainerCreating'
    api.pod_logs = lambda namespace, name, container: b"one\ntwo\nthree\n"
    try:
        assert core.read_namespaced_pod_log("logged", "default") == "one\ntwo\nthree\n"
        assert core.read_namespaced_pod_log("logged", "default", container="c", tail_lines=2) == (
            "two\nthree\n"
        )
        _status, body = error(core.read_namespaced_pod_log, "logged", "default", container="x")
        assert body["message"] == "container x is not valid for pod logged"
    finally:
        api.pod_logs = None


def test_binding_assigns_a_node_once(core: Any) -> None:
    core.create_namespaced_pod("default", pod("bound"))
    target = {"target": {"kind": "Node", "name": "flowrelay-dev"}, "metadata": {"name": "bound"}}
    core.create_namespaced_binding("default", target, _preload_content=False)
    assert core.read_namespaced_pod("bound", "default").spec.node_name == "flowrelay-dev"


# --- fault injection, requests, auth -------------------------------------------------------------


def test_fail_next_answers_a_status_error(api: KubernetesApi, batch: Any) -> None:
    api.fail_next("POST", r"/jobs$", 429, message="slow down")
    status, body = error(batch.create_namespaced_job, "default", job("faulty"))
    assert (status, body["reason"], body["message"]) == (429, "TooManyRequests", "slow down")
    api.fail_next("GET", r"/jobs/faulty$", 503, times=2)
    batch.create_namespaced_job("default", job("faulty"))
    assert error(batch.read_namespaced_job, "faulty", "default")[0] == 503
    assert error(batch.read_namespaced_job, "faulty", "default")[0] == 503
    assert batch.read_namespaced_job("faulty", "default").metadata.name == "faulty"


def test_drop_after_does_the_call_and_closes_the_connection(api: KubernetesApi, batch: Any) -> None:
    api.drop_after("POST", r"/jobs$")
    with pytest.raises(Exception) as caught:
        batch.create_namespaced_job("default", job("dropped"))
    assert not isinstance(caught.value, client.ApiException)
    assert batch.read_namespaced_job("dropped", "default").metadata.name == "dropped"


def test_requests_are_recorded(api: KubernetesApi, core: Any) -> None:
    core.read_namespace("default")
    last = api.requests[-1]
    assert (last.method, last.path, last.authorization) == (
        "GET",
        "/api/v1/namespaces/default",
        None,
    )


def test_watch_is_refused(api: KubernetesApi) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            f"{api.url}/api/v1/pods?watch=true"
        )
    assert caught.value.code == 405


def eks_token(cluster: str, region: str = "us-east-1") -> str:
    """A token as ``aws eks get-token`` makes it (signed offline with fake keys)."""
    sts = boto3.client(
        "sts",
        region_name=region,
        endpoint_url=f"https://sts.{region}.amazonaws.com",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
    )

    def add_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_header)
    url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=60)
    return "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def test_eks_tokens() -> None:
    server = KubernetesApi(eks_cluster="flows")
    url = server.start()
    try:
        token = eks_token("flows")
        assert _core(url, token).read_namespace("default").metadata.name
        assert server.requests[-1].authorization == f"Bearer {token}"
        unauthorized = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Unauthorized",
            "reason": "Unauthorized",
            "code": 401,
        }
        for bad in (None, "k8s-aws-v1.bm90LWEtdXJs", token.replace("k8s-aws-v1.", "k8s-aws-v2.")):
            status, body = error(_core(url, bad).read_namespace, "default")
            assert (status, body) == (401, unauthorized)
        plain = base64.urlsafe_b64decode(token[11:] + "==").decode()
        unsigned = plain.replace("x-k8s-aws-id", "x-other")
        forged = "k8s-aws-v1." + base64.urlsafe_b64encode(unsigned.encode()).decode().rstrip("=")
        assert error(_core(url, forged).read_namespace, "default")[0] == 401
        server.advance(16 * 60)
        assert error(_core(url, token).read_namespace, "default")[0] == 401
    finally:
        server.stop()


# --- what kmock 0.8 alone does differently -------------------------------------------------------


@pytest.fixture(scope="module")
def plain_kmock() -> Iterator[str]:
    """kmock 0.8's KubernetesEmulator as released, served over HTTP."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    emulator = KubernetesEmulator()
    emulator.resources["batch/v1/jobs"] = ResourceInfo()

    async def open_() -> tuple[asyncio.AbstractServer, str]:
        await emulator.__aenter__()
        server = await loop.create_server(aiohttp.web.Server(emulator), "127.0.0.1", 0)
        return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    server, url = asyncio.run_coroutine_threadsafe(open_(), loop).result(10)
    try:
        yield url
    finally:

        async def close() -> None:
            server.close()
            await emulator.__aexit__(None, None, None)

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_kmock_0_8_differs_where_the_subclass_fixes_it(plain_kmock: str) -> None:
    batch: Any = client.BatchV1Api(_client(plain_kmock))
    created = batch.create_namespaced_job("default", job("k", {"a": "1"}))
    assert created.metadata.uid is None
    assert created.metadata.resource_version is None
    status, body = error(batch.create_namespaced_job, "default", job("k"))
    assert (status, body["reason"]) == (409, "Object Already Exists")
    status, body = error(batch.read_namespaced_job, "missing", "default")
    assert (status, body["reason"]) == (404, "Object Not Found")
    assert len(batch.list_namespaced_job("default", label_selector="a=2").items) == 1
    batch.create_namespaced_job("nowhere", job("k"))  # no namespace check
    batch.create_namespaced_job("default", job("x" * 64))  # no validation
    status, body = error(client.CoreV1Api(_client(plain_kmock)).list_namespace)
    assert status == 500  # its request parser fails on /api/v1/namespaces
