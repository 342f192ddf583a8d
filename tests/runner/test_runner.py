"""The flow runner as its launchers start it: a real process, with its settings in the
environment, reading the table and publishing on a bus in a moto server over loopback HTTP.

What the runner publishes is captured the way the control plane receives it: an EventBridge rule
on the test's bus sends "Flow Run State Changed" events to an SQS queue, and the test reads them
from there and parses them with ``parse_event``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunStateChanged, parse_event
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.registration import ExecutorSpec
from flowrelay.core.storage import Local, Module
from flowrelay.runner import (
    ENV_ATTEMPT,
    ENV_BUS_NAME,
    ENV_HEARTBEAT_SECONDS,
    ENV_LOG_LEVEL,
    ENV_RUN_ID,
    ENV_TABLE_NAME,
    ConfigError,
    config_from_env,
)
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow

pytestmark = pytest.mark.slow

RUNNER_MODULE = [sys.executable, "-m", "flowrelay.runner"]
RUNNER_SCRIPT = [str(Path(sys.executable).with_name("flowrelay-runner"))]

ADDER = """
from pathlib import Path

from flowrelay import Flow, Parameter, task

OUT = Path(__file__).with_name("result.txt")


@task
def add(x, y):
    return x + y


@task
def save(value):
    OUT.write_text(str(value))


with Flow("adder") as flow:
    save(add(Parameter("x", default=1), Parameter("y", default=2)))
"""

SLOW = """
import time

from flowrelay import Flow, task


@task
def slow():
    time.sleep(1)


with Flow("slow") as flow:
    slow()
"""

STUCK = """
import time
from pathlib import Path

from flowrelay import Flow, task

HERE = Path(__file__).parent


@task
def stuck():
    (HERE / "started").write_text("started")
    time.sleep(60)


with Flow("stuck") as flow:
    stuck()
"""

STUCK_ON_THREADS = """
import time
from pathlib import Path

from flowrelay import Flow, task
from flowrelay.sdk.executors import LocalDaskExecutor

HERE = Path(__file__).parent


@task
def stuck():
    (HERE / "started").write_text("started")
    time.sleep(60)


with Flow("stuck", executor=LocalDaskExecutor(scheduler="threads")) as flow:
    stuck()
"""

STUCK_ON_DASK = """
import time
from pathlib import Path

from distributed import LocalCluster

from flowrelay import Flow, task
from flowrelay.sdk.executors import DaskExecutor

HERE = Path(__file__).parent


class MarkingCluster(LocalCluster):
    \"\"\"A LocalCluster that leaves a 'closed' file behind when it is closed.\"\"\"

    def close(self, *args, **kwargs):
        (HERE / "closed").write_text("closed")
        return super().close(*args, **kwargs)


@task
def stuck():
    (HERE / "started").write_text("started")
    time.sleep(60)


executor = DaskExecutor(
    cluster_class=MarkingCluster,
    cluster_kwargs={"processes": False, "n_workers": 1, "threads_per_worker": 1},
)
with Flow("stuck-on-dask", executor=executor) as flow:
    stuck()
"""


CHATTY_DASK = """
import logging

from flowrelay import Flow, task
from flowrelay.sdk.executors import DaskExecutor

log = logging.getLogger("my_etl")


@task
def shout(n):
    log.info("user line %d", n)
    return n


executor = DaskExecutor(cluster_kwargs={"n_workers": 1, "threads_per_worker": 1})
with Flow("chatty", executor=executor) as flow:
    shout(42)
"""


@dataclass(frozen=True)
class Bus:
    """A bus whose "Flow Run State Changed" events land in ``queue_url``."""

    name: str
    queue_url: str


@pytest.fixture
def bus(aws_env: str) -> Iterator[Bus]:
    events = boto3.client("events")
    sqs = boto3.client("sqs")
    name = f"flowrelay-test-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=name)
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    pattern = {"source": ["flowrelay"], "detail-type": [FlowRunStateChanged.DETAIL_TYPE]}
    events.put_rule(Name="states", EventBusName=name, EventPattern=json.dumps(pattern))
    events.put_targets(
        Rule="states", EventBusName=name, Targets=[{"Id": "queue", "Arn": queue_arn}]
    )
    try:
        yield Bus(name, queue_url)
    finally:
        events.remove_targets(Rule="states", EventBusName=name, Ids=["queue"])
        events.delete_rule(Name="states", EventBusName=name)
        events.delete_event_bus(Name=name)
        sqs.delete_queue(QueueUrl=queue_url)


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


def write_script(folder: Path, source: str, name: str = "flow.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def register_script(store: Store, script: Path) -> None:
    storage = Local(str(script))
    store.flows.register(registration_for(load_flow(storage), storage=storage))


def new_run(store: Store, flow_name: str, parameters: Mapping[str, Any] | None = None) -> str:
    run_id = uuid.uuid4().hex
    store.runs.create(run_id, flow_name, parameters=parameters)
    return run_id


def runner_env(store: Store, bus: Bus, run_id: str, **extra: str) -> dict[str, str]:
    """The test's environment (moto endpoint, fake credentials) plus the runner's settings."""
    return {
        **os.environ,
        ENV_RUN_ID: run_id,
        ENV_TABLE_NAME: store.table_name,
        ENV_BUS_NAME: bus.name,
        **extra,
    }


def run_runner(
    env: Mapping[str, str], cwd: Path, command: list[str] = RUNNER_MODULE
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, env=dict(env), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def received(
    bus: Bus,
    until: Callable[[list[FlowRunStateChanged]], bool] = lambda events: False,
    timeout: float = 10.0,
) -> list[FlowRunStateChanged]:
    """The events on the queue, by timestamp: read until ``until`` holds and the queue is
    empty, or until ``timeout`` has passed."""
    sqs = boto3.client("sqs")
    events: list[FlowRunStateChanged] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        messages = sqs.receive_message(
            QueueUrl=bus.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        for message in messages:
            detail = parse_event(message["Body"]).detail
            assert isinstance(detail, FlowRunStateChanged)
            events.append(detail)
            sqs.delete_message(QueueUrl=bus.queue_url, ReceiptHandle=message["ReceiptHandle"])
        if not messages:
            if until(events):
                break
            time.sleep(0.05)
    return sorted(events, key=lambda event: event.timestamp)


def has_final(events: list[FlowRunStateChanged]) -> bool:
    return any(event.state.is_final for event in events)


def reports(events: list[FlowRunStateChanged]) -> list[FlowRunStateChanged]:
    """The events that report a state (heartbeats left out)."""
    return [event for event in events if not event.heartbeat]


def wait_for(path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear within {timeout}s"
        time.sleep(0.05)


# --- outcomes --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [RUNNER_MODULE, RUNNER_SCRIPT], ids=["module", "script"])
def test_a_successful_run_reports_running_then_success_and_exits_0(
    store: Store, bus: Bus, tmp_path: Path, command: list[str]
) -> None:
    register_script(store, write_script(tmp_path, ADDER))
    run_id = new_run(store, "adder", parameters={"x": 40})

    result = run_runner(runner_env(store, bus, run_id, **{ENV_ATTEMPT: "2"}), tmp_path, command)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "result.txt").read_text() == "42"  # the run's parameters were used
    states = reports(received(bus, until=has_final))
    assert [event.state for event in states] == [RunState.RUNNING, RunState.SUCCESS]
    assert all(event.flow_run_id == run_id for event in states)
    assert all(event.source is Source.RUNNER for event in states)
    assert all(event.details["attempt"] == 2 for event in states)
    assert states[1].message == "All reference tasks succeeded."
    assert f"[run {run_id}]" in result.stderr


def test_a_failing_run_reports_the_failing_task_and_exits_1(
    store: Store, bus: Bus, tmp_path: Path
) -> None:
    from flowrelay.sdk.examples.failing import flow

    store.flows.register(
        registration_for(flow, storage=Module("flowrelay.sdk.examples.failing:flow"))
    )
    run_id = new_run(store, "failing")

    result = run_runner(runner_env(store, bus, run_id), tmp_path)

    assert result.returncode == 1, result.stderr
    states = reports(received(bus, until=has_final))
    assert [event.state for event in states] == [RunState.RUNNING, RunState.FAILED]
    failed = states[1]
    assert failed.message == "Task 'divide' failed: ZeroDivisionError: division by zero"
    assert failed.details["failed_tasks"] == ["divide"]
    # The story of the failure travels with the report and is in the run's log.
    assert "return x / by" in failed.details["traceback"]
    assert failed.details["traceback"].endswith("ZeroDivisionError: division by zero")
    assert "Task divide failed:" in result.stderr
    assert "return x / by" in result.stderr


def test_run_logs_are_the_flows_own_lines_and_task_states(
    store: Store, bus: Bus, tmp_path: Path
) -> None:
    """On a temporary Dask cluster with worker processes: no botocore credential lines, no
    distributed INFO chatter (from this process or the workers'), unless the run logs at DEBUG."""
    register_script(store, write_script(tmp_path, CHATTY_DASK))
    result = run_runner(runner_env(store, bus, new_run(store, "chatty")), tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any("my_etl: user line 42" in line for line in lines), result.stderr
    assert any("Task 'shout': Success" in line for line in lines), result.stderr
    chatter = [
        line
        for line in lines
        if re.search(r"(botocore|boto3|urllib3|distributed)\S*[:\s-]+INFO", line)
        or re.search(r"INFO \[run \S+\] (botocore|boto3|urllib3|distributed)", line)
    ]
    assert chatter == [], "\n".join(chatter)

    debug = run_runner(
        runner_env(store, bus, new_run(store, "chatty"), **{ENV_LOG_LEVEL: "DEBUG"}), tmp_path
    )
    assert debug.returncode == 0, debug.stderr
    assert re.search(r"DEBUG \[run \S+\] botocore", debug.stderr)  # all of it, when asked


def test_a_running_flow_sends_heartbeats_until_its_final_report(
    store: Store, bus: Bus, tmp_path: Path
) -> None:
    register_script(store, write_script(tmp_path, SLOW))
    run_id = new_run(store, "slow")

    result = run_runner(runner_env(store, bus, run_id, **{ENV_HEARTBEAT_SECONDS: "0.2"}), tmp_path)

    assert result.returncode == 0, result.stderr
    events = received(bus, until=has_final)
    beats = [event for event in events if event.heartbeat]
    assert len(beats) >= 2
    assert all(beat.state is RunState.RUNNING and beat.source is Source.RUNNER for beat in beats)
    final = reports(events)[-1]
    assert final.state is RunState.SUCCESS
    assert all(beat.timestamp < final.timestamp for beat in beats)


# --- SIGTERM ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "flow_name"),
    [(STUCK, "stuck"), (STUCK_ON_THREADS, "stuck"), (STUCK_ON_DASK, "stuck-on-dask")],
    # threads: the task's thread cannot be stopped and thread pools are joined at interpreter
    # exit; the runner must exit anyway (the task sleeps 60 s, longer than the test waits).
    ids=["local", "threads", "dask"],
)
def test_sigterm_reports_failed_before_exiting_143_and_closes_the_cluster(
    store: Store, bus: Bus, tmp_path: Path, script: str, flow_name: str
) -> None:
    register_script(store, write_script(tmp_path, script))
    run_id = new_run(store, flow_name)
    with (tmp_path / "stderr.txt").open("w+") as stderr:
        process = subprocess.Popen(
            RUNNER_MODULE,
            env=runner_env(store, bus, run_id),
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            wait_for(tmp_path / "started")
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        stderr.seek(0)
        log = stderr.read()

    assert returncode == 143, log
    # Read after the process has exited: whatever is on the queue was sent before it did.
    states = reports(received(bus, until=has_final))
    assert [event.state for event in states] == [RunState.RUNNING, RunState.FAILED]
    assert "SIGTERM" in (states[1].message or "")
    assert states[1].details["signal"] == "SIGTERM"
    if script is STUCK_ON_DASK:
        assert (tmp_path / "closed").exists(), log


# --- not run ---------------------------------------------------------------------------------


def test_an_unknown_run_exits_2_saying_so_and_reports_nothing(
    store: Store, bus: Bus, tmp_path: Path
) -> None:
    run_id = uuid.uuid4().hex

    result = run_runner(runner_env(store, bus, run_id), tmp_path)

    assert result.returncode == 2
    assert f"Flow run {run_id!r} not found in table {store.table_name!r}" in result.stderr
    assert received(bus, timeout=0.3) == []


def _not_registered(store: Store, tmp_path: Path) -> str:
    return new_run(store, "ghost")


def _script_gone(store: Store, tmp_path: Path) -> str:
    script = write_script(tmp_path, ADDER, name="gone.py")
    register_script(store, script)
    script.unlink()
    return new_run(store, "adder")


def _code_changed(store: Store, tmp_path: Path) -> str:
    script = write_script(tmp_path, ADDER)
    register_script(store, script)
    script.write_text(script.read_text() + "\n# edited after registration\n")
    return new_run(store, "adder")


def _older_version(store: Store, tmp_path: Path) -> str:
    """Version 1 asked for after version 2 was registered from the same, edited, script."""
    script = write_script(tmp_path, ADDER)
    register_script(store, script)
    script.write_text(script.read_text() + "\n# version 2\n")
    register_script(store, script)
    run_id = uuid.uuid4().hex
    store.runs.create(run_id, "adder", flow_version=1)
    return run_id


def _bad_parameter(store: Store, tmp_path: Path) -> str:
    register_script(store, write_script(tmp_path, ADDER))
    return new_run(store, "adder", parameters={"z": 1})


def _bad_executor(store: Store, tmp_path: Path) -> str:
    storage = Local(str(write_script(tmp_path, ADDER)))
    registration = registration_for(load_flow(storage), storage=storage)
    spec = ExecutorSpec(type="DaskExecutor", kwargs={"cluster_class": "no_such_module:Cluster"})
    store.flows.register(registration.model_copy(update={"executor": spec}))
    return new_run(store, "adder")


@pytest.mark.parametrize(
    ("setup", "cause"),
    [
        (_not_registered, "Flow 'ghost' (latest version) is not registered"),
        (_script_gone, "Cannot load flow 'adder' version 1 from its storage: "),
        (_bad_parameter, "Flow 'adder' has no parameter 'z'"),
        (_bad_executor, "Cannot build the executor of flow 'adder' version 1 (DaskExecutor"),
        (_code_changed, "Cannot run flow 'adder' version 1: its script "),
        (_older_version, "Cannot run flow 'adder' version 1: its script "),
    ],
    ids=[
        "not-registered",
        "script-gone",
        "bad-parameter",
        "bad-executor",
        "code-changed",
        "older-version",
    ],
)
def test_a_run_that_cannot_start_reports_failed_naming_the_cause_and_exits_2(
    store: Store,
    bus: Bus,
    tmp_path: Path,
    setup: Callable[[Store, Path], str],
    cause: str,
) -> None:
    run_id = setup(store, tmp_path)

    result = run_runner(runner_env(store, bus, run_id), tmp_path)

    assert result.returncode == 2, result.stderr
    assert cause in result.stderr
    states = reports(received(bus, until=has_final))
    assert [event.state for event in states] == [RunState.FAILED]
    assert cause in (states[0].message or "")


def test_a_missing_setting_exits_2_naming_it(store: Store, bus: Bus, tmp_path: Path) -> None:
    env = runner_env(store, bus, uuid.uuid4().hex)
    del env[ENV_BUS_NAME]

    result = run_runner(env, tmp_path)

    assert result.returncode == 2
    assert f"{ENV_BUS_NAME} is not set" in result.stderr


# --- settings (in process) -------------------------------------------------------------------

REQUIRED = {ENV_RUN_ID: "run-1", ENV_TABLE_NAME: "table", ENV_BUS_NAME: "bus"}


def test_settings_default_the_optional_ones() -> None:
    config = config_from_env(REQUIRED)
    assert (config.run_id, config.table_name, config.bus_name) == ("run-1", "table", "bus")
    assert config.attempt is None
    assert config.heartbeat_seconds == 30.0


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({ENV_RUN_ID: ""}, f"{ENV_RUN_ID} is not set"),
        ({ENV_TABLE_NAME: " "}, f"{ENV_TABLE_NAME} is not set"),
        ({ENV_RUN_ID: "a/b"}, "'a/b' is not a flow run id"),
        ({ENV_ATTEMPT: "first"}, f"{ENV_ATTEMPT}='first' is not a whole number >= 1"),
        ({ENV_ATTEMPT: "0"}, f"{ENV_ATTEMPT}='0' is not a whole number >= 1"),
        ({ENV_HEARTBEAT_SECONDS: "0"}, f"{ENV_HEARTBEAT_SECONDS}='0' is not a number > 0"),
        ({ENV_HEARTBEAT_SECONDS: "nan"}, f"{ENV_HEARTBEAT_SECONDS}='nan' is not a number > 0"),
    ],
)
def test_bad_settings_are_named(overrides: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_env({**REQUIRED, **overrides})
    assert problem in str(caught.value)
