"""Restart from failure in the control plane, against moto over HTTP: a request with
``restart_of`` makes one new run of the version its original ran, linked in both histories,
however often it is delivered; a restart of a run that does not exist, is of another flow or
version, has not ended or succeeded is Failed with the reason and launches nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from flowrelay.control.dispatch import Dispatcher, RequestConflict
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunRequested, parse_event
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.routing import Target
from flowrelay.core.runs import FlowRun, restart_key, run_id_for
from flowrelay.core.storage import Module
from flowrelay.launchers.ecs import EcsLauncher
from flowrelay.sdk.flow import registration_for
from tests.control import test_dispatch
from tests.control.test_dispatch import envelope

BUS = "flowrelay"


#: The dispatch tests' ECS target, here.
target = test_dispatch.target


@pytest.fixture
def dispatcher(store: Store, ecs: Any, target: Target) -> Dispatcher:
    store.targets.put(target)
    launcher = EcsLauncher(ecs, table_name=store.table_name, bus_name=BUS)
    return Dispatcher(store, {"ecs": launcher})


def deliver(detail: dict[str, Any], event_id: str | None = None) -> Any:
    return parse_event(envelope(event_id or str(uuid.uuid4()), detail))


def ended(
    store: Store,
    state: RunState = RunState.FAILED,
    flow: str = "etl",
    version: int | None = 1,
    details: dict[str, Any] | None = None,
) -> FlowRun:
    """A run of ``flow`` that ran and ended ``state`` (as its runner reports it)."""
    run_id = f"original-{uuid.uuid4().hex[:8]}"
    store.runs.create(run_id, flow, flow_version=version, parameters={"rows": 7})
    if state is not RunState.PENDING:
        store.runs.transition(run_id, RunState.RUNNING, Source.RUNNER, message="Running")
    if state.is_final:
        store.runs.transition(
            run_id, state, Source.RUNNER, message=f"it ended {state}", details=details
        )
    run = store.runs.get(run_id)
    assert run is not None
    return run


def restart_request(original: FlowRun, **overrides: Any) -> dict[str, Any]:
    """The request ``flowrelay runs retry`` sends for ``original``."""
    return {
        "flow": original.flow_name,
        "version": original.flow_version,
        "parameters": original.parameters,
        "labels": original.labels,
        "idempotency_key": restart_key(original.run_id),
        "restart_of": original.run_id,
        "requested_by": "test",
        **overrides,
    }


def tasks_of(ecs: Any, cluster: str) -> list[str]:
    arns: list[str] = ecs.list_tasks(cluster=cluster)["taskArns"]
    return arns


def notes(store: Store, run_id: str) -> list[Any]:
    return [entry for entry in store.runs.history(run_id) if entry.note]


def test_a_restart_is_a_new_run_of_the_same_version_linked_in_both_histories(
    dispatcher: Dispatcher, store: Store, ecs: Any, cluster: str
) -> None:
    original = ended(store)
    # A newer version registered since: the restart still runs the one its original ran.
    from flowrelay.sdk.examples.etl import flow

    newer = registration_for(flow, storage=Module("flowrelay.sdk.examples.etl:flow"))
    _, made = store.flows.register(newer.model_copy(update={"labels": ["newer"]}))
    assert made

    outcome = dispatcher.handle_request(deliver(restart_request(original, version=None)))

    assert outcome.launched
    assert outcome.run_id == run_id_for(restart_key(original.run_id)) != original.run_id
    restart = store.runs.get(outcome.run_id)
    assert restart is not None
    assert restart.state is RunState.SUBMITTED
    assert restart.restart_of == original.run_id
    assert restart.flow_name == "etl"
    assert restart.flow_version == 1
    assert restart.parameters == {"rows": 7}
    assert len(tasks_of(ecs, cluster)) == 1
    first = store.runs.history(restart.run_id)[0]
    assert (first.state, first.source) == (RunState.PENDING, Source.DISPATCHER)
    assert first.message == f"restart of run {original.run_id}"
    assert first.details == {"restart_of": original.run_id}
    (note,) = notes(store, original.run_id)
    assert note.message == f"restarted as run {restart.run_id}"
    assert note.details == {"restarted_as": restart.run_id}
    assert note.source is Source.DISPATCHER
    # The original is as it was: a note changes no state and no version.
    unchanged = store.runs.get(original.run_id)
    assert unchanged is not None
    assert (unchanged.state, unchanged.version) == (original.state, original.version)


def test_a_restart_delivered_five_times_is_one_run_one_task_one_note(
    dispatcher: Dispatcher, store: Store, ecs: Any, cluster: str
) -> None:
    original = ended(store, RunState.CRASHED)
    detail = restart_request(original)
    # Redeliveries of one event, and the same request sent again (a double click).
    outcomes = [dispatcher.handle_request(deliver(detail, "evt-restart")) for _ in range(3)]
    outcomes += [dispatcher.handle_request(deliver(detail)) for _ in range(2)]

    assert [outcome.launched for outcome in outcomes] == [True, False, False, False, False]
    assert len({outcome.run_id for outcome in outcomes}) == 1
    assert len(tasks_of(ecs, cluster)) == 1
    assert len(notes(store, original.run_id)) == 1
    restart_history = store.runs.history(outcomes[0].run_id)
    assert [entry.message for entry in restart_history].count(
        f"restart of run {original.run_id}"
    ) == 1


def test_a_restart_that_waits_for_a_target_is_noted_once_and_launched_later(
    store: Store, ecs: Any, cluster: str, target: Target
) -> None:
    """The note is written before the launch, so a restart that has to wait (no target fits
    yet) is linked already; the delivery that launches it later leaves the one note."""
    original = ended(store, RunState.TIMED_OUT)
    detail = restart_request(original)
    launcher = EcsLauncher(ecs, table_name=store.table_name, bus_name=BUS)
    dispatcher = Dispatcher(store, {"ecs": launcher})

    waiting = dispatcher.handle_request(deliver(detail))
    assert waiting.state is RunState.PENDING
    assert len(notes(store, original.run_id)) == 1

    store.targets.put(target)
    launched = dispatcher.handle_request(deliver(detail))
    assert launched.launched
    assert len(tasks_of(ecs, cluster)) == 1
    assert len(notes(store, original.run_id)) == 1


@pytest.mark.parametrize(
    ("make", "overrides", "message"),
    [
        (
            None,
            {"restart_of": "no-such-run", "idempotency_key": "restart:no-such-run"},
            "cannot restart run no-such-run: there is no such run",
        ),
        (
            RunState.FAILED,
            {"idempotency_key": "my-own-key"},
            "cannot restart run {original} as run {run_id}: a restart is keyed by the run it "
            "restarts (idempotency key 'restart:{original}', or none, and no flow_run_id), so "
            "that a run is restarted once",
        ),
        (
            "other flow",
            {},
            "cannot restart run {original} as a run of flow 'etl': it is a run of flow 'hello'",
        ),
        (
            RunState.FAILED,
            {"version": 2},
            "cannot restart run {original} with version 2 of flow 'etl': a restart runs the "
            "version its original ran (1)",
        ),
        (
            RunState.RUNNING,
            {},
            "run {original} is Running: only a run that ended Failed, Crashed, TimedOut or "
            "Cancelled can be restarted",
        ),
        (RunState.SUCCESS, {}, "run {original} succeeded: there is nothing to restart"),
    ],
    ids=["missing", "another-key", "other-flow", "other-version", "not-ended", "succeeded"],
)
def test_a_restart_that_cannot_be_is_failed_with_the_reason_and_launches_nothing(
    dispatcher: Dispatcher,
    store: Store,
    ecs: Any,
    cluster: str,
    make: RunState | str | None,
    overrides: dict[str, Any],
    message: str,
) -> None:
    from flowrelay.sdk.examples.etl import flow

    registration = registration_for(flow, storage=Module("flowrelay.sdk.examples.etl:flow"))
    store.flows.register(registration.model_copy(update={"labels": ["v2"]}))
    if make == "other flow":
        from flowrelay.sdk.examples.hello import flow as hello

        store.flows.register(
            registration_for(hello, storage=Module("flowrelay.sdk.examples.hello:flow"))
        )
        original = ended(store, flow="hello")
    else:
        original = ended(store, make if isinstance(make, RunState) else RunState.FAILED)
    detail = restart_request(original, **overrides)
    detail["flow"] = "etl"

    outcome = dispatcher.handle_request(deliver(detail))

    assert outcome.state is RunState.FAILED
    run = store.runs.get(outcome.run_id)
    assert run is not None
    assert run.message == message.format(original=original.run_id, run_id=outcome.run_id)
    assert run.restart_of == detail["restart_of"]
    assert tasks_of(ecs, cluster) == []
    assert notes(store, original.run_id) == []


def test_a_key_reused_to_restart_another_run_is_refused(
    dispatcher: Dispatcher, store: Store
) -> None:
    first, second = ended(store), ended(store)
    detail = restart_request(first)
    dispatcher.handle_request(deliver(detail))
    with pytest.raises(RequestConflict, match=f"restart_of: {second.run_id} here, {first.run_id}"):
        dispatcher.handle_request(deliver({**detail, "restart_of": second.run_id}))


def test_a_runs_last_transition_is_its_final_report_with_its_details(store: Store) -> None:
    checkpoints = {"uri": "s3://bucket/flowrelay-checkpoints/r.json", "tasks": 3}
    original = ended(store, details={"checkpoints": checkpoints})
    entry = store.runs.last_transition(original)
    assert entry is not None
    assert entry.state is RunState.FAILED
    assert entry.source is Source.RUNNER
    assert entry.details["checkpoints"] == checkpoints
    # A note afterwards (the restart's) changes nothing of that.
    store.runs.note(
        original, Source.DISPATCHER, "restarted as run x", at=store.clock(), event_id="n-1"
    )
    again = store.runs.last_transition(store.runs.get(original.run_id))  # type: ignore[arg-type]
    assert again is not None
    assert again.details["checkpoints"] == checkpoints


def test_a_restart_request_names_a_run_id() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="restart_of"):
        FlowRunRequested(flow="etl", restart_of="not a run id!")
