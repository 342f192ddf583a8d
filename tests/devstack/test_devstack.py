"""The embedded dev stack end to end: template.yaml in moto server, the real handlers in-process,
the real flow runner as local processes, over HTTP on loopback only.

One stack serves the module (starting one takes about two seconds); the last test stops it and
checks that nothing is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from flowrelay.aws.bus import Publisher
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunRequested
from flowrelay.core.routing import Target
from flowrelay.core.runs import states_reached
from flowrelay.core.storage import Module
from flowrelay.devstack import DevStack
from flowrelay.devstack.processes import running
from flowrelay.devstack.template import load_template
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow
from tests.support.devstack import clients_of

ROOT = Path(__file__).resolve().parents[2]
FINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Crashed"}
HEARTBEAT_TIMEOUT = 3

# moto's CloudFormation skips resource types it does not implement (QueuePolicy, Alarm), with a
# warning from the server thread.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation")


class Stack:
    """The running stack and clients for it, as another process would make them."""

    def __init__(self, stack: DevStack, lines: list[str], endpoint_before: str | None) -> None:
        self.dev = stack
        self.endpoint_before = endpoint_before
        self.lines = lines
        self.client: Callable[[str], Any] = clients_of(stack)
        self.store = Store(self.client("dynamodb"), stack.outputs["TableName"])
        self.publisher = Publisher(self.client("events"), stack.outputs["BusName"])
        self.sqs = self.client("sqs")
        self.ecs = self.client("ecs")

    def queue_url(self, output: str) -> str:
        name = self.dev.outputs[output].rsplit("/", 1)[1]
        return str(self.sqs.get_queue_url(QueueName=name)["QueueUrl"])

    def wait_final(self, run_id: str, timeout: float = 25.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.store.runs.get(run_id)
            if run is not None and str(run.state) in FINAL:
                return run
            time.sleep(0.2)
        raise AssertionError(
            f"run {run_id} not final after {timeout}s: {self.store.runs.get(run_id)}"
        )

    def tasks_of(self, run_id: str) -> list[str]:
        cluster = self.dev.outputs["ClusterName"]
        arns = [
            arn
            for status in ("RUNNING", "STOPPED")
            for arn in self.ecs.list_tasks(cluster=cluster, desiredStatus=status)["taskArns"]
        ]
        if not arns:
            return []
        tasks = self.ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
        return sorted({t["taskArn"] for t in tasks if t.get("group") == f"flowrelay:{run_id}"})


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    lines: list[str] = []
    endpoint_before = os.environ.get("AWS_ENDPOINT_URL")
    dev = DevStack(
        ROOT / "template.yaml",
        log=lines.append,
        poll_seconds=0.1,
        # Short limits and a monitor pass every second, so the monitor's duties show in seconds.
        schedule_seconds=1,
        parameters={
            "HeartbeatTimeoutSeconds": str(HEARTBEAT_TIMEOUT),
            "StartTimeoutSeconds": "10",
            "StopGraceSeconds": "5",
        },
    )
    dev.start()
    try:
        running = Stack(dev, lines, endpoint_before)
        for path in (
            "flowrelay.sdk.examples.hello:flow",
            "flowrelay.sdk.examples.failing:flow",
            "tests.support.flows:flow",
            "tests.support.flows:hog",
            "tests.support.flows:local_writer",
            "tests.support.flows:local_sleepy",
            "tests.support.flows:ticker",
            "tests.support.flows:k8s",
            "tests.support.flows:k8s_sleepy",
            "tests.support.flows:k8s_job_spec",
        ):
            flow = load_flow(Module(path))
            running.store.flows.register(registration_for(flow, storage=Module(path)))
        running.store.targets.put(
            Target(name="fargate", kind="ecs", settings=dev.ecs_target_settings())
        )
        running.store.targets.put(
            Target(name="local", kind="local", settings=dev.local_target_settings())
        )
        running.store.targets.put(
            Target(name="k8s", kind="kubernetes", settings=dev.kubernetes_target_settings())
        )
        yield running
    finally:
        dev.stop()


def request(
    stack: Stack,
    flow: str,
    run_id: str | None = None,
    times: int = 1,
    parameters: dict[str, Any] | None = None,
) -> str:
    run_id = run_id or str(uuid.uuid4())
    for _ in range(times):
        stack.publisher.publish(
            FlowRunRequested(
                flow=flow, flow_run_id=run_id, requested_by="t", parameters=parameters or {}
            )
        )
    return run_id


def test_the_stack_is_template_yaml_with_every_output(stack: Stack) -> None:
    template = load_template(ROOT / "template.yaml")
    # Conditional outputs (DaskSecurityGroupId: only with DaskVpcId) are absent by default.
    unconditional = {
        name for name, output in template["Outputs"].items() if "Condition" not in output
    }
    assert set(stack.dev.outputs) == unconditional
    env = stack.dev.environment()
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["FLOWRELAY_TABLE_NAME"] == stack.dev.outputs["TableName"]
    assert env["FLOWRELAY_BUS_NAME"] == stack.dev.outputs["BusName"]
    assert env["FLOWRELAY_STACK"] == "flowrelay-dev"
    # moto must not consume the queues itself: the dev stack's pollers are the only consumers.
    mappings = stack.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert mappings
    assert {mapping["State"] for mapping in mappings} == {"Disabled"}
    assert set(stack.dev.functions) == {"Dispatch", "RecordState", "Cancel", "Monitor"}


def test_a_requested_run_runs_as_a_local_process_and_succeeds(stack: Stack) -> None:
    started_before = len(stack.dev.executor.started_pids) if stack.dev.executor else 0
    run_id = request(stack, "hello")

    run = stack.wait_final(run_id)

    assert str(run.state) == "Success", run.message
    # The runner's Running and Success reports may be recorded by two concurrent record_state
    # batches, as on AWS: a Running that comes after Success is kept as a note.
    reached = states_reached(stack.store.runs.history(run_id))
    assert [str(state) for state, _ in reached] == ["Pending", "Submitted", "Running", "Success"]
    (task_arn,) = stack.tasks_of(run_id)
    assert run.infrastructure["task_arn"] == task_arn
    assert stack.dev.executor is not None
    assert len(stack.dev.executor.started_pids) == started_before + 1
    assert any(f"task started: run {run_id}" in line for line in stack.lines)
    # The runner's state events came from the process, through the bus and the state queue.
    sources = {str(entry.source) for entry in stack.store.runs.history(run_id)}
    assert "runner" in sources


def test_a_failing_flow_ends_failed_naming_the_task(stack: Stack) -> None:
    run_id = request(stack, "failing")

    run = stack.wait_final(run_id)

    assert str(run.state) == "Failed"
    assert "Task 'divide' failed" in (run.message or "")


def test_one_request_published_five_times_launches_one_task(stack: Stack) -> None:
    assert stack.dev.executor is not None
    run_id = request(stack, "hello", times=5)

    run = stack.wait_final(run_id)
    assert stack.dev.wait_idle(10)

    assert str(run.state) == "Success"
    assert len(stack.tasks_of(run_id)) == 1
    started = [line for line in stack.lines if f"task started: run {run_id}" in line]
    assert len(started) == 1


def test_a_task_repeating_a_run_and_attempt_is_not_run_again(stack: Stack) -> None:
    """moto ignores RunTask's clientToken; the dev stack emulates AWS returning the first task."""
    from flowrelay.launchers.ecs.names import RUN_ID_TAG

    run_id = request(stack, "hello")
    run = stack.wait_final(run_id)
    assert stack.dev.executor is not None
    started_before = len(stack.dev.executor.started_pids)
    network = stack.dev.ecs_target_settings()

    stack.ecs.run_task(
        cluster=stack.dev.outputs["ClusterName"],
        taskDefinition=run.infrastructure["task_definition_arn"],
        launchType="FARGATE",
        group=f"flowrelay:{run_id}",
        tags=[{"key": RUN_ID_TAG, "value": run_id}],
        overrides={
            "containerOverrides": [
                {"name": "flow", "environment": [{"name": "FLOWRELAY_ATTEMPT", "value": "1"}]}
            ]
        },
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": network["subnets"],
                "securityGroups": network["security_groups"],
            }
        },
    )

    deadline = time.monotonic() + 10
    while len(stack.dev.executor.duplicates) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    (duplicate,) = stack.dev.executor.duplicates
    (described,) = stack.ecs.describe_tasks(
        cluster=stack.dev.outputs["ClusterName"], tasks=[duplicate]
    )["tasks"]
    assert described["lastStatus"] == "STOPPED"
    assert len(stack.dev.executor.started_pids) == started_before
    assert str(stack.wait_final(run_id).state) == "Success"


def test_a_task_stopped_in_ecs_has_its_process_terminated(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the runner process imports tests.support
    run_id = request(stack, "sleepy")
    deadline = time.monotonic() + 15
    while not stack.tasks_of(run_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    while not any(f"task started: run {run_id}" in line for line in stack.lines):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # let the runner report Running and start the flow
    (task_arn,) = stack.tasks_of(run_id)

    stack.ecs.stop_task(
        cluster=stack.dev.outputs["ClusterName"], task=task_arn, reason="stopped by the test"
    )

    run = stack.wait_final(run_id, timeout=15)
    assert str(run.state) in {"Failed", "Crashed"}, run.message
    assert any(
        f"task stopped in ECS: run {run_id} (stopped by the test)" in line for line in stack.lines
    )
    # The runner reports its end before it exits, and the executor notes the exit when it reaps
    # the process: the run can be final a moment before the line is written.
    deadline = time.monotonic() + 10
    while not any(f"task exited: run {run_id} code 143" in line for line in stack.lines):
        assert time.monotonic() < deadline, "the task's process did not exit with 143"
        time.sleep(0.05)


def start_sleepy(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """Request the sleepy flow; once it runs, its run id and its runner's process id."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the runner process imports tests.support
    run_id = request(stack, "sleepy")
    assert stack.dev.executor is not None
    deadline = time.monotonic() + 20
    while True:
        run = stack.store.runs.get(run_id)
        pid = stack.dev.executor.pid_of(run_id)
        if run is not None and str(run.state) == "Running" and pid is not None:
            return run_id, pid
        assert time.monotonic() < deadline, f"run {run_id} not running: {run}"
        time.sleep(0.1)


def test_a_runner_killed_with_sigkill_is_crashed_with_its_exit_code(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, pid = start_sleepy(stack, monkeypatch)
    os.kill(pid, signal.SIGKILL)
    run = stack.wait_final(run_id, timeout=15)
    assert str(run.state) == "Crashed", run.message
    assert "container 'flow' exited with code 137" in str(run.message)
    # The runner could not report: the tail of its task's log says what it was doing.
    assert "last log lines:" in str(run.message)
    assert stack.dev.executor is not None
    assert stack.dev.executor.pid_of(run_id) is None


def test_a_killed_runner_whose_events_are_lost_is_crashed_by_the_monitor(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ECS events never arrive: one monitor pass after the heartbeat timeout finds the
    stopped task and says so."""
    run_id, pid = start_sleepy(stack, monkeypatch)
    assert stack.dev.executor is not None
    stack.dev.executor.lose_events_of(run_id)
    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    run = stack.wait_final(run_id, timeout=HEARTBEAT_TIMEOUT + 15)
    took = time.monotonic() - killed_at
    assert str(run.state) == "Crashed", run.message
    assert stack.dev.executor.lost_events[run_id] == ["STOPPED"]
    last = stack.store.runs.history(run_id)[-1]
    assert str(last.source) == "monitor"
    assert "no heartbeat for" in str(run.message)
    # Within one monitor pass (every second here) of the heartbeat timeout, plus polling slack.
    assert took <= HEARTBEAT_TIMEOUT + 30


@pytest.mark.slow
def test_a_malformed_message_does_not_block_others_and_lands_in_the_dlq(stack: Stack) -> None:
    dispatch_queue = stack.queue_url("DispatchQueueUrl")
    dlq = stack.queue_url("DispatchDLQUrl")
    stack.sqs.send_message(QueueUrl=dispatch_queue, MessageBody="this is not an event")
    run_id = request(stack, "hello")

    assert str(stack.wait_final(run_id).state) == "Success"

    # No delivery can make it readable: dead-lettered on its first, with the reason.
    deadline = time.monotonic() + 10
    messages: list[dict[str, Any]] = []
    while not messages and time.monotonic() < deadline:
        response = stack.sqs.receive_message(
            QueueUrl=dlq, WaitTimeSeconds=1, MessageAttributeNames=["All"]
        )
        messages = response.get("Messages", [])
    assert [message["Body"] for message in messages] == ["this is not an event"]
    reason = messages[0]["MessageAttributes"]["flowrelay-error"]["StringValue"]
    assert reason.startswith("EventError: not JSON: Expecting value")


def test_a_task_over_its_memory_is_killed_as_fargate_kills_it(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target's tasks have 512 MiB (the ECS default); the flow holds 700 MiB."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the runner process imports tests.support
    run_id = request(stack, "hog", parameters={"mib": 700})

    run = stack.wait_final(run_id, timeout=30)

    assert str(run.state) == "Crashed", run.message
    assert "container 'flow' exited with code 137" in str(run.message)
    assert "(OutOfMemoryError: Container killed due to memory usage)" in str(run.message)
    assert "EssentialContainerExited" in str(run.message)
    assert any(f"task started: run {run_id} group" in line for line in stack.lines)
    assert any(f"task started: run {run_id}" in line and "512 MiB" in line for line in stack.lines)
    assert any(f"task out of memory: run {run_id}" in line for line in stack.lines)


def test_a_task_under_its_memory_succeeds(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    run_id = request(stack, "hog", parameters={"mib": 300})

    run = stack.wait_final(run_id, timeout=30)

    assert str(run.state) == "Success", run.message
    assert not any(f"task out of memory: run {run_id}" in line for line in stack.lines)


def _group(process: psutil.Process) -> int | None:
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return None


def _alive(pid: int) -> bool:
    try:
        return running(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False


def test_task_logs_reach_cloudwatch_while_the_task_runs(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As awslogs ships them: `runs logs --follow` shows lines while the run goes on."""
    from tests.support.cli import invoke

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    run_id = request(stack, "ticker")
    logs = boto3.client("logs")
    deadline = time.monotonic() + 20
    seen_while_running: list[str] = []
    while not seen_while_running:
        assert time.monotonic() < deadline, "no tick reached CloudWatch while the run ran"
        run = stack.store.runs.get(run_id)
        if run is not None and run.infrastructure.get("log_stream") and str(run.state) == "Running":
            try:
                events = logs.get_log_events(
                    logGroupName=run.infrastructure["log_group"],
                    logStreamName=run.infrastructure["log_stream"],
                    startFromHead=True,
                )["events"]
            except logs.exceptions.ResourceNotFoundException:
                events = []
            seen_while_running = [e["message"] for e in events if e["message"].startswith("tick")]
            if seen_while_running:
                assert str(stack.store.runs.get(run_id).state) == "Running"  # type: ignore[union-attr]
        time.sleep(0.2)
    followed = invoke("runs", "logs", run_id, "--follow")
    assert followed.exit_code == 0, followed.stderr
    ticks = [line for line in followed.stdout.splitlines() if line.startswith("tick")]
    assert ticks == [f"tick {number}" for number in range(8)]
    assert "ended Success" in followed.stderr


def test_the_stack_writes_what_sam_local_invoke_needs(stack: Stack) -> None:
    """Each function's variables with this stack's names, by logical id (``--env-vars``), and
    the command that points the function at the loopback endpoint."""
    dev = stack.dev
    assert dev.sam_env_file is not None
    written = json.loads(dev.sam_env_file.read_text())
    assert set(written) == {"Dispatch", "RecordState", "Cancel", "Monitor"}
    assert written["Dispatch"]["FLOWRELAY_TABLE_NAME"] == dev.outputs["TableName"]
    assert (
        written["Dispatch"]["FLOWRELAY_DISPATCH_DEAD_LETTER_QUEUE_URL"]
        == (dev.outputs["DispatchDLQUrl"])
    )
    assert (
        written["Cancel"]["FLOWRELAY_CANCEL_DEAD_LETTER_QUEUE_URL"] == dev.outputs["CancelDLQUrl"]
    )
    # Not declared unless asked for: deployed functions never get it.
    assert all("AWS_ENDPOINT_URL" not in variables for variables in written.values())
    command = dev.sam_local_invoke("Dispatch", "events/dispatch.json")
    assert command == (
        f"sam local invoke Dispatch -e events/dispatch.json --env-vars {dev.sam_env_file} "
        f"--parameter-overrides LocalEndpointUrl={dev.endpoint} --docker-network host"
    )
    template = load_template(ROOT / "template.yaml")
    declared = template["Globals"]["Function"]["Environment"]["Variables"]["AWS_ENDPOINT_URL"]
    assert declared == {
        "Fn::If": ["HasLocalEndpoint", {"Ref": "LocalEndpointUrl"}, {"Ref": "AWS::NoValue"}]
    }


# --- local targets -----------------------------------------------------------------------------


def local_request(stack: Stack, flow: str, **config: Any) -> str:
    from flowrelay.core.run_configs import LocalRun

    run_id = str(uuid.uuid4())
    stack.publisher.publish(
        FlowRunRequested(
            flow=flow, flow_run_id=run_id, run_config=LocalRun(**config), requested_by="t"
        )
    )
    return run_id


def test_a_localrun_flow_runs_as_a_local_process_in_its_working_dir_with_its_env(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the runner process imports tests.support
    run_id = local_request(
        stack, "local-writer", working_dir=str(tmp_path), env={"GREETING": "hello there"}
    )
    run = stack.wait_final(run_id)
    assert str(run.state) == "Success", run.message
    assert run.target == "local"
    assert run.infrastructure["kind"] == "local"
    assert (tmp_path / "where.txt").read_text() == f"{tmp_path}\nhello there"
    log = Path(run.infrastructure["log_file"]).read_text()
    assert f"[run {run_id}]" in log
    assert "noted" in log
    # Its log is where `runs logs` looks for a local run's.
    from tests.support.cli import invoke

    shown = invoke("runs", "logs", run_id)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines() == log.splitlines()
    assert invoke("runs", "logs", run_id, "-f", "-n", "1").stdout.splitlines() == [
        log.splitlines()[-1]
    ]
    # The process's exit came as an event too; it changes nothing after the runner's report.
    reached = states_reached(stack.store.runs.history(run_id))
    assert [str(state) for state, _ in reached] == ["Pending", "Submitted", "Running", "Success"]


def local_runner_pid(stack: Stack, run_id: str) -> int:
    """The runner of a local run, once it is Running (the child of the run's guard)."""
    deadline = time.monotonic() + 20
    while True:
        run = stack.store.runs.get(run_id)
        if run is not None and str(run.state) == "Running":
            children = psutil.Process(run.infrastructure["pid"]).children()
            if children:
                return int(children[0].pid)
        assert time.monotonic() < deadline, f"run {run_id} not running: {run}"
        time.sleep(0.1)


def test_a_local_runner_killed_is_crashed_at_once_with_how_it_ended(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    run_id = local_request(stack, "local-sleepy", working_dir=str(tmp_path))
    os.kill(local_runner_pid(stack, run_id), signal.SIGKILL)
    run = stack.wait_final(run_id, timeout=10)  # the exit event, not the monitor's timeout
    assert str(run.state) == "Crashed", run.message
    assert "was killed by SIGKILL (exit code 137)" in str(run.message)


def test_a_cancelled_local_run_is_cancelled_with_its_processes_gone(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flowrelay.core.events import FlowRunCancelRequested

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    run_id = local_request(stack, "local-sleepy", working_dir=str(tmp_path))
    runner = local_runner_pid(stack, run_id)
    stack.publisher.publish(FlowRunCancelRequested(flow_run_id=run_id, requested_by="t"))
    run = stack.wait_final(run_id, timeout=20)
    assert str(run.state) == "Cancelled", run.message
    assert not psutil.pid_exists(runner) or psutil.Process(runner).status() == "zombie"


def test_a_local_run_in_a_missing_working_dir_fails_saying_so(stack: Stack) -> None:
    run_id = local_request(stack, "local-writer", working_dir="/no/such/dir")
    run = stack.wait_final(run_id)
    assert str(run.state) == "Failed"
    assert "working_dir '/no/such/dir' is not a directory on this machine" in str(run.message)


def k8s_objects(stack: Stack, run_id: str) -> list[tuple[str, str]]:
    """The Jobs and pods of a run in the dev stack's Kubernetes API (by its annotation)."""
    api = stack.dev.kubernetes
    assert api is not None
    return [
        (plural, obj["metadata"]["name"])
        for (plural, _, _), obj in list(api.store.objects.items())
        if plural in ("jobs", "pods")
        and obj["metadata"].get("annotations", {}).get("flowrelay.dev/run-id") == run_id
    ]


def test_a_kubernetesrun_flow_runs_as_a_job_and_succeeds(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the pod's runner imports tests.support
    run_id = request(stack, "k8s-hello")
    run = stack.wait_final(run_id)
    assert str(run.state) == "Success", run.message
    assert run.target == "k8s"
    assert run.infrastructure["kind"] == "kubernetes"
    assert run.infrastructure["job_name"].startswith("fr-")
    # One Job, one pod; the pod's log is what `runs logs` prints.
    assert sorted(plural for plural, _ in k8s_objects(stack, run_id)) == ["jobs", "pods"]
    from tests.support.cli import invoke

    shown = invoke("runs", "logs", run_id)
    assert shown.exit_code == 0, shown.stderr
    assert "tick 1" in shown.stdout
    described = invoke("runs", "show", run_id, "--json")
    assert described.exit_code == 0, described.stderr
    assert json.loads(described.stdout)["kubernetes"]["pod"].startswith(
        run.infrastructure["job_name"]
    )


def test_a_kubernetes_job_environment_flow_runs_to_success(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deprecated environment: its job spec is the Job, flowrelay's runner in it."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    run_id = request(stack, "k8s-job-spec")
    run = stack.wait_final(run_id)
    assert str(run.state) == "Success", run.message
    assert run.target == "k8s"
    api = stack.dev.kubernetes
    assert api is not None
    job = api.store.objects[("jobs", "flowrelay", run.infrastructure["job_name"])]
    assert job["metadata"]["labels"]["team"] == "data"


def test_a_cancelled_kubernetes_run_leaves_no_job_no_pod_no_process(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowrelay.core.events import FlowRunCancelRequested

    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    run_id = request(stack, "k8s-sleepy")
    deadline = time.monotonic() + 25
    while (run := stack.store.runs.get(run_id)) is None or str(run.state) != "Running":
        assert time.monotonic() < deadline, f"not running: {run}"
        time.sleep(0.1)
    executor = stack.dev.job_executor
    assert executor is not None
    pods = [name for plural, name in k8s_objects(stack, run_id) if plural == "pods"]
    pid = executor.pid_of_pod("flowrelay", pods[0])
    assert pid is not None
    stack.publisher.publish(FlowRunCancelRequested(flow_run_id=run_id, requested_by="t"))
    run = stack.wait_final(run_id, timeout=40)
    assert str(run.state) == "Cancelled", run.message
    assert k8s_objects(stack, run_id) == []
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"


def test_an_image_that_cannot_be_pulled_is_crashed_and_its_job_deleted(
    stack: Stack,
) -> None:
    from flowrelay.core.run_configs import KubernetesRun

    run_id = str(uuid.uuid4())
    stack.publisher.publish(
        FlowRunRequested(
            flow="k8s-hello",
            flow_run_id=run_id,
            run_config=KubernetesRun(image="example.invalid/flows:1"),
            requested_by="t",
        )
    )
    run = stack.wait_final(run_id)
    assert str(run.state) == "Crashed", run.message
    assert "cannot start: ErrImagePull" in str(run.message) or "ImagePullBackOff" in str(
        run.message
    )
    deadline = time.monotonic() + 15
    while k8s_objects(stack, run_id):
        assert time.monotonic() < deadline, k8s_objects(stack, run_id)
        time.sleep(0.2)


def test_stop_leaves_no_process_thread_or_server(stack: Stack, loopback_only: list[Any]) -> None:
    """Runs last in the module: it stops the module's stack while a task process runs."""
    dev = stack.dev
    assert dev.executor is not None
    started_before = len(dev.executor.started_pids)
    request(stack, "hello")
    deadline = time.monotonic() + 15
    while len(dev.executor.started_pids) == started_before and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = list(dev.executor.started_pids)
    assert len(pids) > started_before
    endpoint = dev.endpoint

    dev.stop()

    assert not [pid for pid in pids if _alive(pid)]
    # Nor anything in their process groups (each task's guard leads its group).
    assert not [p.pid for p in psutil.process_iter() if _group(p) in pids and running(p)]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        left = [t.name for t in threading.enumerate() if t.name.startswith("devstack-")]
        if not left:
            break
        time.sleep(0.1)
    assert left == []
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(endpoint + "/moto-api/", timeout=2)
    assert loopback_only == []
    assert os.environ.get("AWS_ENDPOINT_URL") == stack.endpoint_before


def test_functions_cannot_set_one_variable_to_two_values() -> None:
    """The dev stack's functions share one process environment: a template giving two functions
    different values for one variable would silently give both the last one."""
    from flowrelay.devstack.stack import DevStackError, merged_environment

    with pytest.raises(DevStackError, match=r"functions Dispatch and Cancel set QUEUE_URL to"):
        merged_environment({"Dispatch": {"QUEUE_URL": "a"}, "Cancel": {"QUEUE_URL": "b"}})
    # The template's own functions agree on every variable they share.
    template = load_template(ROOT / "template.yaml")
    per_function = {
        logical_id: {
            name: json.dumps(value, sort_keys=True)
            for name, value in resource["Properties"]
            .get("Environment", {})
            .get("Variables", {})
            .items()
        }
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    assert len(per_function) >= 4
    merged_environment(per_function)
