"""End to end, as a user would: `flowrelay dev up` in one process, the CLI in others.

Everything is real: moto server on loopback created from template.yaml, the Lambda handlers fed by
the dev stack's pollers, the flow runner as a local process for each ECS task, the installed
`flowrelay` command.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOWRELAY = str(Path(sys.executable).parent / "flowrelay")
EXAMPLES = ROOT / "shared" / "flowrelay" / "examples"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dev_stack() -> Iterator[dict[str, str]]:
    """`flowrelay dev up` running; yields the environment its export line gives."""
    process = subprocess.Popen(
        [FLOWRELAY, "dev", "up", "--schedule-seconds", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    environment: dict[str, str] = {}
    deadline = time.monotonic() + 60
    for line in process.stdout:
        if line.startswith("export "):
            for pair in shlex.split(line.removeprefix("export ")):
                name, _, value = pair.partition("=")
                environment[name] = value
            break
        assert time.monotonic() < deadline, "dev up printed no export line"
    assert "AWS_ENDPOINT_URL" in environment, "dev up exited before it was ready"
    try:
        yield {**os.environ, **environment}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def flowrelay(
    env: dict[str, str], *args: str, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLOWRELAY, *args],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_export_line_points_at_loopback(dev_stack: dict[str, str]) -> None:
    assert dev_stack["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert dev_stack["FLOWRELAY_STACK"] == "flowrelay-dev"


def test_register_run_watch_show(dev_stack: dict[str, str]) -> None:
    registered = flowrelay(dev_stack, "register", f"{EXAMPLES / 'hello.py'}:flow")
    assert registered.returncode == 0, registered.stderr
    assert "hello" in registered.stdout
    targets = flowrelay(dev_stack, "targets", "ls", "--json")
    assert [target["name"] for target in json.loads(targets.stdout)] == ["dev"]

    watched = flowrelay(
        dev_stack, "run", "hello", "--param", "name=e2e", "--watch", "--flow-run-id", "e2e-hello"
    )
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "Success" in watched.stdout + watched.stderr

    shown = json.loads(flowrelay(dev_stack, "runs", "show", "e2e-hello", "--json").stdout)
    states = [entry["state"] for entry in shown["history"]]
    assert states[0] == "Pending"
    assert states[-1] == "Success"
    assert "Running" in states
    assert shown["run"]["infrastructure"]["task_arn"].startswith("arn:aws:ecs:")


def test_a_failing_run_exits_1_and_names_the_task(dev_stack: dict[str, str]) -> None:
    assert flowrelay(dev_stack, "register", str(EXAMPLES / "failing.py")).returncode == 0
    watched = flowrelay(dev_stack, "run", "failing", "--watch", "--flow-run-id", "e2e-failing")
    assert watched.returncode == 1
    shown = json.loads(flowrelay(dev_stack, "runs", "show", "e2e-failing", "--json").stdout)
    assert shown["run"]["state"] == "Failed"
    assert shown["run"]["message"] == "Task 'divide' failed: ZeroDivisionError: division by zero"


def test_the_same_request_five_times_is_one_run_and_one_task(dev_stack: dict[str, str]) -> None:
    assert flowrelay(dev_stack, "register", f"{EXAMPLES / 'hello.py'}:flow").returncode == 0
    run_ids = {
        flowrelay(dev_stack, "run", "hello", "--idempotency-key", "e2e-once")
        .stdout.strip()
        .splitlines()[-1]
        for _ in range(5)
    }
    assert len(run_ids) == 1
    (run_id,) = run_ids
    watched = flowrelay(dev_stack, "run", "hello", "--idempotency-key", "e2e-once", "--watch")
    assert watched.returncode == 0
    shown = json.loads(flowrelay(dev_stack, "runs", "show", run_id, "--json").stdout)
    assert [entry["state"] for entry in shown["history"]].count("Submitted") == 1


def test_the_demo_shows_success_failure_and_a_run_that_waited() -> None:
    demo = subprocess.run(
        [FLOWRELAY, "demo", "--json"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    outcome = json.loads(demo.stdout)
    assert outcome["ok"] is True
    by_flow = {run["flow"]: run for run in outcome["runs"]}
    assert by_flow["hello"]["state"] == "Success"
    assert (
        by_flow["failing"]["message"] == "Task 'divide' failed: ZeroDivisionError: division by zero"
    )
    waited = by_flow["etl"]
    assert waited["state"] == "Success"
    assert waited["target"] == "gpu-fargate"
    assert [entry["state"] for entry in waited["history"]][:2] == ["Pending", "Submitted"]
