"""The Kubernetes launcher against the dev stack's Kubernetes API: real HTTP on loopback, the
real ``kubernetes`` client, Jobs run as local processes by the dev stack's job executor. Nothing
of flowrelay's is mocked.

Pods run ``flowrelay-runner`` for real. Where a test needs a pod that keeps running, its runner
is pointed at a loopback port that accepts connections and never answers (``black_hole``): it
waits, as a runner whose AWS endpoint hangs would, and never leaves the machine.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psutil
import pytest
from botocore.credentials import Credentials

from flowrelay.core.policies import Timeouts
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.devstack.kubernetes import JobExecutor, KubernetesApi
from flowrelay.devstack.kubernetes.objects import KINDS
from flowrelay.launchers.base import InfraStatus, LaunchError
from flowrelay.launchers.kubernetes.launcher import KubernetesLaunched, KubernetesLauncher
from flowrelay.launchers.kubernetes.names import job_name

pytestmark = pytest.mark.slow
NAMESPACE = "flowrelay"
NOW = datetime(2026, 11, 29, tzinfo=UTC)


class Session:
    """A boto3 session as the launcher uses one for EKS: credentials to sign tokens with (the
    one boundary stubbed; counting the tokens made)."""

    region_name = "eu-west-1"

    def __init__(self) -> None:
        self.signed = 0

    def get_credentials(self) -> Credentials:
        self.signed += 1
        return Credentials("AKIDEXAMPLE", "example-not-a-secret")


@pytest.fixture(scope="module")
def black_hole() -> Iterator[str]:
    """A loopback endpoint that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


@pytest.fixture(scope="module")
def cluster(
    moto_server: str, black_hole: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[KubernetesApi, JobExecutor]]:
    """One emulated cluster (EKS tokens required) and its job executor for the module."""
    api = KubernetesApi(eks_cluster="flows")
    url = api.start()
    environment = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    executor = JobExecutor(
        url=url,
        headers=api.headers(),
        stack_env=lambda: dict(environment),
        log_dir=tmp_path_factory.mktemp("pods"),
        pull_backoff_seconds=0.2,
    )
    api.pod_logs = executor.read_log
    executor.start()
    try:
        yield api, executor
    finally:
        executor.stopping.set()
        executor.join(timeout=30)
        executor.shutdown()
        api.stop()


@pytest.fixture
def api(cluster: tuple[KubernetesApi, JobExecutor]) -> KubernetesApi:
    return cluster[0]


@pytest.fixture
def executor(cluster: tuple[KubernetesApi, JobExecutor]) -> JobExecutor:
    return cluster[1]


@pytest.fixture
def session() -> Session:
    return Session()


@pytest.fixture
def launcher(session: Session) -> KubernetesLauncher:
    return KubernetesLauncher(
        table_name="runs", bus_name="bus", region="us-east-1", session=session
    )


def target_for(api: KubernetesApi, **settings: Any) -> Target:
    return Target(
        name="k8s",
        kind="kubernetes",
        settings={
            "eks_cluster": "flows",
            "api_server": api.url,
            "namespace": NAMESPACE,
            "image": "flowrelay/runner:dev",
            **settings,
        },
    )


_runs = iter(range(1_000_000))


def new_run(run_config: dict[str, Any] | None = None, **fields: Any) -> FlowRun:
    run_id = f"Run_{next(_runs)}_{time.monotonic_ns()}"
    return FlowRun(
        run_id=run_id,
        flow_name="etl",
        created_at=NOW,
        updated_at=NOW,
        state_entered_at=NOW,
        run_config={"type": "KubernetesRun", **(run_config or {})},
        **fields,
    )


def hanging(black_hole: str, **config: Any) -> dict[str, Any]:
    """A run config whose runner waits forever on an endpoint that never answers."""
    env = {"AWS_ENDPOINT_URL": black_hole, **config.pop("env", {})}
    return {"env": env, **config}


def wait_for(
    launcher: KubernetesLauncher,
    launched: KubernetesLaunched,
    done: Callable[[InfraStatus], bool],
    timeout: float = 20.0,
) -> InfraStatus:
    infrastructure = launched.model_dump(mode="json")
    deadline = time.monotonic() + timeout
    while True:
        status = launcher.status(infrastructure)
        if done(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def jobs_of(api: KubernetesApi, run: FlowRun) -> list[Any]:
    return [
        job
        for (plural, namespace, _), job in list(api.store.objects.items())
        if plural == "jobs"
        and namespace == NAMESPACE
        and job["metadata"].get("annotations", {}).get("flowrelay.dev/run-id") == run.run_id
    ]


# --- one Job per attempt ---------------------------------------------------------------------


def test_a_launch_creates_the_job_and_reads_its_pod(
    api: KubernetesApi, launcher: KubernetesLauncher, black_hole: str, session: Session
) -> None:
    run = new_run(hanging(black_hole))
    launched = launcher.launch(run, target_for(api))
    assert launched.job_name == job_name(run.run_id, 1)
    assert launched.ref == f"{NAMESPACE}/{launched.job_name}"
    assert launched.uid
    running = wait_for(launcher, launched, lambda status: status.phase == "running")
    assert running.phase == "running", running.message
    assert running.details["pod"].startswith(launched.job_name)
    launcher.stop_launched(launched.model_dump(mode="json"), "test over")
    # The header the API server received: "Bearer " and an EKS token, signed once.
    sent = {request.authorization for request in api.requests if request.authorization}
    ours = [header for header in sent if header.startswith("Bearer k8s-aws-v1.")]
    assert ours
    assert session.signed == 1


def test_five_deliveries_of_one_attempt_make_one_job(
    api: KubernetesApi, launcher: KubernetesLauncher, black_hole: str
) -> None:
    run = new_run(hanging(black_hole))
    target = target_for(api)
    results = [launcher.launch(run, target, resume=bool(i % 2)) for i in range(5)]
    assert len({(result.ref, result.uid) for result in results}) == 1
    assert len(jobs_of(api, run)) == 1
    second = launcher.launch(run, target, attempt=2)
    assert second.job_name != results[0].job_name
    assert len(jobs_of(api, run)) == 2
    for launched in (results[0], second):
        launcher.stop_launched(launched.model_dump(mode="json"), "test over")


def test_concurrent_deliveries_make_one_job(api: KubernetesApi, black_hole: str) -> None:
    run = new_run(hanging(black_hole))
    target = target_for(api)
    results: list[KubernetesLaunched] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        # Each delivery its own launcher, as concurrent Lambda containers have.
        own = KubernetesLauncher(table_name="runs", bus_name="bus", session=Session())
        try:
            results.append(own.launch(run, target))
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({result.uid for result in results}) == 1
    assert len(jobs_of(api, run)) == 1
    KubernetesLauncher(table_name="r", bus_name="b", session=Session()).stop_launched(
        results[0].model_dump(mode="json"), "test over"
    )


def test_a_job_of_that_name_that_is_not_this_runs_is_never_adopted(
    api: KubernetesApi, launcher: KubernetesLauncher
) -> None:
    run = new_run()
    stranger = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name(run.run_id, 1), "namespace": NAMESPACE},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox", "command": ["true"]}],
                }
            },
        },
    }
    api.store.create(KINDS[("batch", "jobs")], NAMESPACE, stranger)
    with pytest.raises(LaunchError) as caught:
        launcher.launch(run, target_for(api))
    assert "exists and is not flowrelay's" in str(caught.value)
    assert not caught.value.retryable


def test_a_create_that_went_unanswered_is_found_when_resumed(
    api: KubernetesApi, launcher: KubernetesLauncher, black_hole: str
) -> None:
    run = new_run(hanging(black_hole))
    api.drop_after("POST", r"/jobs$")
    with pytest.raises(LaunchError) as caught:
        launcher.launch(run, target_for(api))
    assert caught.value.outcome_unknown
    assert caught.value.retryable
    assert len(jobs_of(api, run)) == 1  # it happened
    found = launcher.launch(run, target_for(api), resume=True)
    assert len(jobs_of(api, run)) == 1
    assert found.uid == jobs_of(api, run)[0]["metadata"]["uid"]
    launcher.stop_launched(found.model_dump(mode="json"), "test over")


@pytest.mark.parametrize(
    ("status", "retryable", "unknown"), [(429, True, False), (503, True, True), (500, True, True)]
)
def test_server_answers_are_classified(
    api: KubernetesApi,
    launcher: KubernetesLauncher,
    status: int,
    retryable: bool,
    unknown: bool,
) -> None:
    run = new_run()
    api.fail_next("POST", r"/jobs$", status, message="the server's own words")
    with pytest.raises(LaunchError) as caught:
        launcher.launch(run, target_for(api))
    assert (caught.value.retryable, caught.value.outcome_unknown) == (retryable, unknown)
    assert "the server's own words" in str(caught.value)
    assert jobs_of(api, run) == []


def test_an_invalid_job_is_final_with_the_api_servers_message(
    api: KubernetesApi, launcher: KubernetesLauncher
) -> None:
    template = {"metadata": {"labels": {"team": "x" * 70}}}
    with pytest.raises(LaunchError) as caught:
        launcher.launch(new_run({"job_template": template}), target_for(api))
    assert not caught.value.retryable
    assert "must be no more than 63 characters" in str(caught.value)
    missing = target_for(api, namespace="nowhere")
    with pytest.raises(LaunchError, match='namespaces "nowhere" not found'):
        launcher.launch(new_run(), missing)


def test_a_401_mints_a_new_token_once(
    api: KubernetesApi, launcher: KubernetesLauncher, session: Session, black_hole: str
) -> None:
    run = new_run(hanging(black_hole))
    launched = launcher.launch(run, target_for(api))
    assert session.signed == 1
    api.fail_next("GET", r"/jobs/", 401, message="Unauthorized")
    status = launcher.status(launched.model_dump(mode="json"))
    assert status.phase in ("starting", "running")
    assert session.signed == 2
    api.fail_next("GET", r"/jobs/", 401, times=2, message="Unauthorized")
    with pytest.raises(LaunchError, match="did not accept flowrelay's credentials"):
        launcher.status(launched.model_dump(mode="json"))
    launcher.stop_launched(launched.model_dump(mode="json"), "test over")


def test_an_expired_token_is_refused_by_the_api_server(
    api: KubernetesApi, launcher: KubernetesLauncher
) -> None:
    """The emulator checks a token's age as EKS does (15 minutes): what makes the reuse limit
    (14 minutes) matter."""
    launcher.launch(new_run(), target_for(api, image="registry.invalid/x:1"))
    api.advance(16 * 60)
    try:
        fresh = KubernetesLauncher(table_name="r", bus_name="b", session=Session())
        with pytest.raises(LaunchError, match="did not accept"):
            fresh.launch(new_run(), target_for(api))
    finally:
        api.advance(-16 * 60)


# --- what the monitor reads ------------------------------------------------------------------


def test_an_image_that_cannot_be_pulled_cannot_start(
    api: KubernetesApi, launcher: KubernetesLauncher
) -> None:
    launched = launcher.launch(new_run({"image": "registry.invalid/flows/etl:1"}), target_for(api))
    status = wait_for(launcher, launched, lambda status: status.cannot_start)
    assert status.cannot_start, status.message
    assert status.reason in ("ErrImagePull", "ImagePullBackOff")
    launcher.stop_launched(launched.model_dump(mode="json"), "cannot start")
    gone = wait_for(launcher, launched, lambda status: status.phase == "gone")
    assert gone.phase == "gone"


def test_an_invalid_image_name_cannot_start(
    api: KubernetesApi, launcher: KubernetesLauncher
) -> None:
    launched = launcher.launch(new_run({"image": "Not A/Valid:Image!"}), target_for(api))
    status = wait_for(launcher, launched, lambda status: status.cannot_start)
    assert status.reason == "InvalidImageName", status.message
    launcher.stop_launched(launched.model_dump(mode="json"), "cannot start")


def test_a_missing_secret_cannot_start(api: KubernetesApi, launcher: KubernetesLauncher) -> None:
    template = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "flow",
                            "env": [
                                {
                                    "name": "DB",
                                    "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}},
                                }
                            ],
                        }
                    ]
                }
            }
        }
    }
    launched = launcher.launch(new_run({"job_template": template}), target_for(api))
    status = wait_for(launcher, launched, lambda status: status.cannot_start)
    assert status.reason == "CreateContainerConfigError", status.message
    assert 'secret "db" not found' in status.message
    launcher.stop_launched(launched.model_dump(mode="json"), "cannot start")


def test_unschedulable_waits_with_the_schedulers_words(
    api: KubernetesApi, launcher: KubernetesLauncher
) -> None:
    launched = launcher.launch(new_run({"cpu_request": "64"}), target_for(api))
    status = wait_for(launcher, launched, lambda status: status.reason == "Unschedulable")
    assert status.phase == "starting"
    assert not status.cannot_start
    assert "0/1 nodes are available" in status.message
    assert "Insufficient cpu" in status.message
    launcher.stop_launched(launched.model_dump(mode="json"), "did not start")


def test_out_of_memory_is_oomkilled_137(
    api: KubernetesApi, launcher: KubernetesLauncher, black_hole: str
) -> None:
    launched = launcher.launch(new_run(hanging(black_hole, memory_limit="8Mi")), target_for(api))
    status = wait_for(launcher, launched, lambda status: status.ended)
    assert (status.phase, status.reason, status.exit_code) == ("stopped", "OOMKilled", 137)


def test_evicted(
    api: KubernetesApi,
    executor: JobExecutor,
    launcher: KubernetesLauncher,
    black_hole: str,
) -> None:
    launched = launcher.launch(new_run(hanging(black_hole)), target_for(api))
    running = wait_for(launcher, launched, lambda status: status.phase == "running")
    executor.evict(NAMESPACE, running.details["pod"], "The node was low on resource: memory.")
    status = wait_for(launcher, launched, lambda status: status.ended)
    assert (status.phase, status.reason) == ("stopped", "Evicted")
    assert "The node was low on resource: memory." in status.message


def test_the_deadline_from_the_run_timeout(
    api: KubernetesApi, launcher: KubernetesLauncher, black_hole: str
) -> None:
    timeouts = Timeouts(start_seconds=1, start_limit_seconds=1, run_seconds=1)
    launched = launcher.launch(new_run(hanging(black_hole), timeouts=timeouts), target_for(api))
    # The deadline is 2 s; the pod then gets SIGTERM and its 30 s grace (the runner, blocked on
    # its endpoint, finishes its report first).
    status = wait_for(launcher, launched, lambda status: status.ended, timeout=60)
    assert status.phase == "stopped", status.message
    assert status.reason in ("DeadlineExceeded", "Error")


def test_a_runner_that_exits_non_zero(api: KubernetesApi, launcher: KubernetesLauncher) -> None:
    """The runner finds no run 'runs' table in moto: it says so and exits 2 (not run)."""
    launched = launcher.launch(new_run(), target_for(api))
    status = wait_for(launcher, launched, lambda status: status.ended, timeout=40)
    assert (status.phase, status.exit_code) == ("stopped", 2), status.message
    log = launcher.read_log(launched.model_dump(mode="json"))
    assert log


def test_a_stop_leaves_no_job_no_pod_no_process(
    api: KubernetesApi, executor: JobExecutor, launcher: KubernetesLauncher, black_hole: str
) -> None:
    run = new_run(hanging(black_hole))
    launched = launcher.launch(run, target_for(api))
    running = wait_for(launcher, launched, lambda status: status.phase == "running")
    # The pod is Running once its guard started; the guard starts the command a moment later.
    deadline = time.monotonic() + 10
    while (pid := executor.pid_of_pod(NAMESPACE, running.details["pod"])) is None:
        assert time.monotonic() < deadline, "the pod's command never started"
        time.sleep(0.05)
    launcher.stop_launched(launched.model_dump(mode="json"), "cancelled")
    launcher.stop_launched(launched.model_dump(mode="json"), "cancelled again")  # idempotent
    gone = wait_for(launcher, launched, lambda status: status.phase == "gone", timeout=40)
    assert gone.phase == "gone", gone.message
    assert jobs_of(api, run) == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_find_unrecorded_finds_the_attempts_job(
    api: KubernetesApi, launcher: KubernetesLauncher, black_hole: str
) -> None:
    run = new_run(hanging(black_hole))
    target = target_for(api)
    assert launcher.find_unrecorded(run, 1, [target]) is None
    launched = launcher.launch(run, target)
    found = launcher.find_unrecorded(run, 1, [target, target])
    assert found is not None
    assert found.uid == launched.uid
    assert launcher.find_unrecorded(run, 2, [target]) is None
    launcher.stop_launched(found.model_dump(mode="json"), "test over")
