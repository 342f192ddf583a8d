"""``flowrelay limits put|ls|rm`` and what ``runs ls``/``runs show`` say about Queued runs, against
moto over HTTP: the CLI changes limits through ``Slots`` and wakes runs on the stack's bus, as
the functions do; Queued runs are made by the real dispatcher and ECS launcher."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from flowrelay.aws.bus import Publisher
from flowrelay.control.dispatch import Dispatcher, DispatchOutcome
from flowrelay.control.monitor import waking_by
from flowrelay.control.slots import Slots
from flowrelay.control.store import Store
from flowrelay.core.events import parse_event
from flowrelay.core.lifecycle import RunState
from flowrelay.core.routing import Target
from flowrelay.launchers.ecs import EcsLauncher
from tests.control.test_concurrency import envelope
from tests.support.cli import invoke, one_error_line, received, routed_queue

LABEL = "warehouse"


def ok(*args: str) -> str:
    """``flowrelay ARGS...`` exited 0; its stdout."""
    result = invoke(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result.stdout


def as_json(*args: str) -> Any:
    return json.loads(ok(*args, "--json"))


# --- put, ls, rm ---------------------------------------------------------------------------


def test_limits_put_ls_rm(names: dict[str, str], store: Store) -> None:
    ls_empty = invoke("limits", "ls")
    assert ls_empty.exit_code == 0
    assert ls_empty.stdout == ""
    assert ls_empty.stderr.strip() == "no concurrency limits"
    assert as_json("limits", "ls") == []

    put = ok("limits", "put", "warehouse", "--label", LABEL, "--max", "3")
    assert put.strip() == (
        "limit warehouse: label 'warehouse': at most 3 runs at once (0 holding, 0 waiting; woke 0)"
    )
    nightly = as_json("limits", "put", "nightly", "--flow", "etl", "--max", "1")
    assert nightly == {
        "name": "nightly",
        "kind": "flow",
        "value": "etl",
        "max_runs": 1,
        "holders": [],
        "waiting": [],
        "free": 1,
        "woken": [],
    }
    paused = ok("limits", "put", "fargate-cap", "--target", "fargate", "--max", "0")
    assert paused.strip() == (
        "limit fargate-cap: target 'fargate': paused (at most 0 runs) "
        "(0 holding, 0 waiting; woke 0)"
    )

    listed = as_json("limits", "ls")
    assert [limit["name"] for limit in listed] == ["fargate-cap", "nightly", "warehouse"]
    assert listed[2] == {
        "name": "warehouse",
        "kind": "label",
        "value": LABEL,
        "max_runs": 3,
        "holders": [],
        "waiting": [],
        "free": 3,
    }
    table = ok("limits", "ls")
    header, *rows = table.splitlines()
    for column in ("name", "kind", "value", "max", "holding", "held by", "waiting"):
        assert column in header
    assert rows[2].split() == ["warehouse", "label", LABEL, "3", "0/3"]

    # Put again: changed in place.
    changed = ok("limits", "put", "warehouse", "--label", LABEL, "--max", "1")
    assert "at most 1 run at once" in changed
    assert store.limits.get("warehouse").limit.max_runs == 1  # type: ignore[union-attr]

    removed = ok("limits", "rm", "nightly")
    assert removed.strip() == (
        "removed limit nightly: flow 'etl': at most 1 run at once (woke 0 waiting runs)"
    )
    removed_json = as_json("limits", "rm", "fargate-cap")
    assert removed_json["removed"] is True
    assert removed_json["name"] == "fargate-cap"
    assert removed_json["woken"] == []
    assert [limit["name"] for limit in as_json("limits", "ls")] == ["warehouse"]


def test_limits_put_notes_a_target_or_flow_that_does_not_exist(
    names: dict[str, str], store: Store
) -> None:
    result = invoke("limits", "put", "big", "--target", "nowhere", "--max", "2")
    assert result.exit_code == 0
    assert "note: no target 'nowhere' yet" in result.stderr
    result = invoke("limits", "put", "other", "--flow", "not-registered", "--max", "2")
    assert "note: no flow 'not-registered' registered yet" in result.stderr
    result = invoke("limits", "put", "etl", "--flow", "etl", "--max", "2")
    assert result.stderr == ""  # etl is registered


def test_limits_bad_input_is_one_error_line(names: dict[str, str], store: Store) -> None:
    none = one_error_line(invoke("limits", "put", "w", "--max", "3"), 2)
    assert none == "say what limit 'w' covers: one of --label LABEL, --flow FLOW or --target TARGET"
    two = one_error_line(
        invoke("limits", "put", "w", "--label", "a", "--flow", "b", "--max", "3"), 2
    )
    assert "give one of --label, --flow or --target, not --label and --flow" in two
    negative = one_error_line(invoke("limits", "put", "w", "--label", "a", "--max", "-1"), 2)
    assert negative == "--max -1: give a number of runs, 0 or more (0 pauses)"
    too_many = one_error_line(invoke("limits", "put", "w", "--label", "a", "--max", "100001"), 2)
    assert too_many.startswith("invalid limit 'w': --max:")
    not_a_number = one_error_line(invoke("limits", "put", "w", "--label", "a", "--max", "x"), 2)
    assert "'x' is not a valid integer" in not_a_number
    missing = one_error_line(invoke("limits", "put", "w", "--label", "a"), 2)
    assert "--max" in missing
    for bad in ("has space", "_leading", "x" * 64, "ünï", "a/b"):
        error = one_error_line(invoke("limits", "put", bad, "--label", "a", "--max", "1"), 2)
        assert error.endswith(
            "NAME: 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(it is the limit's key in the table)"
        ), error
    empty = one_error_line(invoke("limits", "put", "w", "--label", "", "--max", "1"), 2)
    assert empty == "invalid limit 'w': --label: string should have at least 1 character"
    unknown = one_error_line(invoke("limits", "rm", "nope"), 1)
    assert unknown == "no concurrency limit 'nope' (flowrelay limits ls)"
    assert one_error_line(invoke("limits", "rm", "nope", "--json"), 1) == unknown
    assert store.limits.list() == []


# --- Queued runs: woken by the CLI, listed and shown -----------------------------------------


@pytest.fixture
def requests_queue(names: dict[str, str]) -> Iterator[str]:
    yield from routed_queue(names["bus"], "Flow Run Requested")


@pytest.fixture
def dispatcher(
    names: dict[str, str], store: Store, ecs: Any, cluster: str, network: dict[str, Any]
) -> Dispatcher:
    """The dispatcher as the Dispatch function wires it, with an ECS target for ``LABEL``."""
    publisher = Publisher(boto3.client("events"), names["bus"])
    slots = Slots(store, wake=waking_by(publisher))
    store.targets.put(
        Target(
            name="fargate",
            kind="ecs",
            labels=[LABEL],
            settings={"cluster": cluster, "image": "example/flows:1", **network},
        )
    )
    launcher = EcsLauncher(ecs, table_name=store.table_name, bus_name=names["bus"])
    return Dispatcher(store, {"ecs": launcher}, slots=slots)


def request(dispatcher: Dispatcher, run_id: str) -> DispatchOutcome:
    """Dispatch a request for run ``run_id`` of etl carrying ``LABEL``, as the function would."""
    body = {"flow": "etl", "flow_run_id": run_id, "labels": [LABEL]}
    return dispatcher.handle_request(parse_event(envelope(body)))


def waiting_for(shown: str) -> str:
    """The ``waiting for:`` line of ``runs show``, without its label."""
    line = next(text for text in shown.splitlines() if text.strip().startswith("waiting for:"))
    return line.split(":", 1)[1].strip()


def test_raising_max_wakes_the_oldest_queued_run_and_show_names_the_limit(
    names: dict[str, str], store: Store, dispatcher: Dispatcher, requests_queue: str
) -> None:
    ok("limits", "put", "warehouse", "--label", LABEL, "--max", "0")
    assert request(dispatcher, "q-1").state is RunState.QUEUED
    assert request(dispatcher, "q-2").state is RunState.QUEUED

    # runs ls --state Queued, any case.
    for state in ("Queued", "queued"):
        listed = as_json("runs", "ls", "--state", state)
        assert [run["run_id"] for run in listed] == ["q-1", "q-2"]
    table = ok("runs", "ls", "--state", "Queued")
    assert table.count("waiting for a slot: label 'warehouse'") == 2

    shown = ok("runs", "show", "q-2")
    assert "waiting for a slot: label 'warehouse' is paused (max 0)" in shown
    assert waiting_for(shown) == "limit 'warehouse' (label 'warehouse' paused (max 0); 2nd in line)"
    [warehouse] = as_json("limits", "ls")
    waiting = warehouse["waiting"]
    assert [waiter["run_id"] for waiter in waiting] == ["q-1", "q-2"]
    assert "q-1 (" in ok("limits", "ls")  # with when it was requested

    # Raising --max hands the freed slot to the oldest waiting run and wakes it on the bus.
    raised = ok("limits", "put", "warehouse", "--label", LABEL, "--max", "1")
    assert raised.strip() == (
        "limit warehouse: label 'warehouse': at most 1 run at once (1 holding, 1 waiting; woke 1)"
    )
    woken = received(requests_queue)
    assert [(detail.flow_run_id, detail.requested_by) for detail in woken] == [
        ("q-1", "a freed slot")
    ]
    handed = " ".join(ok("runs", "show", "q-1").split())
    assert "state: Queued" in handed
    assert (
        "holds a slot of: limit 'warehouse' (label 'warehouse' 1/1; handed to it: its launch is "
        "on its way)" in handed
    )
    assert request(dispatcher, "q-1").state is RunState.SUBMITTED  # the woken run's request

    assert waiting_for(ok("runs", "show", "q-2")) == (
        "limit 'warehouse' (label 'warehouse' 1/1, held by q-1; 1st in line)"
    )
    waiting_json = as_json("runs", "show", "q-2")
    assert waiting_json["run"]["state"] == "Queued"
    assert waiting_json["limits"] == [
        {
            "name": "warehouse",
            "kind": "label",
            "value": LABEL,
            "holding": False,
            "waiting_position": 1,
            "holders": ["q-1"],
            "max_runs": 1,
        }
    ]
    holder = as_json("runs", "show", "q-1")
    assert holder["limits"][0]["holding"] is True
    assert holder["limits"][0]["waiting_position"] is None
    launched = " ".join(ok("runs", "show", "q-1").split())
    assert "holds a slot of: limit 'warehouse' (label 'warehouse' 1/1) " in launched

    # Removing the limit wakes the run that waited for it.
    removed = as_json("limits", "rm", "warehouse")
    assert removed["woken"] == ["q-2"]
    assert [detail.flow_run_id for detail in received(requests_queue)] == ["q-2"]
    assert request(dispatcher, "q-2").state is RunState.SUBMITTED
    # A run whose limits are gone shows none.
    assert as_json("runs", "show", "q-2")["limits"] == []
    assert "waiting for:" not in ok("runs", "show", "q-2")


def test_runs_show_of_a_run_under_no_limit_has_an_empty_limits_list(
    names: dict[str, str], store: Store
) -> None:
    store.runs.create("plain", "etl")
    assert as_json("runs", "show", "plain")["limits"] == []
