"""``flowrelay runs logs`` and the log location in ``runs show``, against moto over HTTP: a table
made from template.yaml and CloudWatch Logs streams written as awslogs names them.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import boto3
import pytest

from flowrelay.control.store import Store
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.launchers.ecs import LaunchResult
from tests.support.aws import write_log
from tests.support.cli import invoke, one_error_line


@pytest.fixture
def store(run_table: str, monkeypatch: pytest.MonkeyPatch) -> Store:
    monkeypatch.delenv("FLOWRELAY_STACK", raising=False)
    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", run_table)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", "unused-by-these-commands")
    return Store(boto3.client("dynamodb"), run_table)


def launch(store: Store, run_id: str, group: str | None, task_id: str) -> dict[str, Any]:
    """A run the dispatcher launched: Submitted with the launcher's infrastructure."""
    store.runs.create(run_id, "etl")
    return launch_existing(store, run_id, group, task_id)


def launch_existing(store: Store, run_id: str, group: str | None, task_id: str) -> dict[str, Any]:
    """``launch`` for a run already created."""
    infrastructure = LaunchResult(
        task_arn=f"arn:aws:ecs:us-east-1:123456789012:task/flows/{task_id}",
        cluster="arn:aws:ecs:us-east-1:123456789012:cluster/flows",
        task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/fr-1:1",
        attempt=1,
        log_group=group,
        log_stream_prefix="flowrelay" if group else None,
    ).model_dump(mode="json", exclude_none=True)
    store.runs.transition(
        run_id,
        RunState.SUBMITTED,
        Source.DISPATCHER,
        target="fargate",
        infrastructure=infrastructure,
    )
    return infrastructure


def test_runs_logs_prints_every_line_or_the_last_n(store: Store, group: str) -> None:
    launch(store, "logged", group, "task1")
    # More events than GetLogEvents returns at once: the command follows the pages.
    messages = [f"line {index}" for index in range(10_050)]
    write_log(boto3.client("logs"), group, "flowrelay/flow/task1", messages)

    everything = invoke("runs", "logs", "logged")
    assert everything.exit_code == 0, everything.stderr
    assert everything.stdout.splitlines() == messages

    last = invoke("runs", "logs", "logged", "--tail", "3")
    assert last.stdout.splitlines() == ["line 10047", "line 10048", "line 10049"]

    as_json = json.loads(invoke("runs", "logs", "logged", "-n", "2", "--json").stdout)
    assert as_json["log_group"] == group
    assert as_json["log_stream"] == "flowrelay/flow/task1"
    assert [event["message"] for event in as_json["events"]] == ["line 10048", "line 10049"]
    assert as_json["events"][0]["timestamp"] <= as_json["events"][1]["timestamp"]


def test_runs_logs_errors_say_why_there_are_none(store: Store, group: str) -> None:
    assert one_error_line(invoke("runs", "logs", "nope"), 1) == "no flow run 'nope'"

    store.runs.create("waiting", "etl")
    assert one_error_line(invoke("runs", "logs", "waiting"), 1) == (
        "run waiting has no log location yet: it has not been launched (state Pending)"
    )

    launch(store, "no-awslogs", None, "task2")
    error = one_error_line(invoke("runs", "logs", "no-awslogs"), 1)
    assert error.startswith("run no-awslogs has no log location: its task does not log to")

    launch(store, "quiet", group, "task3")
    error = one_error_line(invoke("runs", "logs", "quiet", "--tail", "5"), 1)
    assert error == (
        f"run quiet has no logs yet: log stream 'flowrelay/flow/task3' in group {group!r} "
        "does not exist (its task may not have written any yet)"
    )
    store.runs.transition("quiet", RunState.CRASHED, Source.INFRASTRUCTURE)
    assert "its task never wrote any" in one_error_line(invoke("runs", "logs", "quiet"), 1)

    usage = invoke("runs", "logs", "quiet", "--tail", "0")
    assert usage.exit_code == 2


def test_runs_show_names_the_log_group_and_stream(store: Store, group: str) -> None:
    launch(store, "shown", group, "task4")
    text = invoke("runs", "show", "shown")
    assert text.exit_code == 0, text.stderr
    assert re.search(rf"\n  log group: +{re.escape(group)}\n", text.stdout)
    assert re.search(r"\n  log stream: +flowrelay/flow/task4\n", text.stdout)
    # Against a local endpoint the AWS console has nothing to show: the command is suggested.
    assert re.search(r"\n  logs: +flowrelay runs logs shown\n", text.stdout)
    # Each once, under one column of labels.
    assert text.stdout.count(group) == 1
    fields = [line for line in text.stdout.splitlines() if re.match(r"  [a-z ]+: ", line)]
    assert len({re.match(r"  [a-z ]+: +", line).end() for line in fields}) == 1, text.stdout  # type: ignore[union-attr]

    shown = json.loads(invoke("runs", "show", "shown", "--json").stdout)
    assert shown["logs"] == {
        "group": group,
        "stream": "flowrelay/flow/task4",
        "region": "us-east-1",
        "console_url": None,
    }

    store.runs.create("not-launched", "etl")
    assert json.loads(invoke("runs", "show", "not-launched", "--json").stdout)["logs"] is None
    assert "log stream" not in invoke("runs", "show", "not-launched").stdout


def test_runs_logs_follow_prints_lines_as_they_come_until_the_run_ends(
    store: Store, group: str
) -> None:
    """Waits for the launch, prints what is there, then each line as it is written; ends once
    the run has ended and its last lines are read."""
    logs = boto3.client("logs")
    stream = "flowrelay/flow/task-f"
    store.runs.create("followed", "etl")

    def play() -> None:
        time.sleep(0.6)
        launch_existing(store, "followed", group, "task-f")
        write_log(logs, group, stream, ["first", "second"])
        store.runs.transition("followed", RunState.RUNNING, Source.RUNNER)
        time.sleep(1.2)
        append_log(logs, group, stream, ["third"])
        time.sleep(1.2)
        append_log(logs, group, stream, ["last words"])
        store.runs.transition("followed", RunState.SUCCESS, Source.RUNNER, message="done")

    player = threading.Thread(target=play, daemon=True)
    player.start()
    followed = invoke("runs", "logs", "followed", "--follow")
    player.join()
    assert followed.exit_code == 0, followed.stderr
    assert followed.stdout.splitlines() == ["first", "second", "third", "last words"]
    assert "run followed ended Success: done" in followed.stderr

    # With --tail: the last N lines there are, then what comes (here: nothing, it has ended).
    assert invoke("runs", "logs", "followed", "-f", "-n", "2").stdout.splitlines() == [
        "third",
        "last words",
    ]
    store.runs.create("never-launched", "etl")
    store.runs.transition("never-launched", RunState.CANCELLED, Source.USER)
    assert one_error_line(invoke("runs", "logs", "never-launched", "-f"), 1) == (
        "run never-launched ended Cancelled without logs to follow"
    )
    assert "does not take --json" in one_error_line(
        invoke("runs", "logs", "followed", "-f", "--json"), 2
    )


def append_log(logs: Any, group: str, stream: str, messages: list[str]) -> None:
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)],
    )
