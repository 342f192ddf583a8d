"""The local launcher against moto (its events) and real processes: at most one process per
attempt, how a process's end reads, and what the run config may not change."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from flowrelay.core.events import parse_event
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun
from flowrelay.launchers.base import LaunchError
from flowrelay.launchers.kinds import event_readers
from flowrelay.launchers.local.launcher import LocalLauncher
from tests.support.cli import routed_queue


@pytest.fixture
def exits(bus: str) -> Iterator[str]:
    """A queue receiving the bus's "Local Process State Change" events."""
    yield from routed_queue(bus, "Local Process State Change")


def a_run(**config: object) -> FlowRun:
    now = datetime.now(UTC)
    return FlowRun(
        run_id=uuid.uuid4().hex,
        flow_name="nowhere",
        run_config={"type": "LocalRun", **config} if config else None,
        created_at=now,
        updated_at=now,
        state_entered_at=now,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_one_process_per_attempt_and_how_its_end_reads(
    run_table: str, bus: str, exits: str, tmp_path: Path
) -> None:
    launcher = LocalLauncher(boto3.client("events"), table_name=run_table, bus_name=bus)
    target = Target(name="here", kind="local", settings={"log_dir": str(tmp_path)})
    run = a_run()  # not in the table: its runner exits 2, saying so
    first = launcher.launch(run, target, attempt=1)
    # A resumed attempt finds the process it started; it starts no other.
    assert launcher.launch(run, target, attempt=1, resume=True) == first
    assert launcher.find_unrecorded(run, 1, [target]) == first
    assert launcher.find_unrecorded(run, 2, [target]) is None

    wait_for(lambda: launcher.status(first.model_dump()).ended)
    status = launcher.status(first.model_dump())
    assert (status.phase, status.exit_code) == ("stopped", 2)
    assert status.message == f"local process {first.pid} exited with code 2"
    assert run.run_id in Path(first.log_file).read_text()  # the runner says which run
    # Another process (the CLI's monitor) cannot know the exit code: the process is gone.
    elsewhere = LocalLauncher(boto3.client("events"), table_name=run_table, bus_name=bus)
    assert elsewhere.status(first.model_dump()).phase == "gone"
    # Its end was put on the bus, as ECS puts a task's.
    messages = boto3.client("sqs").receive_message(QueueUrl=exits, WaitTimeSeconds=5)
    (event,) = [json.loads(message["Body"]) for message in messages["Messages"]]
    assert (event["detail"]["flow_run_id"], event["detail"]["exit_code"]) == (run.run_id, 2)
    read = parse_event(event, event_readers()).detail
    assert (read.run_id, read.status.phase, read.status.ref) == (run.run_id, "stopped", first.ref)


def test_what_a_local_run_cannot_be(run_table: str, bus: str, tmp_path: Path) -> None:
    launcher = LocalLauncher(boto3.client("events"), table_name=run_table, bus_name=bus)
    target = Target(name="here", kind="local", settings={"log_dir": str(tmp_path)})
    with pytest.raises(LaunchError, match="is not a directory on this machine"):
        launcher.launch(a_run(working_dir=str(tmp_path / "missing")), target)
    with pytest.raises(LaunchError, match="FLOWRELAY_RUN_ID is set by flowrelay for every run"):
        launcher.launch(a_run(env={"FLOWRELAY_RUN_ID": "another"}), target)
    now = datetime.now(UTC)
    ecs_run = FlowRun(
        run_id="r",
        flow_name="f",
        run_config={"type": "ECSRun"},
        created_at=now,
        updated_at=now,
        state_entered_at=now,
    )
    with pytest.raises(LaunchError, match="an ECSRun cannot run on a local target"):
        launcher.launch(ecs_run, target)
