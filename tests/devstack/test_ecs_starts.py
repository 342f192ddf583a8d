"""The dev stack's ECS executor starts the tasks of a burst side by side, as ECS does, and each
task's RUNNING event still comes before its STOPPED one.

Tasks RunTask'ed into the session's moto server over HTTP, run by a real EcsExecutor as local
processes; EventBridge is moto's, made slow (each PutEvents waits 0.3 s before it is sent, a
botocore hook on the executor's client): one task at a time, eight would take 2.4 s.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowrelay.devstack.ecs import EcsExecutor
from flowrelay.devstack.processes import TASK_NICENESS

SLOW_PUT_SECONDS = 0.3


class SlowEvents:
    """moto's EventBridge, each PutEvents 0.3 s slow; the task events put, in order, and the
    most PutEvents in flight at once."""

    def __init__(self) -> None:
        self.client = boto3.client("events")
        self.lock = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0
        self.put: list[tuple[str, str]] = []  # (task ARN, lastStatus)
        self.client.meta.events.register("before-parameter-build.events.PutEvents", self._record)
        self.client.meta.events.register("before-send.events.PutEvents", self._slow)

    def _record(self, params: dict[str, Any], **_: Any) -> None:
        with self.lock:
            for entry in params["Entries"]:
                detail = json.loads(entry["Detail"])
                self.put.append((detail["taskArn"], detail["lastStatus"]))

    def _slow(self, **_: Any) -> None:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(SLOW_PUT_SECONDS)
        with self.lock:
            self.in_flight -= 1

    def statuses(self, arn: str) -> list[str]:
        with self.lock:
            return [status for task, status in self.put if task == arn]


@pytest.fixture
def events(aws_env: str) -> SlowEvents:
    return SlowEvents()


@pytest.fixture
def run_tasks(
    ecs: Any, cluster: str, network: dict[str, Any]
) -> Callable[[list[str], int], list[str]]:
    """``run_tasks(command, count)``: RunTask ``count`` tasks running ``command``; their ARNs."""

    def run(command: list[str], count: int) -> list[str]:
        definition = ecs.register_task_definition(
            family="devstack-concurrent-starts",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[
                {"name": "flow", "image": "local", "memory": 512, "command": command}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        tasks = ecs.run_task(
            cluster=cluster,
            taskDefinition=definition,
            launchType="FARGATE",
            count=count,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": network["subnets"],
                    "securityGroups": network["security_groups"],
                }
            },
        )["tasks"]
        return [task["taskArn"] for task in tasks]

    return run


@pytest.fixture
def executor(ecs: Any, cluster: str, events: SlowEvents, tmp_path: Path) -> Iterator[EcsExecutor]:
    stopping = threading.Event()
    executor = EcsExecutor(
        ecs=ecs,
        events=events.client,
        logs=boto3.client("logs"),
        clusters=[cluster],
        stack_env=lambda: {},
        log_dir=tmp_path,
        stopping=stopping,
        say=print,  # shown when a test fails
        poll_seconds=0.05,
        grace_seconds=1.0,
    )
    executor.start()
    yield executor
    stopping.set()
    executor.join(timeout=10)


def wait_for(done: Callable[[], bool], timeout: float) -> float:
    """Seconds until ``done``."""
    began = time.monotonic()
    while not done():
        assert time.monotonic() - began < timeout, "not done in time"
        time.sleep(0.01)
    return time.monotonic() - began


def test_a_burst_of_tasks_starts_side_by_side(
    executor: EcsExecutor, events: SlowEvents, run_tasks: Callable[[list[str], int], list[str]]
) -> None:
    arns = run_tasks([sys.executable, "-c", "import time; time.sleep(30)"], 8)

    took = wait_for(lambda: all(events.statuses(arn) == ["RUNNING"] for arn in arns), 5)

    # One after another: 8 x 0.3 s. Side by side: a few rounds of 0.3 s at most.
    assert took < 8 * SLOW_PUT_SECONDS / 2, took
    assert events.most_in_flight >= 4
    assert len(executor.started_pids) == 8
    assert all(executor.group_of_task(arn) is not None for arn in arns)
    # Each task's processes yield the CPU to the stack (where the system lets it).
    assert all(
        _niceness(group) in (TASK_NICENESS, None)
        for group in (executor.group_of_task(arn) for arn in arns)
    )


def test_a_task_that_ends_at_once_is_reported_running_then_stopped(
    executor: EcsExecutor, events: SlowEvents, run_tasks: Callable[[list[str], int], list[str]]
) -> None:
    """Its process is done long before its slow RUNNING event is out: STOPPED still comes
    second, once, with the exit code."""
    arns = run_tasks([sys.executable, "-c", "pass"], 4)

    wait_for(lambda: all(len(events.statuses(arn)) == 2 for arn in arns), 5)

    assert all(events.statuses(arn) == ["RUNNING", "STOPPED"] for arn in arns)
    assert not executor.busy


def _niceness(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return os.getpriority(os.PRIO_PROCESS, pid)
    except OSError:
        return None  # it ended meanwhile
