"""``flowrelay runs retry`` against moto over HTTP: what it sends for a run that failed (a
restart of the same flow version, parameters, labels and run config, keyed so it makes one new
run), what it refuses and why (one line each), and how ``runs show`` and ``runs ls`` show the
link between the two runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from flowrelay.cli.options import requested_by
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunRequested
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.run_configs import ECSRun
from flowrelay.core.runs import restart_key, restart_note_id, run_id_for
from tests.support.aws import register_etl
from tests.support.cli import invoke, one_error_line, received, routed_queue


@pytest.fixture
def store(names: dict[str, str]) -> Store:
    return register_etl(Store(boto3.client("dynamodb"), names["table"]))


@pytest.fixture
def requests_queue(names: dict[str, str]) -> Iterator[str]:
    """Where DispatchQueue would get the run requests."""
    yield from routed_queue(names["bus"], FlowRunRequested.DETAIL_TYPE)


RUN_CONFIG = ECSRun(cpu="1024", memory="2048", env={"MODE": "full"})


def ended(store: Store, run_id: str, state: RunState, **fields: Any) -> None:
    """A run of etl version 1 that ran and ended ``state``."""
    store.runs.create(
        run_id,
        "etl",
        flow_version=fields.pop("flow_version", 1),
        parameters={"rows": 3},
        labels=["gpu"],
        run_config=RUN_CONFIG.model_dump(mode="json"),
        timeout_seconds=600,
    )
    if state is RunState.PENDING:
        return
    store.runs.transition(run_id, RunState.RUNNING, Source.RUNNER, message="Running")
    if state.is_final:
        store.runs.transition(run_id, state, Source.RUNNER, message=f"it ended {state}")


def test_retry_sends_a_restart_of_the_same_run_and_prints_the_new_id(
    store: Store, requests_queue: str
) -> None:
    ended(store, "broken", RunState.FAILED)

    result = invoke("runs", "retry", "broken")

    assert result.exit_code == 0, result.stderr
    new_id = run_id_for(restart_key("broken"))
    assert result.stdout.strip() == new_id
    assert f"restarting run broken (Failed) as run {new_id}" in result.stderr
    assert f"flowrelay runs show {new_id}" in result.stderr
    (request,) = received(requests_queue, wait_seconds=2)
    assert isinstance(request, FlowRunRequested)
    assert request.restart_of == "broken"
    assert request.idempotency_key == "restart:broken"
    assert request.flow_run_id is None  # the key names the new run: one however often sent
    assert (request.flow, request.version) == ("etl", 1)
    assert request.parameters == {"rows": 3}
    assert request.labels == ["gpu"]
    assert request.run_config == RUN_CONFIG
    assert request.timeout_seconds == 600
    assert request.requested_by == requested_by()


@pytest.mark.parametrize("state", [RunState.CRASHED, RunState.TIMED_OUT, RunState.CANCELLED])
def test_retry_takes_every_way_a_run_can_end_but_success(
    store: Store, requests_queue: str, state: RunState
) -> None:
    run_id = f"ended-{state.value.lower()}"
    if state is RunState.CANCELLED:
        ended(store, run_id, RunState.RUNNING)
        store.runs.transition(run_id, RunState.CANCELLING, Source.USER)
        store.runs.transition(run_id, RunState.CANCELLED, Source.INFRASTRUCTURE)
    else:
        ended(store, run_id, state)

    as_json = json.loads(invoke("runs", "retry", run_id, "--json").stdout)

    assert as_json["flow_run_id"] == run_id_for(restart_key(run_id))
    assert as_json["sent"] is True
    assert as_json["was"] == str(state)
    assert as_json["restart_of"] == run_id
    assert as_json["idempotency_key"] == f"restart:{run_id}"
    assert (as_json["flow"], as_json["version"], as_json["parameters"]) == ("etl", 1, {"rows": 3})
    (request,) = received(requests_queue, wait_seconds=2)
    assert request.restart_of == run_id


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (
            RunState.RUNNING,
            "run r is Running: only a run that ended Failed, Crashed, TimedOut or Cancelled "
            "can be restarted",
        ),
        (
            RunState.PENDING,
            "run r is Pending: only a run that ended Failed, Crashed, TimedOut or Cancelled "
            "can be restarted",
        ),
        (RunState.SUCCESS, "run r succeeded: there is nothing to restart"),
    ],
)
def test_retry_refuses_a_run_that_has_not_ended_or_succeeded(
    store: Store, requests_queue: str, state: RunState, message: str
) -> None:
    ended(store, "r", state)
    assert one_error_line(invoke("runs", "retry", "r"), 2) == message
    assert one_error_line(invoke("runs", "retry", "r", "--json"), 2) == message
    assert received(requests_queue) == []


def test_retry_of_an_unknown_run_is_exit_1(store: Store, requests_queue: str) -> None:
    assert one_error_line(invoke("runs", "retry", "nope"), 1) == "no flow run 'nope'"
    assert received(requests_queue) == []


def test_a_second_retry_of_the_same_run_names_its_restart(
    store: Store, requests_queue: str
) -> None:
    ended(store, "twice", RunState.FAILED)
    new_id = run_id_for(restart_key("twice"))
    # Sent, and dispatch made the new run but has not noted it on the original yet.
    assert invoke("runs", "retry", "twice").exit_code == 0
    store.runs.create(new_id, "etl", flow_version=1, restart_of="twice")
    expected = f"run twice was already restarted as {new_id}; retry {new_id} instead"
    assert one_error_line(invoke("runs", "retry", "twice"), 2) == expected
    # Once noted (a restart sent some other way has some other id): that one is named.
    original = store.runs.get("twice")
    assert original is not None
    store.runs.note(
        original,
        Source.DISPATCHER,
        "restarted as run other",
        at=store.clock(),
        event_id=restart_note_id("other"),
        details={"restarted_as": "other"},
    )
    assert one_error_line(invoke("runs", "retry", "twice", "--json"), 2) == (
        "run twice was already restarted as other; retry other instead"
    )
    assert len(received(requests_queue, wait_seconds=1)) == 1  # the first retry only


def test_retry_of_a_run_whose_version_is_gone_says_so(store: Store, requests_queue: str) -> None:
    ended(store, "old", RunState.FAILED, flow_version=9)
    assert one_error_line(invoke("runs", "retry", "old"), 2) == (
        "run old cannot be restarted: flow 'etl' version 9 is not registered any more (a "
        "restart runs the version its run ran)"
    )
    assert received(requests_queue) == []


def test_show_and_ls_show_the_link_both_ways(store: Store) -> None:
    ended(store, "first", RunState.FAILED)
    second = run_id_for(restart_key("first"))
    store.runs.create(
        second,
        "etl",
        flow_version=1,
        restart_of="first",
        message="restart of run first",
        details={"restart_of": "first"},
    )
    original = store.runs.get("first")
    assert original is not None
    store.runs.note(
        original,
        Source.DISPATCHER,
        f"restarted as run {second}",
        at=store.clock(),
        event_id=restart_note_id(second),
        details={"restarted_as": second},
    )

    shown = invoke("runs", "show", "first")
    assert shown.exit_code == 0, shown.stderr
    assert re.search(rf"^  restarted as: +{second}$", shown.stdout, re.MULTILINE)
    assert f"restarted as run {second}" in shown.stdout  # the note, in the history
    restart = invoke("runs", "show", second)
    assert re.search(r"^  restart of: +first$", restart.stdout, re.MULTILINE)
    assert "restart of run first" in restart.stdout

    as_json = json.loads(invoke("runs", "show", "first", "--json").stdout)
    assert as_json["restarted_as"] == second
    assert as_json["run"]["restart_of"] is None
    restart_json = json.loads(invoke("runs", "show", second, "--json").stdout)
    assert restart_json["run"]["restart_of"] == "first"
    assert restart_json["restarted_as"] is None
    assert restart_json["history"][0]["details"] == {"restart_of": "first"}

    listed = invoke("runs", "ls", "--flow", "etl").stdout
    (line,) = [line for line in listed.splitlines() if line.startswith(second)]
    assert "restart of first" in line
