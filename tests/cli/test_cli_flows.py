"""``flowrelay flows ls|show`` (and ``schedules ls``, which shares their schedule rows) against
moto over HTTP: a table made from template.yaml, a bus, EventBridge Scheduler, and the stack
named as the user names it (exported table and bus names, or a CloudFormation stack's
outputs)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from flowrelay.control.schedule_sync import ScheduleTarget, flow_prefix
from flowrelay.control.store import Store
from flowrelay.core.lifecycle import RunState
from flowrelay.core.registration import FlowRegistration
from flowrelay.core.storage import Module
from flowrelay.operations import NotFoundError, RefusedError
from flowrelay.operations.flows import RecentRuns, flow_detail, flow_summaries
from tests.support.cli import invoke, one_error_line

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "flowrelay" / "sdk" / "examples"


@pytest.fixture
def store(names: dict[str, str]) -> Store:
    return Store(boto3.client("dynamodb"), names["table"])


def register(store: Store, name: str, module: str = "x:flow", labels: list[str] | None = None):
    return store.flows.register(
        FlowRegistration(name=name, storage=Module(module), labels=labels or [])
    )[0]


def runs_of(store: Store, flow: str, *states: RunState) -> list[str]:
    """Runs of ``flow`` in ``states``, made oldest first; their ids."""
    ids = []
    for number, state in enumerate(states):
        run_id = f"{flow}-{number}-{uuid.uuid4().hex[:6]}"
        store.runs.create(run_id, flow, flow_version=1, state=state, message=f"run {number}")
        ids.append(run_id)
    return ids


@pytest.fixture
def two_flows(store: Store) -> list[str]:
    """``etl`` in two versions with five runs (three succeeded, one failed, one running), and
    ``quiet``, never run. The ids of etl's runs, oldest first."""
    register(store, "etl", "x:flow", labels=["prod"])
    register(store, "etl", "y:flow", labels=["prod"])
    register(store, "quiet")
    s, f, r = RunState.SUCCESS, RunState.FAILED, RunState.RUNNING
    return runs_of(store, "etl", s, f, s, s, r)


# --- flows ls ------------------------------------------------------------------------------


def test_flows_ls_lists_each_flow_with_its_versions_last_run_and_success(
    two_flows: list[str],
) -> None:
    listed = invoke("flows", "ls", "--json")
    assert listed.exit_code == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert found["schedules_known"] is False  # the stack is named by its table and bus only
    etl, quiet = found["flows"]
    assert (etl["name"], etl["latest_version"], etl["versions"]) == ("etl", 2, 2)
    assert etl["schedules"] is None
    assert etl["recent"] == {
        "runs": 5,
        "by_state": {"Failed": 1, "Running": 1, "Success": 3},
        "finished": 4,
        "succeeded": 3,
        "success_rate": 0.75,
        "last_run_at": etl["recent"]["last_run_at"],
        "last_state": "Running",
    }
    assert etl["recent"]["last_run_at"] is not None
    assert (quiet["name"], quiet["versions"], quiet["recent"]["runs"]) == ("quiet", 1, 0)
    assert quiet["recent"]["success_rate"] is None

    table = invoke("flows", "ls")
    assert table.exit_code == 0, table.stderr
    header, etl_line, quiet_line = table.stdout.splitlines()
    assert header.split() == [
        "flow",
        "latest",
        "versions",
        "schedules",
        "last",
        "run",
        "success",
        "(last",
        "20)",
    ]
    assert etl_line.startswith("etl ")
    assert " v2 " in etl_line
    assert " Running " in etl_line
    assert etl_line.endswith("75% (3 of 4 finished)")
    assert quiet_line.split()[1:] == ["v1", "1", "?", "never", "-"]
    assert "schedules not shown: set FLOWRELAY_STACK" in table.stderr

    # --runs: how many of each flow's latest runs count.
    latest_two = json.loads(invoke("flows", "ls", "--runs", "2", "--json").stdout)["flows"][0]
    assert latest_two["recent"]["by_state"] == {"Running": 1, "Success": 1}
    assert latest_two["recent"]["success_rate"] == 1.0


def test_flows_ls_without_flows_says_so(names: dict[str, str]) -> None:
    empty = invoke("flows", "ls")
    assert (empty.exit_code, empty.stdout) == (0, "")
    assert "no flows registered" in empty.stderr
    assert json.loads(invoke("flows", "ls", "--json").stdout)["flows"] == []


# --- flows show ----------------------------------------------------------------------------


def test_flows_show_gives_versions_and_latest_runs_with_their_states(
    two_flows: list[str],
) -> None:
    shown = invoke("flows", "show", "etl", "--json")
    assert shown.exit_code == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert detail["name"] == "etl"
    assert detail["latest"]["version"] == 2
    assert detail["latest"]["storage"]["path"] == "y:flow"
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    assert detail["versions"][0]["labels"] == ["prod"]
    assert detail["versions"][0]["registered_at"] is not None
    assert detail["schedules"] is None  # not known without the stack's schedule group
    assert [run["run_id"] for run in detail["runs"]] == two_flows[::-1]  # newest first
    assert [run["state"] for run in detail["runs"]] == [
        "Running",
        "Success",
        "Success",
        "Failed",
        "Success",
    ]
    assert detail["recent"]["success_rate"] == 0.75

    table = invoke("flows", "show", "etl", "--runs", "3")
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("flow etl: version 2, registered ")
    assert lines[0].endswith("labels: prod")
    assert lines[1] == "versions"
    assert [line.split()[0] for line in lines[3:5]] == ["v2", "v1"]
    runs_title = lines.index("latest runs (1 Running, 2 Success)")
    assert [line.split()[0] for line in lines[runs_title + 2 : runs_title + 5]] == two_flows[:1:-1]
    assert lines[runs_title + 2].split()[1:3] == ["v1", "Running"]
    assert lines[-1] == "success: 100% (2 of 2 finished)"
    assert "schedules not shown" in table.stderr


def test_flows_show_of_a_flow_never_run(two_flows: list[str]) -> None:
    shown = invoke("flows", "show", "quiet")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[-1] == "no runs yet"
    detail = json.loads(invoke("flows", "show", "quiet", "--json").stdout)
    assert (detail["runs"], detail["recent"]["runs"]) == ([], 0)


def test_an_unknown_or_empty_flow_name_is_one_line(two_flows: list[str]) -> None:
    unknown = one_error_line(invoke("flows", "show", "nope"), 1)
    assert unknown == (
        "flow 'nope' is not registered (flowrelay flows ls lists the registered flows)"
    )
    assert one_error_line(invoke("flows", "show", "nope", "--json"), 1) == unknown
    assert one_error_line(invoke("flows", "show", ""), 2) == "a flow's name cannot be empty"
    assert one_error_line(invoke("flows", "show", "   "), 2) == "a flow's name cannot be empty"
    control = one_error_line(invoke("flows", "show", "a\x07b"), 2)
    assert "contains a control character" in control
    # A flow whose name only starts like a registered one's is not that one.
    assert one_error_line(invoke("flows", "show", "et"), 1).startswith("flow 'et' is not")


def test_the_operations_say_what_is_wrong_as_their_errors(two_flows: list[str], store: Store):
    with pytest.raises(NotFoundError, match="flow 'nope' is not registered") as missing:
        flow_detail(store, "nope")
    assert missing.value.code == 1
    with pytest.raises(RefusedError, match="cannot be empty") as empty:
        flow_detail(store, "")
    assert empty.value.code == 2
    summaries = flow_summaries(store, recent=1)
    assert [flow.recent.runs for flow in summaries.flows] == [1, 0]
    assert RecentRuns.of([]).model_dump() == {
        "runs": 0,
        "by_state": {},
        "finished": 0,
        "succeeded": 0,
        "success_rate": None,
        "last_run_at": None,
        "last_state": None,
    }


# --- with the stack's schedules --------------------------------------------------------------


@pytest.fixture
def scheduled_stack(
    run_table: str, bus: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, ScheduleTarget]]:
    """A CloudFormation stack whose outputs name the table, the bus and a schedule group (as
    template.yaml's do), and that group; the stack's name and its schedule target."""
    for name in ("FLOWRELAY_STACK", "FLOWRELAY_TABLE_NAME", "FLOWRELAY_BUS_NAME"):
        monkeypatch.delenv(name, raising=False)
    scheduler, cloudformation = boto3.client("scheduler"), boto3.client("cloudformation")
    group = f"flows-{uuid.uuid4().hex[:8]}"
    scheduler.create_schedule_group(Name=group)
    target = ScheduleTarget(
        group=group,
        bus_arn=f"arn:aws:events:us-east-1:123456789012:event-bus/{bus}",
        role_arn="arn:aws:iam::123456789012:role/scheduler",
    )
    stack = f"flowrelay-flows-{uuid.uuid4().hex[:8]}"
    outputs = {
        "TableName": run_table,
        "BusName": bus,
        "ScheduleGroupName": group,
        "BusArn": target.bus_arn,
        "SchedulerRoleArn": target.role_arn,
    }
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    monkeypatch.setenv("FLOWRELAY_STACK", stack)
    yield stack, target
    for schedule in scheduler.list_schedules(GroupName=group)["Schedules"]:
        scheduler.delete_schedule(GroupName=group, Name=schedule["Name"])
    scheduler.delete_schedule_group(Name=group)
    cloudformation.delete_stack(StackName=stack)


def test_a_scheduled_flow_shows_its_schedules_and_next_fires(
    scheduled_stack: tuple[str, ScheduleTarget], run_table: str
) -> None:
    registered = invoke("register", f"{EXAMPLES / 'scheduled.py'}:flow")
    assert registered.exit_code == 0, registered.stderr
    assert "schedule fr-scheduled-" in registered.stdout
    store = Store(boto3.client("dynamodb"), run_table)
    runs_of(store, "scheduled", RunState.SUCCESS)

    detail = json.loads(invoke("flows", "show", "scheduled", "--json").stdout)
    schedules = {row["clock"]: row for row in detail["schedules"]}
    assert sorted(schedules) == ["clock-1", "clock-2"]
    assert schedules["clock-1"]["expression"] == "cron(0 * * * ? *)"
    assert schedules["clock-1"]["timezone"] == "Europe/Berlin"
    assert schedules["clock-2"]["labels"] == ["gpu"]
    assert len(schedules["clock-1"]["next"]) == 3
    assert schedules["clock-1"]["next"][0].endswith(":00:00+00:00")
    assert detail["versions"][0]["clocks"] == ["cron(0 * * * ? *)", "cron(30 * * * ? *)"]

    assert invoke("schedules", "pause", "scheduled", "clock-2").exit_code == 0
    listed = json.loads(invoke("flows", "ls", "--json").stdout)
    assert listed["schedules_known"] is True
    (flow,) = listed["flows"]
    assert (flow["schedules"], flow["paused"]) == (2, 1)
    assert flow["next_fire"].endswith(":00:00Z")  # the enabled clock's, on the hour
    assert flow["recent"]["success_rate"] == 1.0
    table = invoke("flows", "ls")
    assert table.stdout.splitlines()[1].split()[3:5] == ["2,", "1"]
    assert "schedules not shown" not in table.stderr

    shown = invoke("flows", "show", "scheduled")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    at = lines.index("schedules")
    clock_1, clock_2 = lines[at + 2], lines[at + 3]
    assert clock_1.split()[:5] == ["clock-1", "v1", "cron(0", "*", "*"]
    assert " ENABLED " in clock_1
    assert clock_2.split()[-2:] == ["DISABLED", "paused"]


def test_schedules_ls_rows_are_as_they_were(
    scheduled_stack: tuple[str, ScheduleTarget],
) -> None:
    """``schedules ls`` reads its rows from the operations: the same JSON, the same table."""
    assert invoke("register", f"{EXAMPLES / 'scheduled.py'}:flow").exit_code == 0
    listed = invoke("schedules", "ls", "--json")
    assert listed.exit_code == 0, listed.stderr
    rows = sorted(json.loads(listed.stdout), key=lambda row: row["name"])
    prefix = flow_prefix("scheduled")
    assert rows[0] == {
        "name": f"{prefix}clock-1",
        "flow": "scheduled",
        "version": 1,
        "clock": "clock-1",
        "expression": "cron(0 * * * ? *)",
        "timezone": "Europe/Berlin",
        "state": "ENABLED",
        "parameters": {"region": "eu"},
        "labels": None,
        "next": rows[0]["next"],
    }
    assert len(rows[0]["next"]) == 3
    assert rows[1]["labels"] == ["gpu"]
    table = invoke("schedules", "ls", "--flow", "scheduled")
    assert table.stdout.splitlines()[0].split()[:5] == [
        "flow",
        "clock",
        "expression",
        "time",
        "zone",
    ]
    lines = {line.split()[2]: line.split() for line in table.stdout.splitlines()[1:]}
    assert lines["clock-1"][:11] == [
        "scheduled",
        "v1",
        "clock-1",
        "cron(0",
        "*",
        "*",
        "*",
        "?",
        "*)",
        "Europe/Berlin",
        "ENABLED",
    ]


def test_a_schedule_whose_fires_cannot_be_computed_is_a_warning(
    scheduled_stack: tuple[str, ScheduleTarget],
) -> None:
    _, target = scheduled_stack
    assert invoke("register", f"{EXAMPLES / 'scheduled.py'}:flow").exit_code == 0
    scheduler = boto3.client("scheduler")
    name = f"{flow_prefix('scheduled')}clock-1"
    current = scheduler.get_schedule(GroupName=target.group, Name=name)
    # A time zone fire_times does not know (AWS would refuse it; a hand-made schedule may not).
    scheduler.update_schedule(
        GroupName=target.group,
        Name=name,
        ScheduleExpression=current["ScheduleExpression"],
        ScheduleExpressionTimezone="Mars/Olympus_Mons",
        FlexibleTimeWindow=current["FlexibleTimeWindow"],
        Target=current["Target"],
        State="ENABLED",
    )
    listed = invoke("schedules", "ls")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stderr.startswith(f"{name}: ")
    assert "Mars/Olympus_Mons" in listed.stderr
    detail = json.loads(invoke("flows", "show", "scheduled", "--json").stdout)
    assert len(detail["warnings"]) == 1
    assert detail["warnings"][0].startswith(f"{name}: ")
    assert {row["clock"]: row["next"] for row in detail["schedules"]}["clock-1"] == []
    shown = invoke("flows", "show", "scheduled")
    assert shown.exit_code == 0
    assert f"{name}: " in shown.stderr


def test_a_schedules_state_on_a_terminal_is_shown_as_it_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A table's ``state`` column colours run states; a schedule's ENABLED is no run state."""
    from rich.console import Console

    from flowrelay.cli import render

    terminal = Console(file=io.StringIO(), force_terminal=True, width=100)
    monkeypatch.setattr(render, "stdout", terminal)
    render.print_table(("clock", "state"), [("clock-1", "ENABLED"), ("clock-2", "DISABLED")])
    render.print_table(("run id", "state"), [("r-1", "Success")])
    shown = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "ENABLED" in shown
    assert "DISABLED" in shown
    assert "\x1b[32mSuccess" in shown  # green
