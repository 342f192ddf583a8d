"""record_state: runner, monitor and ECS events applied to runs in the table (moto server)."""

from __future__ import annotations

import itertools
from typing import Any

import boto3
import pytest

from flowrelay.control.recorder import StateRecorder
from flowrelay.control.store import Store
from flowrelay.core.events import parse_event
from flowrelay.core.lifecycle import RunState
from flowrelay.core.runs import states_reached
from flowrelay.launchers.kinds import event_readers

S = RunState


@pytest.fixture
def store(run_table: str) -> Store:
    return Store(boto3.client("dynamodb"), run_table)


def bus_event(
    detail_type: str, detail: dict[str, Any], source: str = "flowrelay"
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "e",
        "detail-type": detail_type,
        "source": source,
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def runner(run_id: str, state: str, message: str | None = None, **extra: Any) -> dict[str, Any]:
    return bus_event(
        "Flow Run State Changed",
        {"flow_run_id": run_id, "state": state, "source": "runner", "message": message, **extra},
    )


def ecs(run_id: str, status: str, version: int, **extra: Any) -> dict[str, Any]:
    detail = {
        "taskArn": f"arn:aws:ecs:us-east-1:123456789012:task/flowrelay/{run_id}",
        "lastStatus": status,
        "group": f"flowrelay:{run_id}",
        "version": version,
        **extra,
    }
    return bus_event("ECS Task State Change", detail, source="aws.ecs")


def apply(recorder: StateRecorder, *events: dict[str, Any]) -> None:
    for event in events:
        recorder.handle(parse_event(event, event_readers()))


def test_a_task_that_failed_to_start_with_no_containers_is_crashed(store: Store) -> None:
    store.runs.create("r1", "etl", state=S.SUBMITTED)
    recorder = StateRecorder(store)
    apply(
        recorder,
        ecs(
            "r1",
            "STOPPED",
            3,
            stopCode="TaskFailedToStart",
            stoppedReason="ResourceInitializationError: unable to pull secrets",
            containers=[],
        ),
    )
    run = store.runs.get("r1")
    assert run is not None
    assert run.state is S.CRASHED
    assert run.message == (
        "ECS task stopped (TaskFailedToStart): ResourceInitializationError: unable to pull "
        "secrets; no container ran"
    )
    assert store.runs.history("r1")[-1].details["stop_code"] == "TaskFailedToStart"


def test_a_missing_exit_code_is_never_success(store: Store) -> None:
    store.runs.create("r2", "etl", state=S.RUNNING)
    apply(
        StateRecorder(store),
        ecs(
            "r2",
            "STOPPED",
            5,
            stopCode="EssentialContainerExited",
            containers=[{"name": "flow", "lastStatus": "STOPPED"}],
        ),
    )
    run = store.runs.get("r2")
    assert run.state is S.CRASHED  # type: ignore[union-attr]
    assert "container 'flow' has no exit code" in run.message  # type: ignore[union-attr,operator]


def test_exit_codes_and_reasons_are_in_the_message(store: Store) -> None:
    store.runs.create("r3", "etl", state=S.RUNNING)
    apply(
        StateRecorder(store),
        ecs(
            "r3",
            "STOPPED",
            6,
            stopCode="EssentialContainerExited",
            stoppedReason="Essential container in task exited",
            containers=[
                {
                    "name": "flow",
                    "exitCode": 137,
                    "reason": "OutOfMemoryError: Container killed due to memory usage",
                }
            ],
        ),
    )
    assert store.runs.get("r3").message == (  # type: ignore[union-attr]
        "ECS task stopped (EssentialContainerExited): Essential container in task exited; "
        "container 'flow' exited with code 137 "
        "(OutOfMemoryError: Container killed due to memory usage)"
    )


def test_every_ordering_of_a_successful_runs_events_ends_success(store: Store) -> None:
    recorder = StateRecorder(store)
    for number, ordering in enumerate(
        itertools.permutations(["pending", "runner-running", "success", "stopped"])
    ):
        run_id = f"order-{number}"
        store.runs.create(run_id, "etl", state=S.SUBMITTED)
        events = {
            "pending": ecs(run_id, "PENDING", 2),
            "runner-running": runner(run_id, "Running"),
            "success": runner(run_id, "Success", "All reference tasks succeeded."),
            "stopped": ecs(
                run_id,
                "STOPPED",
                4,
                stopCode="EssentialContainerExited",
                containers=[{"name": "flow", "exitCode": 0}],
            ),
        }
        apply(recorder, *(events[name] for name in ordering), events[ordering[0]])
        run = store.runs.get(run_id)
        assert run is not None
        assert run.state is S.SUCCESS, ordering
        assert run.message == "All reference tasks succeeded."


def test_a_running_report_after_the_runs_end_is_kept_as_a_note(store: Store) -> None:
    """Concurrent state batches can apply a short run's Success before its Running: the run
    stays Success, and its history still shows when it ran."""
    recorder = StateRecorder(store)
    store.runs.create("late", "etl", state=S.SUBMITTED)
    running = runner("late", "Running", timestamp="2026-11-23T12:00:01Z", event_id="r-1")
    apply(recorder, runner("late", "Success", "done"))
    outcome = recorder.handle(parse_event(running, event_readers()))
    again = recorder.handle(parse_event(running, event_readers()))

    assert outcome.applied
    assert outcome.reason == "a late Running report, noted"
    assert not again.applied
    run = store.runs.get("late")
    assert run is not None
    assert run.state is S.SUCCESS
    history = store.runs.history("late")
    assert [str(entry.state) for entry in history if not entry.note] == ["Submitted", "Success"]
    (note,) = [entry for entry in history if entry.note]
    assert note.late_state is S.RUNNING
    assert "arrived after Success" in (note.message or "")
    reached = states_reached(history)
    assert [str(state) for state, _ in reached] == ["Submitted", "Running", "Success"]
    assert reached[1][1].isoformat() == "2026-11-23T12:00:01+00:00"


def test_other_refused_reports_are_not_noted(store: Store) -> None:
    recorder = StateRecorder(store)
    store.runs.create("refused", "etl", state=S.FAILED)
    outcome = recorder.handle(parse_event(runner("refused", "Success"), event_readers()))
    assert not outcome.applied
    assert [entry.note for entry in store.runs.history("refused")] == [False]


def test_heartbeats_update_the_run_without_a_transition(store: Store) -> None:
    store.runs.create("r4", "etl", state=S.RUNNING)
    outcome = StateRecorder(store).handle(parse_event(runner("r4", "Running", heartbeat=True)))
    assert outcome.applied
    assert outcome.reason == "heartbeat"
    run = store.runs.get("r4")
    assert run.heartbeat_at is not None  # type: ignore[union-attr]
    assert len(store.runs.history("r4")) == 1


def test_tasks_flowrelay_did_not_start_are_ignored(store: Store) -> None:
    event = ecs("x", "STOPPED", 1)
    event["detail"]["group"] = "service:web"
    outcome = StateRecorder(store).handle(parse_event(event, event_readers()))
    assert not outcome.applied
    assert "is not flowrelay's" in outcome.reason
