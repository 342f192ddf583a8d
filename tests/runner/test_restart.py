"""The flow runner's side of restart from failure, as its launchers start it (a real process,
moto over loopback HTTP): a run writes the manifest of what its tasks checkpointed and says
where in its final report; a restart reads it through the original's last history item, reuses
those results (their tasks do not run again) and says so in its Running report; when there is
nothing to reuse it says why and runs everything; a manifest that cannot be written changes
nothing of how the run ends.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import boto3
import pytest

from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunStateChanged
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.runs import restart_key, run_id_for
from flowrelay.runner.config import ENV_CHECKPOINTING
from tests.runner import test_runner
from tests.runner.test_runner import (
    Bus,
    has_final,
    new_run,
    received,
    register_script,
    reports,
    run_runner,
    runner_env,
    write_script,
)
from tests.support.restart import counts, restartable_script

pytestmark = pytest.mark.slow


@pytest.fixture
def table(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


#: A bus whose "Flow Run State Changed" events land in a queue: test_runner's fixture, here.
reports_bus = test_runner.bus


def recorded(store: Store, events: list[FlowRunStateChanged]) -> None:
    """Apply the runner's reports to the table, as record_state does."""
    for event in reports(events):
        store.runs.transition(
            event.flow_run_id,
            event.state,
            event.source,
            message=event.message,
            event_id=event.event_id,
            details=event.details,
        )


def run_once(
    store: Store, bus: Bus, folder: Path, run_id: str, **env: str
) -> tuple[int, list[FlowRunStateChanged], str]:
    """Run the runner for ``run_id``, record its reports; exit code, reports, stderr."""
    result = run_runner(runner_env(store, bus, run_id, **env), folder)
    events = reports(received(bus, until=has_final))
    recorded(store, events)
    return result.returncode, events, result.stderr


def restart_of(store: Store, original: str) -> str:
    """The run dispatch makes for ``flowrelay runs retry ORIGINAL``."""
    run = store.runs.get(original)
    assert run is not None
    new_id = run_id_for(restart_key(original))
    store.runs.create(
        new_id,
        run.flow_name,
        flow_version=run.flow_version,
        parameters=run.parameters,
        restart_of=original,
        message=f"restart of run {original}",
    )
    return new_id


def test_a_restart_reuses_what_the_failed_run_checkpointed_and_runs_the_rest(
    table: Store, reports_bus: Bus, tmp_path: Path
) -> None:
    register_script(table, write_script(tmp_path, restartable_script()))
    original = new_run(table, "restartable")

    code, events, _ = run_once(table, reports_bus, tmp_path, original)

    assert code == 1
    failed = events[-1]
    assert failed.state is RunState.FAILED
    assert failed.message == "Task 'transform' failed: ValueError: not fixed yet"
    checkpoints = failed.details["checkpoints"]
    assert checkpoints["tasks"] == 1  # extract; transform failed, load never ran
    assert checkpoints["uri"].startswith("file://")
    assert checkpoints["uri"].endswith(f"/results/flowrelay-checkpoints/{original}.json")
    assert counts(tmp_path) == {"extract": 1, "transform": 1, "load": 0}

    (tmp_path / "fixed").write_text("")
    restart = restart_of(table, original)
    code, events, stderr = run_once(table, reports_bus, tmp_path, restart)

    assert code == 0, stderr
    running, success = events
    assert running.state is RunState.RUNNING
    assert running.message == (
        f"Running flow 'restartable' version 1; reusing 1 checkpointed task result of run "
        f"{original}"
    )
    assert running.details["restart_of"] == original
    assert running.details["reused_tasks"] == 1
    assert running.details["checkpoints"] == checkpoints["uri"]
    assert "checkpoint_problems" not in running.details
    assert success.state is RunState.SUCCESS
    # extract did not run again; transform and what follows it did.
    assert counts(tmp_path) == {"extract": 1, "transform": 2, "load": 1}
    assert (tmp_path / "loaded.txt").read_text() == "6"
    # The restart's manifest names what it reused too: a restart of it loses nothing.
    assert success.details["checkpoints"]["tasks"] == 3
    assert f"Reusing 1 checkpointed task result of run {original}" in stderr

    # The engine was told which run this is, when its work was asked for (the original's
    # time, for a restart), and that checkpointing is on.
    first = table.runs.get(original)
    assert first is not None
    context = json.loads((tmp_path / f"context-{restart}.json").read_text())
    assert context["flow_run_id"] == restart
    assert context["checkpointing"] is True
    assert datetime.fromisoformat(context["scheduled_start_time"]) == first.created_at
    earlier = json.loads((tmp_path / f"context-{original}.json").read_text())
    assert datetime.fromisoformat(earlier["scheduled_start_time"]) == first.created_at


def test_a_restart_of_a_run_that_left_no_checkpoints_says_why_and_runs_everything(
    table: Store, reports_bus: Bus, tmp_path: Path
) -> None:
    register_script(table, write_script(tmp_path, restartable_script()))
    original = new_run(table, "restartable")
    table.runs.transition(original, RunState.SUBMITTED, Source.DISPATCHER, message="launched")
    table.runs.transition(
        original, RunState.CRASHED, Source.INFRASTRUCTURE, message="Essential container exited"
    )
    (tmp_path / "fixed").write_text("")

    code, events, stderr = run_once(table, reports_bus, tmp_path, restart_of(table, original))

    assert code == 0, stderr
    running = events[0]
    assert running.message == (
        f"Running flow 'restartable' version 1; restart of run {original}: it left no "
        f"checkpoints: it ended Crashed before its flow finished (infrastructure: Essential "
        f"container exited); running every task"
    )
    assert running.details["reused_tasks"] == 0
    assert counts(tmp_path) == {"extract": 1, "transform": 1, "load": 1}


def test_a_restart_of_a_restart_that_left_nothing_reuses_the_run_before_it(
    table: Store, reports_bus: Bus, tmp_path: Path
) -> None:
    register_script(table, write_script(tmp_path, restartable_script()))
    original = new_run(table, "restartable")
    assert run_once(table, reports_bus, tmp_path, original)[0] == 1
    # Its restart crashed before its flow started: nothing of its own to reuse.
    middle = restart_of(table, original)
    table.runs.transition(middle, RunState.CRASHED, Source.MONITOR, message="no heartbeat")
    (tmp_path / "fixed").write_text("")

    code, events, stderr = run_once(table, reports_bus, tmp_path, restart_of(table, middle))

    assert code == 0, stderr
    running = events[0]
    assert running.message is not None
    assert running.message.endswith(
        f"reusing 1 checkpointed task result of run {original} (restarted by {middle})"
    )
    assert running.details["checkpoints_of"] == original
    assert counts(tmp_path) == {"extract": 1, "transform": 2, "load": 1}


def test_checkpoints_that_cannot_be_read_are_run_again_and_named(
    table: Store, reports_bus: Bus, tmp_path: Path
) -> None:
    register_script(table, write_script(tmp_path, restartable_script()))
    original = new_run(table, "restartable")
    _, events, _ = run_once(table, reports_bus, tmp_path, original)
    # The value extract checkpointed is gone; the manifest still names it.
    manifest = Path(events[-1].details["checkpoints"]["uri"].removeprefix("file://"))
    (location,) = json.loads(manifest.read_text())["entries"].values()
    Path(location).unlink()
    (tmp_path / "fixed").write_text("")

    code, events, stderr = run_once(table, reports_bus, tmp_path, restart_of(table, original))

    assert code == 0, stderr
    running = events[0]
    assert running.message == (
        f"Running flow 'restartable' version 1; restart of run {original}: none of the "
        f"checkpointed results of run {original} can be reused; running every task (1 not "
        f"reused: see the run's log)"
    )
    (problem,) = running.details["checkpoint_problems"]
    assert problem.startswith("extract: ")
    assert problem.endswith("it runs again")
    assert counts(tmp_path) == {"extract": 2, "transform": 2, "load": 1}


def test_checkpointing_off_writes_no_manifest(
    table: Store, reports_bus: Bus, tmp_path: Path
) -> None:
    register_script(table, write_script(tmp_path, restartable_script()))
    run_id = new_run(table, "restartable")

    code, events, _ = run_once(table, reports_bus, tmp_path, run_id, **{ENV_CHECKPOINTING: "false"})

    assert code == 1
    assert "checkpoints" not in events[-1].details
    # (LocalResult makes its folder when it is made, as the seeds' engine's does.)
    assert list((tmp_path / "results").rglob("*")) == []
    context = json.loads((tmp_path / f"context-{run_id}.json").read_text())
    assert context["checkpointing"] is False


def test_a_manifest_that_cannot_be_written_changes_nothing_of_how_the_run_ends(
    table: Store, reports_bus: Bus, tmp_path: Path
) -> None:
    register_script(table, write_script(tmp_path, restartable_script()))
    # Where the manifest would go is a file: it cannot be written; the results can.
    (tmp_path / "results").mkdir(exist_ok=True)  # registering made it
    (tmp_path / "results" / "flowrelay-checkpoints").write_text("in the way")
    run_id = new_run(table, "restartable")

    code, events, stderr = run_once(table, reports_bus, tmp_path, run_id)

    assert code == 1
    failed = events[-1]
    assert failed.message == "Task 'transform' failed: ValueError: not fixed yet"
    assert failed.details["failed_tasks"] == ["transform"]
    assert "checkpoints" not in failed.details
    assert "Could not write the checkpoint manifest" in stderr
