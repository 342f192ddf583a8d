"""The commands that talk to a stack (register, run, runs, targets, invoke) against moto over
HTTP: a table made from template.yaml, a bus, and names given as the user gives them (the
environment, or a CloudFormation stack's outputs).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import boto3
import pytest
from click.testing import CliRunner, Result

from flowrelay.cli import cli
from flowrelay.cli import runs as cli_runs
from flowrelay.cli.stack import NO_STACK
from flowrelay.control.store import Store
from flowrelay.core.events import FlowRunRequested, parse_event
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.runs import run_id_for
from flowrelay.core.storage import Module
from flowrelay.launchers.kinds import event_readers
from flowrelay.sdk.flow import registration_for
from tests.support.cli import invoke, one_error_line, received, routed_queue

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"

FLOW_SCRIPT = """
from flowrelay import Flow, Parameter, task


@task
def double(n):
    return n * {factor}


with Flow("cli-etl") as flow:
    double(Parameter("n", default=1))
"""


@pytest.fixture
def store(names: dict[str, str]) -> Store:
    return Store(boto3.client("dynamodb"), names["table"])


# --- names ---------------------------------------------------------------------------------


def test_without_names_or_stack_the_error_says_how_to_get_them(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FLOWRELAY_STACK", "FLOWRELAY_TABLE_NAME", "FLOWRELAY_BUS_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert one_error_line(invoke("runs", "ls"), 2) == NO_STACK
    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", "t")
    assert one_error_line(invoke("targets", "ls"), 2).startswith("FLOWRELAY_BUS_NAME is not set")


@pytest.fixture
def cfn_stack(run_table: str, bus: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A tiny CloudFormation stack whose outputs name the table and the bus."""
    for name in ("FLOWRELAY_STACK", "FLOWRELAY_TABLE_NAME", "FLOWRELAY_BUS_NAME"):
        monkeypatch.delenv(name, raising=False)
    cloudformation = boto3.client("cloudformation")
    name = f"flowrelay-cli-{uuid.uuid4().hex[:8]}"
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TableName": {"Value": run_table}, "BusName": {"Value": bus}},
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))
    yield name
    cloudformation.delete_stack(StackName=name)


def test_names_come_from_a_stacks_outputs(
    cfn_stack: str, run_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(boto3.client("dynamodb"), run_table).runs.create("from-stack", "etl")
    listed = invoke("--stack", cfn_stack, "runs", "ls", "--json")
    assert [run["run_id"] for run in json.loads(listed.stdout)] == ["from-stack"]

    monkeypatch.setenv("FLOWRELAY_STACK", cfn_stack)
    shown = invoke("runs", "show", "from-stack", "--json")
    assert json.loads(shown.stdout)["run"]["flow_name"] == "etl"

    # A name typed now wins over names exported earlier.
    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", "some-other-table")
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", "some-other-bus")
    assert invoke("--stack", cfn_stack, "runs", "show", "from-stack").exit_code == 0

    missing = one_error_line(invoke("--stack", "no-such-stack", "runs", "ls"), 2)
    assert missing.startswith("cannot read stack 'no-such-stack'")


# --- register ------------------------------------------------------------------------------


def test_register_makes_a_version_only_when_the_flow_changed(
    names: dict[str, str], store: Store, tmp_path: Path
) -> None:
    script = tmp_path / "etl.py"
    script.write_text(FLOW_SCRIPT.format(factor=2))
    first = invoke("register", str(script))
    assert first.stdout.strip() == "registered cli-etl version 1"
    assert invoke("register", str(script)).stdout.strip() == "cli-etl is unchanged: version 1"
    script.write_text(FLOW_SCRIPT.format(factor=3))
    as_json = json.loads(invoke("register", str(script), "--json").stdout)
    assert as_json["version"] == 2
    assert as_json["storage"] == {"type": "Local", "path": str(script.resolve())}
    assert [p["name"] for p in as_json["parameters"]] == ["n"]
    assert store.flows.get("cli-etl") is not None


def test_register_to_s3_uploads_the_script(names: dict[str, str], tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="cli-flows")
    script = tmp_path / "etl.py"
    script.write_text(FLOW_SCRIPT.format(factor=2))
    result = invoke(
        "register", f"{script}:flow", "--storage", "s3", "--bucket", "cli-flows", "--json"
    )
    storage = json.loads(result.stdout)["storage"]
    assert storage["type"] == "S3"
    assert storage["attr"] == "flow"
    body = boto3.client("s3").get_object(Bucket="cli-flows", Key=storage["key"])["Body"].read()
    assert body.decode() == script.read_text()


def test_register_errors_are_one_line(names: dict[str, str], tmp_path: Path) -> None:
    assert one_error_line(invoke("register", str(tmp_path / "nope.py")), 2).endswith("no such file")
    script = tmp_path / "etl.py"
    script.write_text(FLOW_SCRIPT.format(factor=2))
    assert "--bucket" in one_error_line(invoke("register", str(script), "--storage", "s3"), 2)


# --- run -----------------------------------------------------------------------------------


@pytest.fixture
def requests_queue(names: dict[str, str]) -> Iterator[str]:
    """A queue that receives the bus's run requests, as DispatchQueue does."""
    yield from routed_queue(names["bus"], FlowRunRequested.DETAIL_TYPE)


def register_etl(store: Store, versions: int = 1) -> None:
    """The flow "etl" (parameters: rows, required; name), registered ``versions`` times."""
    from flowrelay import Flow, Parameter, task
    from flowrelay.core.registration import FlowRegistration

    @task
    def load(rows: int, name: str) -> int:
        return rows

    with Flow("etl") as flow:
        load(Parameter("rows", required=True), Parameter("name", default="x"))
    registration = registration_for(flow, storage=Module("etl_module:flow"))
    for version in range(versions):
        store.flows.register(
            FlowRegistration.model_validate(
                {**registration.model_dump(), "labels": [f"v{version + 1}"]}
            )
        )


def test_run_publishes_a_request_and_prints_the_run_id(
    names: dict[str, str], store: Store, requests_queue: str
) -> None:
    register_etl(store, versions=2)
    result = invoke(
        "run", "etl", "--param", "rows=3", "-p", "name=ada", "--label", "gpu", "--version", "2"
    )
    run_id = result.stdout.strip()
    uuid.UUID(run_id)
    keyed = invoke("run", "etl", "-p", "rows=1", "--idempotency-key", "nightly-1")
    assert keyed.stdout.strip() == run_id_for("nightly-1")
    first, second = received(requests_queue)
    assert (first.flow, first.parameters, first.labels, first.version) == (
        "etl",
        {"rows": 3, "name": "ada"},
        ["gpu"],
        2,
    )
    assert first.flow_run_id == run_id
    assert first.requested_by.startswith("flowrelay-cli")
    assert second.idempotency_key == "nightly-1"

    as_json = json.loads(
        invoke("run", "etl", "-p", "rows=1", "--flow-run-id", "mine-1", "--json").stdout
    )
    assert as_json["flow_run_id"] == "mine-1"
    assert as_json["sent"] is True


def test_run_rejects_what_the_request_model_rejects(names: dict[str, str], store: Store) -> None:
    register_etl(store)
    error = one_error_line(invoke("run", "etl", "-p", "rows=1", "--flow-run-id", "not ok!"), 2)
    assert error.startswith("flow-run-id:")
    assert "NAME=VALUE" in one_error_line(invoke("run", "etl", "--param", "oops"), 2)


def test_run_checks_the_registration_first(
    names: dict[str, str], store: Store, requests_queue: str
) -> None:
    """What dispatch would fail the run for is refused before anything is sent (exit 2)."""
    assert one_error_line(invoke("run", "nope"), 2) == (
        "flow 'nope' is not registered (flowrelay register FILE registers it)"
    )
    register_etl(store, versions=2)
    assert one_error_line(invoke("run", "etl", "-p", "rows=1", "--version", "5"), 2) == (
        "flow 'etl' version 5 is not registered (its latest version is 2)"
    )
    assert one_error_line(invoke("run", "etl", "-p", "rows=1", "-p", "colour=red"), 2) == (
        "Flow 'etl' has no parameter 'colour'; its parameters are: name, rows"
    )
    assert one_error_line(invoke("run", "etl"), 2) == (
        "Flow 'etl' needs a value for required parameter 'rows'"
    )
    assert received(requests_queue, wait_seconds=1) == []
    # Scripts that know better (or run before registering) can skip the check.
    sent = invoke("run", "nope", "--no-check", "--flow-run-id", "unchecked")
    assert sent.exit_code == 0, sent.stderr
    (request,) = received(requests_queue)
    assert (request.flow, request.flow_run_id) == ("nope", "unchecked")


def test_a_reused_key_prints_the_same_run_or_is_refused_naming_what_differs(
    names: dict[str, str], store: Store, requests_queue: str
) -> None:
    register_etl(store)
    first = invoke("run", "etl", "-p", "rows=3", "--idempotency-key", "daily")
    run_id = first.stdout.strip()
    store.runs.create(run_id, "etl", parameters={"rows": 3}, idempotency_key="daily")

    again = invoke("run", "etl", "-p", "rows=3", "--idempotency-key", "daily")
    assert again.exit_code == 0
    assert again.stdout.strip() == run_id
    assert "already requested with these values (Pending): nothing new sent" in again.stderr

    refused = one_error_line(invoke("run", "etl", "-p", "rows=4", "--idempotency-key", "daily"), 2)
    assert refused == (
        f"run {run_id} (Pending) was requested with this --idempotency-key 'daily' and other "
        "values: parameters: rows is 4 here, 3 on the run; use a new key to run with these"
    )
    assert len(received(requests_queue)) == 1  # only the first was sent


def test_run_takes_parameters_from_a_file_and_sets_run_config_env_and_timeout(
    names: dict[str, str], store: Store, requests_queue: str, tmp_path: Path
) -> None:
    register_etl(store)
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"rows": 5, "name": "from-file"}))
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"type": "ECSRun", "cpu": 1024, "env": {"A": "1"}}))
    result = invoke(
        "run", "etl", "--params-file", str(params), "-p", "name=cli",
        "--run-config", f"@{config}", "--env", "B=x=y", "--run-timeout", "90",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (request,) = received(requests_queue)
    assert request.parameters == {"rows": 5, "name": "cli"}  # --param wins over the file
    assert request.run_config is not None
    assert request.run_config.model_dump(exclude_none=True) == {
        "type": "ECSRun", "cpu": "1024", "env": {"A": "1", "B": "x=y"}, "labels": [],
    }  # fmt: skip
    assert request.timeout_seconds == 90

    # --env alone goes on top of the registered run config (here the flow's default).
    invoke("run", "etl", "-p", "rows=1", "--env", "DEBUG=1")
    (request,) = received(requests_queue)
    assert request.run_config is not None
    assert request.run_config.env == {"DEBUG": "1"}

    # Stdin, and a file that is not what it should be: one line each.
    piped = CliRunner().invoke(cli, ["run", "etl", "--params-file", "-"], input='{"rows": 2}')
    assert piped.exit_code == 0, piped.stderr
    assert received(requests_queue)[0].parameters == {"rows": 2}
    bad = tmp_path / "bad.json"
    for content, expected in [
        ("[1, 2]", "holds a JSON list, not an object of parameter values"),
        ("{rows: 1}", "is not JSON: Expecting property name enclosed in double quotes"),
        ('{"rows": NaN}', "NaN is not a JSON number"),
    ]:
        bad.write_text(content)
        assert expected in one_error_line(invoke("run", "etl", "--params-file", str(bad)), 2)
    assert "is not UTF-8 text" in one_error_line(
        invoke("run", "etl", "--params-file", str(_write_bytes(bad, b"\xff"))), 2
    )
    assert "cannot read" in one_error_line(
        invoke("run", "etl", "--params-file", str(tmp_path / "none.json")), 2
    )
    assert "--run-config" in one_error_line(
        invoke("run", "etl", "-p", "rows=1", "--run-config", '{"type": "NoSuchRun"}'), 2
    )
    assert "--env adds to the registered run config" in one_error_line(
        invoke("run", "etl", "--no-check", "--env", "A=1"), 2
    )


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def advance(
    store: Store, run_id: str, *states: RunState, delay: float = 0.1, note: str | None = None
) -> threading.Thread:
    """Play a run's life in the background, as the stack would while the CLI watches."""

    def play() -> None:
        time.sleep(delay)
        store.runs.create(run_id, "etl", message="requested")
        if note:
            time.sleep(delay)
            store.runs.note_waiting(run_id, note)
        for state in states:
            time.sleep(delay)
            source = Source.DISPATCHER if state is RunState.SUBMITTED else Source.RUNNER
            store.runs.transition(run_id, state, source, message=f"now {state}", target="fargate")

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def test_watch_follows_the_run_and_exits_by_how_it_ended(
    names: dict[str, str], store: Store
) -> None:
    good = advance(
        store,
        "watched-ok",
        RunState.SUBMITTED,
        RunState.RUNNING,
        RunState.SUCCESS,
        note="waiting for a launch target: there are no targets",
    )
    result = invoke(
        "run", "etl", "--flow-run-id", "watched-ok", "--watch", "--timeout", "10", "--no-check"
    )
    good.join()
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "watched-ok"
    states = [line.split()[1] for line in lines[1:]]
    assert states == ["Pending", "Pending", "Submitted", "Running", "Success"]
    assert lines[2].split(maxsplit=3)[2:] == [
        "note",
        "waiting for a launch target: there are no targets",
    ]
    assert "dispatcher" in lines[3]
    assert lines[-1].endswith("now Success")

    bad = advance(store, "watched-bad", RunState.RUNNING, RunState.FAILED)
    result = invoke("run", "etl", "--flow-run-id", "watched-bad", "--watch", "--json", "--no-check")
    bad.join()
    assert result.exit_code == 1
    watched = json.loads(result.stdout)  # the timeline went to stderr
    assert watched["run"]["state"] == "Failed"
    assert [entry["state"] for entry in watched["history"]] == ["Pending", "Running", "Failed"]
    assert "Failed" in result.stderr


def test_watch_gives_up_on_a_run_that_never_appears(names: dict[str, str]) -> None:
    result = invoke(
        "run", "etl", "--flow-run-id", "never", "--watch", "--timeout", "0.2", "--no-check"
    )
    assert "flow run never did not appear within 0.2 s" in one_error_line(result, 1)


def test_ctrl_c_stops_watching_and_leaves_the_run_alone(
    names: dict[str, str], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.runs.create("interrupted", "etl")

    def interrupt() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_runs, "pause", interrupt)
    result = invoke("run", "etl", "--flow-run-id", "interrupted", "--watch", "--no-check")
    assert result.exit_code == 130
    assert "stopped watching" in result.stderr
    assert store.runs.get("interrupted").state is RunState.PENDING  # type: ignore[union-attr]


# --- runs ----------------------------------------------------------------------------------


@pytest.fixture
def some_runs(store: Store) -> Store:
    store.runs.create("etl-pending", "etl")
    store.runs.create("etl-running", "etl")
    store.runs.transition("etl-running", RunState.RUNNING, Source.RUNNER, target="fargate")
    store.runs.create("etl-failed", "etl")
    store.runs.transition("etl-failed", RunState.FAILED, Source.RUNNER, message="boom " * 30)
    store.runs.create("ml-running", "ml")
    store.runs.transition("ml-running", RunState.RUNNING, Source.RUNNER)
    return store


def listed(*args: str) -> list[str]:
    result = invoke("runs", "ls", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return sorted(run["run_id"] for run in json.loads(result.stdout))


def test_runs_ls_says_which_runs_a_schedule_requested(store: Store) -> None:
    from flowrelay.control.schedule_sync import schedule_name

    name = schedule_name("etl", "clock-2")
    store.runs.create(
        "etl-scheduled", "etl", idempotency_key=f"schedule:{name}:2026-11-30T09:00:00Z"
    )
    store.runs.create("etl-by-hand", "etl", idempotency_key="nightly-2026-11-30")
    table = invoke("runs", "ls", "--flow", "etl")
    assert table.exit_code == 0, table.stderr
    lines = {line.split()[0]: line for line in table.stdout.splitlines() if "etl-" in line}
    assert "schedule clock-2" in lines["etl-scheduled"]
    assert "schedule" not in lines["etl-by-hand"]


def test_runs_ls_by_flow_state_both_or_neither(some_runs: Store) -> None:
    everything = ["etl-failed", "etl-pending", "etl-running", "ml-running"]
    assert listed() == everything  # finished runs too, of every flow
    assert listed("--active") == ["etl-pending", "etl-running", "ml-running"]
    assert listed("--flow", "etl") == ["etl-failed", "etl-pending", "etl-running"]
    assert listed("--state", "running") == ["etl-running", "ml-running"]
    assert listed("--state", "failed") == ["etl-failed"]
    assert listed("--state", "Success") == []
    assert listed("--flow", "etl", "--state", "Failed") == ["etl-failed"]
    assert listed("--flow", "etl", "--limit", "1") == ["etl-failed"]  # newest first
    assert listed("--limit", "2") == ["etl-failed", "ml-running"]  # newest first, every flow
    error = one_error_line(invoke("runs", "ls", "--active", "--state", "Success"), 2)
    assert "Success is final" in error

    table = invoke("runs", "ls", "--flow", "etl")
    assert table.exit_code == 0
    for column in ("run id", "flow", "state", "target", "created", "message"):
        assert column in table.stdout
    assert "etl-failed" in table.stdout
    assert "fargate" in table.stdout
    assert "boom " * 30 not in table.stdout  # truncated


def test_runs_show_history_target_and_infrastructure(store: Store) -> None:
    store.runs.create("shown", "etl", parameters={"rows": 3})
    store.runs.transition(
        "shown",
        RunState.SUBMITTED,
        Source.DISPATCHER,
        message="launched on 'fargate'",
        target="fargate",
        infrastructure={"task_arn": "arn:aws:ecs:us-east-1:123456789012:task/c/abc"},
    )
    result = invoke("runs", "show", "shown")
    assert result.exit_code == 0
    for text in ("Submitted", "fargate", "task/c/abc", "launched on 'fargate'", "dispatcher"):
        assert text in result.stdout
    as_json = json.loads(invoke("runs", "show", "shown", "--json").stdout)
    assert as_json["run"]["infrastructure"]["task_arn"].endswith("task/c/abc")
    assert [entry["state"] for entry in as_json["history"]] == ["Pending", "Submitted"]
    assert one_error_line(invoke("runs", "show", "x"), 1) == "no flow run 'x'"


def test_runs_show_prints_the_failing_tasks_traceback(store: Store) -> None:
    store.runs.create("broken", "etl")
    for state in (RunState.SUBMITTED, RunState.RUNNING):
        store.runs.transition("broken", state, Source.RUNNER)
    trace = "Traceback (most recent call last):\n  File \"flow.py\", line 9\nKeyError: 'rows'"
    store.runs.transition(
        "broken",
        RunState.FAILED,
        Source.RUNNER,
        message="Task 'extract' failed: KeyError: 'rows'",
        details={"failed_tasks": ["extract"], "traceback": trace},
    )
    shown = invoke("runs", "show", "broken")
    assert shown.exit_code == 0
    assert "traceback of task 'extract':" in shown.stdout
    assert trace in shown.stdout
    as_json = json.loads(invoke("runs", "show", "broken", "--json").stdout)
    assert as_json["history"][-1]["details"]["traceback"] == trace


# --- targets -------------------------------------------------------------------------------


def test_targets_put_ls_rm(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    put = invoke(
        "targets",
        "put",
        "fargate",
        "--kind",
        "ecs",
        "--labels",
        "prod, gpu",
        "--setting",
        "cluster=flows",
        "-s",
        'subnets=["subnet-1", "subnet-2"]',
        "-s",
        "assign_public_ip=true",
    )
    assert put.stdout.strip() == "saved target fargate (ecs; labels: gpu, prod)"
    saved = store.targets.get("fargate")
    assert saved is not None
    assert saved.settings["subnets"] == ["subnet-1", "subnet-2"]
    assert saved.settings["assign_public_ip"] is True
    monkeypatch.setenv("FLOWRELAY_LAUNCHER_KINDS", "ecs,local")  # as the dev stack says
    invoke("targets", "put", "laptop", "--kind", "local")
    targets = json.loads(invoke("targets", "ls", "--json").stdout)
    assert [target["name"] for target in targets] == ["fargate", "laptop"]
    assert "fargate" in invoke("targets", "ls").stdout
    assert invoke("targets", "rm", "laptop").stdout.strip() == "removed target laptop"
    assert one_error_line(invoke("targets", "rm", "laptop"), 1) == "no target 'laptop'"


def test_targets_put_names_the_bad_field(
    names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    error = one_error_line(invoke("targets", "put", "fargate", "--kind", "ecs"), 2)
    assert error == (
        "invalid target 'fargate': settings.cluster: Field required (give --setting "
        "cluster=NAME, or name the stack: --stack or FLOWRELAY_STACK)"
    )
    monkeypatch.setenv("FLOWRELAY_LAUNCHER_KINDS", "ecs,local")
    error = one_error_line(invoke("targets", "put", "bad name", "--kind", "local"), 2)
    assert error.startswith("invalid target 'bad name': name: String should match pattern")
    error = one_error_line(
        invoke("targets", "put", "laptop", "--kind", "local", "-s", "colour=red"), 2
    )
    assert error == "invalid target 'laptop': settings.colour: Extra inputs are not permitted"


def test_targets_put_takes_only_kinds_the_stack_launches(
    names: dict[str, str], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Else every run sent there would wait, or fail with "no launcher"."""
    monkeypatch.delenv("FLOWRELAY_LAUNCHER_KINDS", raising=False)
    refused = one_error_line(invoke("targets", "put", "k8s", "--kind", "kubernetes"), 2)
    assert refused == "this stack launches ecs targets, not kubernetes targets"
    local = one_error_line(invoke("targets", "put", "laptop", "--kind", "local"), 2)
    assert local.startswith("local targets run flows as processes beside the functions")
    assert store.targets.list() == []
    monkeypatch.setenv("FLOWRELAY_LAUNCHER_KINDS", "ecs,local")
    assert invoke("targets", "put", "laptop", "--kind", "local").exit_code == 0
    still_refused = one_error_line(invoke("targets", "put", "k8s", "--kind", "kubernetes"), 2)
    assert still_refused.endswith(
        "this stack launches ecs and local targets, not kubernetes targets"
    )
    monkeypatch.setenv("FLOWRELAY_LAUNCHER_KINDS", "ecs,kubernetes")
    unreachable = one_error_line(invoke("targets", "put", "k8s", "--kind", "kubernetes"), 2)
    assert unreachable.startswith("invalid target 'k8s': give one way to reach the API server")
    saved = invoke(
        "targets", "put", "k8s", "--kind", "kubernetes", "-s", "eks_cluster=flows", "--json"
    )
    assert saved.exit_code == 0, saved.output
    assert json.loads(saved.stdout)["settings"]["namespace"] == "default"


@pytest.fixture
def flowrelay_stack(
    run_table: str, bus: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """A stack with a flowrelay stack's outputs (cluster, log group, kinds), named as the dev
    stack names itself (FLOWRELAY_STACK), in an account with a default VPC (moto's)."""
    monkeypatch.delenv("FLOWRELAY_TABLE_NAME", raising=False)
    monkeypatch.delenv("FLOWRELAY_BUS_NAME", raising=False)
    outputs = {
        "TableName": run_table,
        "BusName": bus,
        "ClusterName": "flows-cluster",
        "LogGroupName": "/flowrelay/flow-runs",
        "LauncherKinds": "ecs",
    }
    cloudformation = boto3.client("cloudformation")
    name = f"flowrelay-cli-{uuid.uuid4().hex[:8]}"
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()},
            }
        ),
    )
    monkeypatch.setenv("FLOWRELAY_STACK", name)
    yield outputs
    cloudformation.delete_stack(StackName=name)


def test_an_ecs_target_starts_from_the_stack_and_says_what_it_took(
    flowrelay_stack: dict[str, str], run_table: str
) -> None:
    ec2 = boto3.client("ec2")
    default_subnets = sorted(
        subnet["SubnetId"]
        for subnet in ec2.describe_subnets(
            Filters=[{"Name": "default-for-az", "Values": ["true"]}]
        )["Subnets"]
    )
    put = invoke("targets", "put", "fargate", "--kind", "ecs", "-s", "cpu=1024")
    assert put.exit_code == 0, put.stderr
    assert 'from the stack: cluster="flows-cluster", log_group="/flowrelay/flow-runs"' in (
        put.stderr
    )
    assert "subnets=" in put.stderr
    assert "assign_public_ip=true" in put.stderr
    saved = Store(boto3.client("dynamodb"), run_table).targets.get("fargate")
    assert saved is not None
    assert saved.settings["cluster"] == "flows-cluster"
    assert saved.settings["subnets"] == default_subnets
    assert saved.settings["security_groups"][0].startswith("sg-")
    assert saved.settings["cpu"] == "1024"  # a number where a number is natural

    # A second target like the first: its settings, other labels and a bigger task.
    like = invoke(
        "targets", "put", "big", "--like", "fargate", "--labels", "big", "-s", "memory=8192"
    )
    assert like.exit_code == 0, like.stderr
    big = Store(boto3.client("dynamodb"), run_table).targets.get("big")
    assert big is not None
    assert (big.kind, big.labels) == ("ecs", ["big"])
    assert {**saved.settings, "memory": "8192"} == big.settings
    assert one_error_line(invoke("targets", "put", "x", "--like", "nope"), 1) == (
        "no target 'nope' to start from (flowrelay targets ls)"
    )
    assert "say which kind" in one_error_line(invoke("targets", "put", "x"), 2)
    plain = invoke("targets", "put", "bare", "--kind", "ecs", "--no-defaults", "-s", "cluster=c")
    assert plain.exit_code == 0
    assert "from the stack" not in plain.stderr
    bad_cpu = one_error_line(invoke("targets", "put", "t", "--kind", "ecs", "-s", "cpu=-1"), 2)
    assert "settings.cpu: cpu -1 is not CPU units" in bad_cpu


def test_schema_target_describes_each_kind() -> None:
    schema = json.loads(invoke("schema", "target").stdout)
    by_kind = {branch["properties"]["kind"]["const"]: branch for branch in schema["oneOf"]}
    assert set(by_kind) == {"ecs", "local", "kubernetes"}
    assert "cluster" in by_kind["ecs"]["properties"]["settings"]["required"]
    assert "working_dir" in by_kind["local"]["properties"]["settings"]["properties"]
    assert "eks_cluster" in by_kind["kubernetes"]["properties"]["settings"]["properties"]


# --- invoke and the sample events ----------------------------------------------------------


def sample(name: str) -> Any:
    return json.loads((EVENTS / f"{name}.json").read_text())


def test_every_function_has_a_sample_event() -> None:
    folders = {path.name for path in (ROOT / "functions").iterdir() if path.is_dir()}
    samples = {path.stem for path in EVENTS.glob("*.json")}
    assert folders <= samples


def test_every_sample_event_parses() -> None:
    for name in ("dispatch", "record_state", "cancel"):
        records = sample(name)["Records"]
        assert records
        for record in records:
            parse_event(record["body"], event_readers())
    kinds = [json.loads(r["body"])["detail-type"] for r in sample("record_state")["Records"]]
    assert kinds == ["ECS Task State Change", "Flow Run State Changed"]
    assert sample("monitor")["detail-type"] == "Scheduled Event"


def invoke_function(name: str, function: str | None = None) -> Result:
    """``flowrelay invoke`` with the sample event of ``name`` (the function named ``function``,
    by logical id, or by its folder ``name``)."""
    event = str(EVENTS / f"{name}.json")
    template = str(ROOT / "template.yaml")
    return invoke("invoke", function or name, "--event", event, "--template", template)


def test_invoke_dispatch_sample_waits_for_a_target(store: Store) -> None:
    from flowrelay.sdk.examples.hello import flow

    store.flows.register(
        registration_for(flow, storage=Module("flowrelay.sdk.examples.hello:flow"))
    )
    result = invoke_function("dispatch")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    run = store.runs.get("sample-hello-1")
    assert run is not None
    assert run.state is RunState.PENDING
    assert (run.message or "").startswith("waiting for a launch target")


def test_invoke_cancel_sample_cancels_the_dispatch_samples_run(store: Store) -> None:
    from flowrelay.sdk.examples.hello import flow

    store.flows.register(
        registration_for(flow, storage=Module("flowrelay.sdk.examples.hello:flow"))
    )
    assert invoke_function("dispatch").exit_code == 0
    result = invoke_function("cancel")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    run = store.runs.get("sample-hello-1")
    assert run is not None
    assert run.state is RunState.CANCELLED
    assert run.message == (
        "cancel requested by events/cancel.json: sample cancel from events/cancel.json"
    )


def test_the_samples_work_as_shipped_one_after_the_other(store: Store) -> None:
    """As events/README.md says: register hello, then dispatch, record_state and cancel."""
    from flowrelay.sdk.examples.hello import flow

    store.flows.register(
        registration_for(flow, storage=Module("flowrelay.sdk.examples.hello:flow"))
    )
    assert invoke_function("dispatch").exit_code == 0
    result = invoke_function("record_state", "RecordState")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {"batchItemFailures": []}
    history = [entry.state for entry in store.runs.history("sample-hello-1")]
    # The sample's ECS PENDING event is noted (a starting task leaves the run Submitted).
    assert history == [RunState.PENDING, RunState.RUNNING]
    assert invoke_function("cancel").exit_code == 0
    assert store.runs.get("sample-hello-1").state is RunState.CANCELLING  # type: ignore[union-attr]


def test_invoke_reports_a_batch_that_failed(names: dict[str, str]) -> None:
    result = invoke_function("record_state")  # its run does not exist: every record fails
    assert result.exit_code == 1
    failed = json.loads(result.stdout)["batchItemFailures"]
    records = sample("record_state")["Records"]
    assert [item["itemIdentifier"] for item in failed] == [r["messageId"] for r in records]
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {len(records)} of {len(records)} records failed (SQS would deliver them again)"
    )
    assert "no flow run 'sample-hello-1'" in result.stderr


def test_invoke_reports_records_that_failed(store: Store, tmp_path: Path) -> None:
    event = sample("record_state")
    body = json.loads(event["Records"][1]["body"])
    body["detail"]["flow_run_id"] = "no-such-run"
    event["Records"][1]["body"] = json.dumps(body)
    (tmp_path / "event.json").write_text(json.dumps(event))
    store.runs.create("sample-hello-1", "hello")
    result = invoke("invoke", "record_state", "--event", str(tmp_path / "event.json"))
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"batchItemFailures": [{"itemIdentifier": ANY}]}
    assert result.stderr.strip().splitlines()[-1] == (
        "error: 1 of 2 records failed (SQS would deliver them again)"
    )


def test_invoke_monitor_sample_returns(names: dict[str, str]) -> None:
    result = invoke_function("monitor")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == {
        "actions": [],
        "checked": 0,
        "waiting": 0,
        "clusters_checked": 0,
    }
    unknown = one_error_line(invoke("invoke", "nope", "--event", str(EVENTS / "monitor.json")), 2)
    assert unknown.startswith("no function 'nope'")


# --- the installed command -----------------------------------------------------------------


def test_installed_command_lists_runs_with_names_from_the_environment(some_runs: Store) -> None:
    command = ROOT / ".venv" / "bin" / "flowrelay"
    if not command.exists():
        pytest.skip("no .venv/bin/flowrelay (pip install -e '.[dev]')")
    done = subprocess.run(
        [str(command), "runs", "ls", "--json"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(run["run_id"] for run in json.loads(done.stdout)) == [
        "etl-failed",
        "etl-pending",
        "etl-running",
        "ml-running",
    ]


# --- what a hostile new user tried ----------------------------------------------------------------


def test_a_run_config_no_launched_kind_fits_is_refused_before_it_waits_forever(
    names: dict[str, str], store: Store, requests_queue: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_etl(store)
    monkeypatch.delenv("FLOWRELAY_LAUNCHER_KINDS", raising=False)
    error = one_error_line(
        invoke("run", "etl", "-p", "rows=1", "--run-config", '{"type": "KubernetesRun"}'), 2
    )
    assert error == (
        "this run could never be launched: a KubernetesRun runs on kubernetes targets, and this "
        "stack launches ecs targets"
    )
    assert received(requests_queue, wait_seconds=1) == []


def test_watching_a_reused_key_with_other_values_is_refused_even_without_the_check(
    names: dict[str, str], store: Store, requests_queue: str
) -> None:
    register_etl(store)
    run_id = invoke("run", "etl", "-p", "rows=1", "--idempotency-key", "k1").stdout.strip()
    store.runs.create(run_id, "etl", parameters={"rows": 1}, idempotency_key="k1")
    watched = invoke(
        "run", "etl", "-p", "rows=2", "--idempotency-key", "k1", "--no-check", "--watch"
    )
    assert "rows is 2 here, 1 on the run" in one_error_line(watched, 2)


def test_runs_ls_refuses_what_it_cannot_answer(names: dict[str, str]) -> None:
    assert "--flow: a flow's name cannot be empty" in one_error_line(
        invoke("runs", "ls", "--flow", ""), 2
    )
    assert "100000000 is not in the range" in one_error_line(
        invoke("runs", "ls", "--days", "100000000"), 2
    )


def test_runs_logs_follow_says_what_a_run_waits_for(names: dict[str, str], store: Store) -> None:
    store.runs.create("waits", "etl", message="waiting for a launch target: there are no targets")

    def later() -> None:
        time.sleep(0.5)
        store.runs.transition("waits", RunState.CANCELLED, Source.USER)

    thread = threading.Thread(target=later, daemon=True)
    thread.start()
    followed = invoke("runs", "logs", "waits", "--follow")
    thread.join()
    assert "run waits is Pending: waiting for a launch target: there are no targets" in (
        followed.stderr
    )
    assert "run waits ended Cancelled without logs to follow" in followed.stderr


def test_an_ecs_target_without_an_image_says_what_its_runs_need(
    names: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    put = invoke("targets", "put", "bare", "--kind", "ecs", "-s", "cluster=c")
    assert put.exit_code == 0
    assert "note: no image: runs sent here need their own" in put.stderr
    with_image = invoke(
        "targets", "put", "full", "--kind", "ecs", "-s", "cluster=c", "-s", "image=i"
    )
    assert "no image" not in with_image.stderr


def test_invoke_takes_the_functions_variables_from_the_stack_named(
    flowrelay_stack: dict[str, str], run_table: str, bus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the table and bus exported (as `dev up` prints them) and the stack named too, the
    rest of a function's variables come from the stack's outputs."""
    monkeypatch.setenv("FLOWRELAY_TABLE_NAME", run_table)
    monkeypatch.setenv("FLOWRELAY_BUS_NAME", bus)
    result = invoke_function("monitor")
    assert result.exit_code == 0, result.stderr
    assert "LAUNCHER_KINDS" not in result.stderr  # from the LauncherKinds output
    assert "FLOWRELAY_LOG_GROUP_NAME" not in result.stderr  # from LogGroupName
