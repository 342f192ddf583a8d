"""``flowrelay runs cancel`` and ``flowrelay monitor`` against moto over HTTP: a table made from
template.yaml, a bus whose events are routed to queues (as the template routes them to the
Cancel and Dispatch functions' queues), and real ECS tasks in moto for the monitor to look at.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowrelay.cli.options import requested_by
from flowrelay.control.cancel import Canceller
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunCancelRequested, FlowRunRequested
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.routing import Target
from flowrelay.launchers.ecs import EcsLauncher
from tests.support.cli import invoke, one_error_line, received, routed_queue

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(names: dict[str, str]) -> Store:
    return Store(boto3.client("dynamodb"), names["table"])


@pytest.fixture
def cancel_queue(names: dict[str, str]) -> Iterator[str]:
    """Where the Cancel function's queue would get the cancel requests."""
    yield from routed_queue(names["bus"], FlowRunCancelRequested.DETAIL_TYPE)


@pytest.fixture
def requests_queue(names: dict[str, str]) -> Iterator[str]:
    """Where DispatchQueue would get the run requests (the monitor's offers)."""
    yield from routed_queue(names["bus"], FlowRunRequested.DETAIL_TYPE)


def running_run(store: Store, run_id: str) -> None:
    store.runs.create(run_id, "etl")
    store.runs.transition(run_id, RunState.SUBMITTED, Source.DISPATCHER, target="fargate")
    store.runs.transition(run_id, RunState.RUNNING, Source.RUNNER, message="Running flow 'etl'")


# --- runs cancel -----------------------------------------------------------------------------


def test_cancel_of_an_unknown_run_is_one_error_line_and_exit_1(
    names: dict[str, str], cancel_queue: str
) -> None:
    assert one_error_line(invoke("runs", "cancel", "no-such-run"), 1) == "no flow run 'no-such-run'"
    assert received(cancel_queue) == []


def test_cancel_of_a_final_run_is_a_clear_no_op(store: Store, cancel_queue: str) -> None:
    store.runs.create("done", "etl")
    store.runs.transition(
        "done", RunState.SUCCESS, Source.RUNNER, message="All reference tasks done"
    )
    result = invoke("runs", "cancel", "done", "--reason", "too late", "--wait")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "run done is already Success; nothing to cancel"
    as_json = json.loads(invoke("runs", "cancel", "done", "--json").stdout)
    assert as_json == {
        "flow_run_id": "done",
        "cancel_requested": False,
        "state": "Success",
        "message": "run done is already Success; nothing to cancel",
    }
    assert received(cancel_queue) == []  # nothing was published
    assert store.runs.get("done").state is RunState.SUCCESS  # type: ignore[union-attr]


def test_cancel_of_an_active_run_publishes_the_request_with_reason_and_requester(
    store: Store, cancel_queue: str
) -> None:
    running_run(store, "busy")
    result = invoke("runs", "cancel", "busy", "--reason", "wrong parameters")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == "cancel requested for run busy (was Running)"
    (request,) = received(cancel_queue, wait_seconds=2)
    assert isinstance(request, FlowRunCancelRequested)
    assert (request.flow_run_id, request.reason) == ("busy", "wrong parameters")
    assert request.requested_by == requested_by()  # as `run` names the requester
    assert request.requested_by.startswith("flowrelay-cli")
    # Publishing is all the CLI does: the Cancel function applies it.
    assert store.runs.get("busy").state is RunState.RUNNING  # type: ignore[union-attr]

    store.runs.create("waiting", "etl")
    as_json = json.loads(invoke("runs", "cancel", "waiting", "--json").stdout)
    assert as_json["cancel_requested"] is True
    assert (as_json["flow_run_id"], as_json["was"]) == ("waiting", "Pending")
    assert "reason" not in as_json
    (request,) = received(cancel_queue, wait_seconds=2)
    assert (request.flow_run_id, request.reason) == ("waiting", None)


def test_cancel_with_a_reason_too_long_is_a_usage_error(store: Store) -> None:
    running_run(store, "busy")
    error = one_error_line(invoke("runs", "cancel", "busy", "--reason", "x" * 2000), 2)
    assert error.startswith("--reason: String should have at most 1024 characters")


def cancel_function(
    store: Store, queue: str, then: RunState, source: Source = Source.INFRASTRUCTURE
) -> threading.Thread:
    """The Cancel function and the run's task, played in the background: the real Canceller
    applies the request that reaches the queue (the run becomes Cancelling), then ``source``
    reports ``then`` (the task's STOPPED event reads as Crashed: Cancelled while cancelling)."""

    def play() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            requests = received(queue, wait_seconds=1)
            for request in requests:
                Canceller(store, {}).cancel(request)
                time.sleep(0.1)
                store.runs.transition(
                    request.flow_run_id, then, source, message=f"the {source} says {then}"
                )
            if requests:
                return

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def test_cancel_wait_follows_the_run_and_exits_0_only_when_it_ends_cancelled(
    store: Store, cancel_queue: str
) -> None:
    running_run(store, "to-cancel")
    player = cancel_function(store, cancel_queue, RunState.CRASHED)
    result = invoke("runs", "cancel", "to-cancel", "--reason", "stop", "--wait", "--timeout", "20")
    player.join()
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "cancel requested for run to-cancel (was Running)"
    states = [line.split()[1] for line in lines[1:]]
    assert states == ["Pending", "Submitted", "Running", "Cancelling", "Cancelled"]
    assert "cancel requested by flowrelay-cli" in lines[4]
    assert lines[4].endswith(": stop")

    running_run(store, "finished-first")
    player = cancel_function(store, cancel_queue, RunState.SUCCESS, Source.RUNNER)
    result = invoke("runs", "cancel", "finished-first", "--wait", "--json")
    player.join()
    assert result.exit_code == 1
    shown = json.loads(result.stdout)  # the timeline went to stderr
    assert shown["run"]["state"] == "Success"
    assert "ended Success, not Cancelled" in result.stderr


def test_cancel_wait_gives_up_after_its_timeout(store: Store, cancel_queue: str) -> None:
    running_run(store, "stuck")  # no Cancel function here: it stays Running
    result = invoke("runs", "cancel", "stuck", "--wait", "--timeout", "0.3")
    assert result.exit_code == 1
    assert "run stuck is still Running after 0.3 s; the cancel request stands" in result.stderr


# --- monitor ---------------------------------------------------------------------------------


def test_monitor_once_on_an_empty_stack(names: dict[str, str]) -> None:
    result = invoke("monitor", "--once", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "actions": [],
        "checked": 0,
        "waiting": 0,
        "clusters_checked": 0,
    }
    table = invoke("monitor", "--once")
    assert table.exit_code == 0
    assert table.stdout == ""
    assert table.stderr.strip() == "checked 0 active runs: nothing to do"


def test_monitor_once_counts_the_runs_waiting_to_launch(store: Store) -> None:
    """Waiting runs are looked at too (a target may fit them now): the count says so."""
    store.runs.create("waits-1", "etl", labels=["gpu"])
    store.runs.create("waits-2", "etl", labels=["gpu"])
    report = json.loads(invoke("monitor", "--once", "--json").stdout)
    assert (report["checked"], report["waiting"], report["actions"]) == (2, 2, [])
    table = invoke("monitor", "--once")
    assert table.stderr.strip() == "checked 2 active runs (2 waiting to launch): nothing to do"


def test_monitor_needs_once_or_every(names: dict[str, str]) -> None:
    assert one_error_line(invoke("monitor"), 2).startswith("say --once for one pass")
    assert one_error_line(invoke("monitor", "--once", "--every", "5"), 2).startswith("say --once")


def test_monitor_names_a_bad_timeout_setting(
    names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRELAY_HEARTBEAT_TIMEOUT_SECONDS", "soon")
    error = one_error_line(invoke("monitor", "--once"), 2)
    assert error == "FLOWRELAY_HEARTBEAT_TIMEOUT_SECONDS='soon' is not a number of seconds > 0"


def test_monitor_once_offers_a_waiting_run_that_a_target_now_fits(
    store: Store, requests_queue: str
) -> None:
    store.runs.create("wants-gpu", "etl", labels=["gpu"], message="waiting for a launch target")
    store.targets.put(Target(name="gpu", kind="ecs", labels=["gpu"], settings={"cluster": "c"}))
    result = invoke("monitor", "--once")
    assert result.exit_code == 0, result.stderr
    title, header, row = result.stdout.strip().splitlines()
    assert title == "checked 1 active run (1 waiting to launch), 1 action"
    assert header.split() == ["run", "id", "action", "state", "message"]
    assert row.split()[:3] == ["wants-gpu", "offered", "Pending"]
    assert "offered to dispatch again: labels and kind fit 'gpu'" in row
    (request,) = received(requests_queue, wait_seconds=2)
    assert (request.flow_run_id, request.requested_by) == ("wants-gpu", "monitor")


def test_monitor_once_crashes_a_run_whose_task_stopped_unseen(
    store: Store,
    names: dict[str, str],
    ecs: Any,
    cluster: str,
    network: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real task in moto, stopped without anyone hearing of it; the run has no limits of its
    own, so the heartbeat timeout is the environment's default."""
    target = Target(
        name="fargate",
        kind="ecs",
        settings={"cluster": cluster, "image": "example/flows:cli", **network},
    )
    run, _ = store.runs.create("went-quiet", "etl")
    launched = EcsLauncher(ecs, table_name=names["table"], bus_name=names["bus"]).launch(
        run, target
    )
    store.runs.transition(
        run.run_id,
        RunState.SUBMITTED,
        Source.DISPATCHER,
        target="fargate",
        infrastructure=launched.model_dump(mode="json", exclude_none=True),
    )
    store.runs.transition(run.run_id, RunState.RUNNING, Source.RUNNER)
    ecs.stop_task(
        cluster=cluster,
        task=launched.task_arn,
        reason="OutOfMemoryError: Container killed due to memory usage",
    )
    assert json.loads(invoke("monitor", "--once", "--json").stdout)["actions"] == []  # 180 s
    monkeypatch.setenv("FLOWRELAY_HEARTBEAT_TIMEOUT_SECONDS", "0.2")
    time.sleep(0.3)
    result = invoke("monitor", "--once", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["checked"] == 1
    (action,) = report["actions"]
    assert (action["run_id"], action["action"], action["state"]) == (
        "went-quiet",
        "crashed",
        "Crashed",
    )
    assert "OutOfMemoryError: Container killed due to memory usage" in action["message"]
    assert "no heartbeat for" in action["message"]
    crashed = store.runs.get("went-quiet")
    assert crashed is not None
    assert crashed.state is RunState.CRASHED
    assert crashed.message == action["message"]


def test_monitor_every_runs_until_ctrl_c(names: dict[str, str]) -> None:
    command = ROOT / ".venv" / "bin" / "flowrelay"
    if not command.exists():
        pytest.skip("no .venv/bin/flowrelay (pip install -e '.[dev]')")
    process = subprocess.Popen(
        [str(command), "monitor", "--every", "0.2", "--json"],
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        passes = [json.loads(process.stdout.readline()) for _ in range(2)]
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert [(p["actions"], p["checked"]) for p in passes] == [([], 0), ([], 0)]
    assert "at" in passes[0]
    assert "monitor stopped" in err
