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
EXAMPLES = ROOT / "shared" / "flowrelay" / "sdk" / "examples"

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
    assert [target["name"] for target in json.loads(targets.stdout)] == [
        "dev",
        "dev-k8s",
        "dev-local",
    ]

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


def wait_for_state(env: dict[str, str], run_id: str, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        shown = flowrelay(env, "runs", "show", run_id, "--json")
        if shown.returncode == 0 and json.loads(shown.stdout)["run"]["state"] == state:
            return
        assert time.monotonic() < deadline, f"run {run_id} not {state}: {shown.stdout[-500:]}"
        time.sleep(0.3)


def test_cancel_wait_stops_a_running_run_and_its_task(dev_stack: dict[str, str]) -> None:
    import boto3

    assert flowrelay(dev_stack, "register", str(EXAMPLES / "sleeper.py")).returncode == 0
    started = flowrelay(dev_stack, "run", "sleeper", "--flow-run-id", "e2e-cancel")
    assert started.returncode == 0, started.stderr
    wait_for_state(dev_stack, "e2e-cancel", "Running")

    cancelled = flowrelay(
        dev_stack, "runs", "cancel", "e2e-cancel", "--reason", "e2e", "--wait", "--timeout", "60"
    )
    assert cancelled.returncode == 0, cancelled.stdout + cancelled.stderr
    assert cancelled.stdout.startswith("cancel requested for run e2e-cancel (was Running)")
    shown = json.loads(flowrelay(dev_stack, "runs", "show", "e2e-cancel", "--json").stdout)
    assert shown["run"]["state"] == "Cancelled"
    states = [entry["state"] for entry in shown["history"]]
    assert states[-2:] == ["Cancelling", "Cancelled"]

    # No task of the run is left running in ECS, and its own task says why it stopped.
    cluster = shown["run"]["infrastructure"]["cluster"]
    ecs = boto3.client(
        "ecs",
        endpoint_url=dev_stack["AWS_ENDPOINT_URL"],
        region_name=dev_stack["AWS_DEFAULT_REGION"],
        aws_access_key_id=dev_stack["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=dev_stack["AWS_SECRET_ACCESS_KEY"],
    )
    running = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    described = ecs.describe_tasks(cluster=cluster, tasks=running)["tasks"] if running else []
    assert [task for task in described if task.get("group") == "flowrelay:e2e-cancel"] == []
    (task,) = ecs.describe_tasks(
        cluster=cluster, tasks=[shown["run"]["infrastructure"]["task_arn"]]
    )["tasks"]
    assert task["desiredStatus"] == "STOPPED"
    assert task["stoppedReason"] == "flowrelay: cancelled: e2e"

    again = flowrelay(dev_stack, "runs", "cancel", "e2e-cancel")
    assert again.returncode == 0
    assert again.stdout.strip() == "run e2e-cancel is already Cancelled; nothing to cancel"


def test_the_demo_shows_success_failure_a_run_that_waited_a_cancel_and_a_crash() -> None:
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
    by_flow = {run["flow"]: run for run in outcome["runs"][:5]}
    assert by_flow["hello"]["state"] == "Success"
    assert (
        by_flow["failing"]["message"] == "Task 'divide' failed: ZeroDivisionError: division by zero"
    )
    waited = by_flow["etl"]
    assert waited["state"] == "Success"
    assert waited["target"] == "gpu-fargate"
    assert [entry["state"] for entry in waited["history"]][:2] == ["Pending", "Submitted"]

    cancelled = by_flow["sleeper"]
    assert cancelled["state"] == "Cancelled"
    assert [entry["state"] for entry in cancelled["history"]][-3:] == [
        "Running",
        "Cancelling",
        "Cancelled",
    ]
    assert cancelled["task"]["last_status"] == "STOPPED"
    assert cancelled["task"]["stopped_reason"].startswith("flowrelay: cancelled")
    assert cancelled["task"]["process_running"] is False

    crashed = by_flow["crashing"]
    assert crashed["state"] == "Crashed"
    assert "container 'flow' exited with code 137" in crashed["message"]
    assert "about to be killed with SIGKILL" in crashed["message"]  # the log's last lines
    assert crashed["history"][-1]["source"] == "infrastructure"

    on_fargate_cluster, cluster_killed = outcome["runs"][5:7]
    assert on_fargate_cluster["state"] == "Success"
    notes = [e["message"] for e in on_fargate_cluster["history"] if e["state"] == "·"]
    assert notes[0].endswith("starting: FargateCluster")
    assert any(" closed" in note for note in notes)
    assert [note for note in notes if " scaled from " in note][-1].endswith("to 1 worker")
    assert on_fargate_cluster["dask_cluster_left"] == []
    assert cluster_killed["state"] == "Crashed"
    swept = [
        e for e in cluster_killed["history"] if e["state"] == "·" and " swept: " in e["message"]
    ]
    assert [e["source"] for e in swept] == ["monitor"]
    assert cluster_killed["dask_cluster_left"] == []

    eu, us = outcome["runs"][7:9]
    # Two fires of two clocks (one fire delivered twice): two runs, each with its clock's
    # parameters; the second clock's label took its run to the gpu target.
    assert (eu["state"], eu["parameters"], eu["runs_of_flow"]) == ("Success", {"region": "eu"}, 2)
    assert (us["state"], us["parameters"], us["target"]) == (
        "Success",
        {"region": "us"},
        "gpu-fargate",
    )

    failed, restarted = outcome["runs"][9:11]
    assert failed["state"] == "Failed"
    assert "Task 'load' failed: RuntimeError: the warehouse is not ready" in failed["message"]
    assert restarted["state"] == "Success"
    restart_lines = [entry["message"] or "" for entry in restarted["history"]]
    assert restart_lines[0] == f"restart of run {failed['run_id']}"
    assert any("reusing 1 checkpointed task result" in line for line in restart_lines)
    assert f"restarted as run {restarted['run_id']}" in [
        entry["message"] for entry in failed["history"]
    ]

    serial = outcome["runs"][11:14]
    assert [run["state"] for run in serial] == ["Success"] * 3
    # One ran at once, two waited in Queued; each was launched after the one before it ended.
    assert sum(1 for run in serial if "Queued" in [e["state"] for e in run["history"]]) == 2
    assert [run["after_previous"] is None for run in serial].count(True) == 1
    assert all(run["after_previous"]["ok"] for run in serial if run["after_previous"] is not None)

    on_kubernetes, unpullable = outcome["runs"][14:]
    assert (on_kubernetes["state"], on_kubernetes["target"]) == ("Success", "k8s")
    assert on_kubernetes["task"]["process_running"] is False
    assert unpullable["state"] == "Crashed"
    assert "cannot start: " in unpullable["message"]
    assert "registry.invalid/flows/hello:1" in unpullable["message"]
    assert unpullable["history"][-1]["source"] == "monitor"
    assert unpullable["task"]["last_status"] == "STOPPED"
    assert "no longer exists" in unpullable["task"]["stopped_reason"]  # its Job and pod are gone


def test_a_scheduled_flow_registered_lists_its_schedules_and_pauses(
    dev_stack: dict[str, str],
) -> None:
    registered = flowrelay(dev_stack, "register", f"{EXAMPLES / 'scheduled.py'}:flow")
    assert registered.returncode == 0, registered.stderr
    assert "schedule fr-scheduled-" in registered.stdout  # created
    again = flowrelay(dev_stack, "register", f"{EXAMPLES / 'scheduled.py'}:flow")
    assert "2 schedule(s) unchanged" in again.stdout, again.stdout

    listed = flowrelay(dev_stack, "schedules", "ls", "--flow", "scheduled", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["clock"]: row for row in json.loads(listed.stdout)}
    assert rows["clock-1"]["expression"] == "cron(0 * * * ? *)"
    assert rows["clock-1"]["timezone"] == "Europe/Berlin"
    assert rows["clock-1"]["parameters"] == {"region": "eu"}
    assert rows["clock-2"]["labels"] == ["gpu"]
    assert len(rows["clock-1"]["next"]) == 3  # hourly: the next three, an hour apart
    assert rows["clock-1"]["next"][0].endswith(":00:00+00:00")

    paused = flowrelay(dev_stack, "schedules", "pause", "scheduled", "clock-2")
    assert paused.returncode == 0, paused.stderr
    states = {
        row["clock"]: row["state"]
        for row in json.loads(
            flowrelay(dev_stack, "schedules", "ls", "--flow", "scheduled", "--json").stdout
        )
    }
    assert states == {"clock-1": "ENABLED", "clock-2": "DISABLED"}
    unknown = flowrelay(dev_stack, "schedules", "resume", "scheduled", "clock-9")
    assert unknown.returncode == 1
    assert "no schedule for clock 'clock-9' of flow 'scheduled'" in unknown.stderr
    resumed = flowrelay(dev_stack, "schedules", "resume", "scheduled")
    assert resumed.returncode == 0
    assert resumed.stdout.startswith("resumed: fr-scheduled-")
