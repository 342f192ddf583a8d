"""Jobs of the dev stack's Kubernetes run as local processes: the JobExecutor (controller,
scheduler, kubelet) against the API over real HTTP, read with the real ``kubernetes`` client."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from kubernetes import client

from flowrelay.devstack.kubernetes import JobExecutor, KubernetesApi
from tests.support.kubernetes import executing, job_body, serving, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api() -> Iterator[KubernetesApi]:
    with serving(KubernetesApi()) as server:
        yield server


@pytest.fixture(scope="module")
def executor(api: KubernetesApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobExecutor]:
    # Image pulls back off quickly, and a pod's grace period is short: tests wait on both.
    with executing(
        api,
        tmp_path_factory.mktemp("pods"),
        stack_env=lambda: {"FROM_STACK": "stack"},
        pull_backoff_seconds=0.3,
        shutdown_grace_seconds=2,
    ) as runner:
        yield runner


@pytest.fixture(scope="module")
def k8s(api: KubernetesApi) -> Any:
    configuration = client.Configuration(host=api.url)
    configuration.retries = False
    return client.ApiClient(configuration)


@pytest.fixture(scope="module")
def core(k8s: Any) -> Any:
    return client.CoreV1Api(k8s)


@pytest.fixture(scope="module")
def batch(k8s: Any) -> Any:
    return client.BatchV1Api(k8s)


def python(code: str, **container: Any) -> dict[str, Any]:
    return {
        "name": "flow",
        "image": "flowrelay-local:1",
        "command": ["python", "-c", code],
        **container,
    }


def make_job(batch: Any, container: dict[str, Any], **spec: Any) -> str:
    """A Job of ``container`` created in "default", labelled as flowrelay labels a run's; its
    name."""
    name = f"j-{uuid.uuid4().hex[:8]}"
    batch.create_namespaced_job(
        "default", job_body(name, container, labels={"flowrelay.io/run": name}, **spec)
    )
    return name


def finished(batch: Any, name: str) -> Callable[[], Any]:
    def check() -> Any:
        job = batch.read_namespaced_job(name, "default")
        done = [c for c in job.status.conditions or [] if c.type in ("Complete", "Failed")]
        return job if done else None

    return check


def pod_of(core: Any, job: str) -> Callable[[], Any]:
    def check() -> Any:
        pods = core.list_namespaced_pod("default", label_selector=f"job-name={job}").items
        return pods[0] if pods else None

    return check


def waiting(core: Any, job: str, reason: str) -> Callable[[], Any]:
    def check() -> Any:
        pod = pod_of(core, job)()
        for status in (pod.status.container_statuses or []) if pod else []:
            if status.state.waiting and status.state.waiting.reason == reason:
                return status.state.waiting
        return None

    return check


def events(core: Any, name: str) -> list[tuple[str, str]]:
    items = core.list_namespaced_event("default", field_selector=f"involvedObject.name={name}")
    return [(event.reason, event.message) for event in items.items]


def test_a_job_runs_to_complete_with_its_env_and_log(
    executor: JobExecutor, batch: Any, core: Any, tmp_path: Path
) -> None:
    core.create_namespaced_secret(
        "default", {"metadata": {"name": "run-secret"}, "stringData": {"token": "s3cret"}}
    )
    code = (
        "import os; print(os.environ['GREETING'], os.environ['TOKEN'], os.environ['FROM_STACK'],"
        " os.getcwd())"
    )
    container = python(
        code,
        env=[
            {"name": "GREETING", "value": "hello"},
            {
                "name": "TOKEN",
                "valueFrom": {"secretKeyRef": {"name": "run-secret", "key": "token"}},
            },
        ],
        workingDir=str(tmp_path),
    )
    name = make_job(batch, container)
    job = wait_for(finished(batch, name))
    assert [c.type for c in job.status.conditions][-1] == "Complete"
    assert job.status.succeeded == 1
    assert job.status.active == 0
    assert job.status.start_time
    assert job.status.completion_time
    pod = pod_of(core, name)()
    assert pod.metadata.name.startswith(f"{name}-")
    assert len(pod.metadata.name) == len(name) + 6
    assert pod.metadata.labels["batch.kubernetes.io/controller-uid"] == job.metadata.uid
    assert pod.metadata.labels["flowrelay.io/run"] == name
    owner = pod.metadata.owner_references[0]
    assert (owner.kind, owner.uid, owner.controller, owner.block_owner_deletion) == (
        "Job",
        job.metadata.uid,
        True,
        True,
    )
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (0, "Completed")
    log = core.read_namespaced_pod_log(pod.metadata.name, "default")
    assert log == f"hello s3cret stack {tmp_path}\n"
    reasons = [reason for reason, _ in events(core, pod.metadata.name)]
    assert {"Scheduled", "Pulled", "Created", "Started"} <= set(reasons)


def test_a_failing_command_fails_the_job_with_its_exit_code(
    executor: JobExecutor, batch: Any, core: Any
) -> None:
    name = make_job(batch, python("raise SystemExit(3)"))
    job = wait_for(finished(batch, name))
    failed = job.status.conditions[-1]
    assert (failed.type, failed.reason, failed.message) == (
        "Failed",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    )
    assert job.status.failed == 1
    assert job.status.completion_time is None
    pod = pod_of(core, name)()
    terminated = pod.status.container_statuses[0].state.terminated
    assert (pod.status.phase, terminated.exit_code, terminated.reason) == ("Failed", 3, "Error")


def test_a_dask_server_that_cannot_run_here_fails_to_start_saying_why(
    executor: JobExecutor, batch: Any, core: Any
) -> None:
    """The kubelet runs a Dask scheduler or worker as ECS tasks are run (devstack/dask_tasks.py),
    refusals included: a GPU worker is a StartError with the reason, as a missing program is."""
    container = {"name": "worker", "image": "flowrelay-local:1", "args": ["dask-cuda-worker"]}
    name = make_job(batch, container)
    wait_for(finished(batch, name))
    terminated = pod_of(core, name)().status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (128, "StartError")
    assert "dask-cuda-worker needs a GPU" in terminated.message


SLEEPER = "import signal, sys, time; print('up', flush=True); time.sleep(60)"


def test_background_deletion_ends_the_process_and_removes_job_and_pods(
    executor: JobExecutor, batch: Any, core: Any
) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *a: (print('term', flush=True), sys.exit(0)))\n"
        "print('up', flush=True)\ntime.sleep(60)"
    )
    name = make_job(batch, python(code), pod={"terminationGracePeriodSeconds": 5})
    pod = wait_for(lambda: (p := pod_of(core, name)()) and p.status.phase == "Running" and p)
    wait_for(lambda: "up" in core.read_namespaced_pod_log(pod.metadata.name, "default"))
    pid = executor.pid_of_pod("default", pod.metadata.name)
    assert pid is not None
    process = psutil.Process(pid)
    batch.delete_namespaced_job(name, "default", propagation_policy="Background")
    wait_for(lambda: not pod_of(core, name)())
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    assert executor.read_log("default", pod.metadata.name, "flow") == b"up\nterm\n"
    assert not batch.list_namespaced_job("default", field_selector=f"metadata.name={name}").items


def test_orphan_deletion_leaves_the_pod_running(
    executor: JobExecutor, batch: Any, core: Any
) -> None:
    name = make_job(batch, python(SLEEPER))
    pod = wait_for(lambda: (p := pod_of(core, name)()) and p.status.phase == "Running" and p)
    batch.delete_namespaced_job(name, "default")  # batch/v1's default: Orphan
    time.sleep(0.5)
    left = core.read_namespaced_pod(pod.metadata.name, "default")
    assert left.metadata.owner_references is None
    assert left.status.phase == "Running"
    assert executor.pid_of_pod("default", pod.metadata.name) is not None
    core.delete_namespaced_pod(pod.metadata.name, "default", grace_period_seconds=1)
    wait_for(lambda: not pod_of(core, name)())


def test_an_invalid_image_reference(batch: Any, core: Any, executor: JobExecutor) -> None:
    name = make_job(batch, python("pass", image="Not A/Valid::image"))
    state = wait_for(waiting(core, name, "InvalidImageName"))
    assert state.message == (
        'Failed to apply default image tag "Not A/Valid::image": couldn\'t parse image name '
        '"Not A/Valid::image": invalid reference format'
    )


def test_a_missing_image_backs_off_until_it_appears(
    batch: Any, core: Any, executor: JobExecutor
) -> None:
    name = make_job(batch, python("pass", image="registry.invalid/flows:1"))
    pulled = wait_for(waiting(core, name, "ErrImagePull"))
    assert "lookup registry.invalid: no such host" in pulled.message
    state = wait_for(waiting(core, name, "ImagePullBackOff"))
    assert state.message == 'Back-off pulling image "registry.invalid/flows:1"'
    other = make_job(batch, python("print('ran')", image="example.com/flows:2"))
    executor.missing_images.add("example.com/flows:2")
    try:
        wait_for(waiting(core, other, "ImagePullBackOff"))
    finally:
        executor.missing_images.discard("example.com/flows:2")
    job = wait_for(finished(batch, other))
    assert job.status.succeeded == 1
    pod = pod_of(core, name)()
    reasons = [reason for reason, _ in events(core, pod.metadata.name)]
    assert {"Pulling", "Failed", "BackOff"} <= set(reasons)
    assert pod.status.phase == "Pending"


def test_a_container_without_a_command(batch: Any, core: Any, executor: JobExecutor) -> None:
    name = make_job(batch, {"name": "flow", "image": "flowrelay-local:1"})
    state = wait_for(waiting(core, name, "CreateContainerError"))
    assert "runs only containers that give a command" in state.message


def test_a_missing_secret_waits_until_it_exists(
    batch: Any, core: Any, executor: JobExecutor
) -> None:
    secret = f"s-{uuid.uuid4().hex[:6]}"
    env = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": secret, "key": "t"}}}]
    name = make_job(batch, python("import os; print(os.environ['T'])", env=env))
    state = wait_for(waiting(core, name, "CreateContainerConfigError"))
    assert state.message == f'secret "{secret}" not found'
    core.create_namespaced_secret(
        "default", {"metadata": {"name": secret}, "stringData": {"t": "ok"}}
    )
    assert wait_for(finished(batch, name)).status.succeeded == 1


@pytest.mark.parametrize(
    ("pod_spec", "message"),
    [
        (
            {"containers": [python("pass", resources={"requests": {"cpu": "64"}})]},
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod.",
        ),
        (
            {"nodeSelector": {"kubernetes.io/arch": "arm64"}},
            "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
        ),
    ],
)
def test_an_unschedulable_pod_stays_pending(
    batch: Any,
    core: Any,
    executor: JobExecutor,
    pod_spec: dict[str, Any],
    message: str,
) -> None:
    container = pod_spec.pop("containers", [python("pass")])[0]
    name = make_job(batch, container, pod=pod_spec)

    def unschedulable() -> Any:
        pod = pod_of(core, name)()
        conditions = (pod.status.conditions or []) if pod else []
        return next(
            (c for c in conditions if c.type == "PodScheduled" and c.status == "False"), None
        )

    condition = wait_for(unschedulable)
    assert (condition.reason, condition.message) == ("Unschedulable", message)
    pod = pod_of(core, name)()
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    assert ("FailedScheduling", message) in events(core, pod.metadata.name)


def test_a_pod_over_its_memory_limit_is_oom_killed(
    batch: Any, core: Any, executor: JobExecutor
) -> None:
    code = "import time; b = bytearray(200 * 1024 * 1024); time.sleep(30)"
    name = make_job(batch, python(code, resources={"limits": {"memory": "100Mi"}}))
    wait_for(finished(batch, name), timeout=15)
    terminated = pod_of(core, name)().status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_an_evicted_pod_fails(batch: Any, core: Any, executor: JobExecutor) -> None:
    name = make_job(batch, python(SLEEPER))
    pod = wait_for(lambda: (p := pod_of(core, name)()) and p.status.phase == "Running" and p)
    executor.evict("default", pod.metadata.name, "The node was low on resource: memory. ")
    job = wait_for(finished(batch, name))
    assert job.status.conditions[-1].reason == "BackoffLimitExceeded"
    evicted = core.read_namespaced_pod(pod.metadata.name, "default")
    assert (evicted.status.phase, evicted.status.reason) == ("Failed", "Evicted")
    assert evicted.status.message == "The node was low on resource: memory. "


def test_active_deadline_seconds(batch: Any, core: Any, executor: JobExecutor) -> None:
    name = make_job(
        batch, python(SLEEPER), activeDeadlineSeconds=1, pod={"terminationGracePeriodSeconds": 1}
    )
    job = wait_for(finished(batch, name))
    failed = job.status.conditions[-1]
    assert (failed.type, failed.reason, failed.message) == (
        "Failed",
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    )
    assert not pod_of(core, name)()


def test_ttl_seconds_after_finished(batch: Any, core: Any, executor: JobExecutor) -> None:
    name = make_job(batch, python("pass"), ttlSecondsAfterFinished=1)
    wait_for(finished(batch, name))
    wait_for(
        lambda: (
            not batch.list_namespaced_job("default", field_selector=f"metadata.name={name}").items
        )
    )
    wait_for(lambda: not pod_of(core, name)())
