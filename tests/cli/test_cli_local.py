"""The flowrelay command: run-local, demo and schema, with their exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flowrelay.cli import cli
from flowrelay.cli.options import parse_params

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "flowrelay" / "sdk" / "examples"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_run_local_success_prints_each_task_state() -> None:
    code, out, _ = invoke("run-local", str(EXAMPLES / "etl.py"), "--param", "rows=4", "-q")
    assert code == 0
    for task_name in ("rows", "extract", "transform", "load"):
        assert task_name in out
    assert "Mapped" in out
    assert "Success: All reference tasks succeeded." in out


def test_run_local_failure_exits_1_and_names_the_failing_task() -> None:
    code, out, _ = invoke("run-local", str(EXAMPLES / "failing.py"), "-q")
    assert code == 1
    assert "Task 'divide' failed: ZeroDivisionError: division by zero" in out
    assert "TriggerFailed" in out


def test_run_local_shows_the_failing_tasks_traceback() -> None:
    code, _, err = invoke("run-local", str(EXAMPLES / "failing.py"), "-q")
    assert code == 1
    # Where the error was raised, on stderr beside the table: the line of the user's code.
    assert "divide failed:" in err
    assert "Traceback (most recent call last)" in err
    assert "return x / by" in err
    assert "ZeroDivisionError: division by zero" in err

    code, out, _ = invoke("run-local", str(EXAMPLES / "failing.py"), "--json")
    rows = {row["task"]: row for row in json.loads(out)["tasks"]}
    assert "return x / by" in rows["divide"]["traceback"]
    # Downstream tasks did not raise: nothing to show for them.
    assert rows["report"]["traceback"] is None
    assert rows["numerator"]["traceback"] is None


def test_run_local_json_is_machine_readable() -> None:
    code, out, _ = invoke(
        "run-local", f"{EXAMPLES / 'etl.py'}:flow", "-p", "rows=3", "-p", "factor=2", "--json"
    )
    assert code == 0
    run = json.loads(out)
    assert run["flow"] == "etl"
    assert run["state"] == "Success"
    by_task = {row["task"]: row for row in run["tasks"]}
    assert by_task["load"]["result"] == {"rows": 3, "total": 12}
    assert by_task["transform"]["children"] == 3


@pytest.mark.parametrize("executor", ["local", "threads", "processes"])
def test_run_local_executor_choice(executor: str) -> None:
    code, out, _ = invoke(
        "run-local", str(EXAMPLES / "etl.py"), "-p", "rows=5", "-e", executor, "--json"
    )
    assert code == 0
    assert json.loads(out)["tasks"][-1]["result"] == {"rows": 5, "total": 45}


@pytest.mark.slow
def test_run_local_on_a_temporary_dask_cluster() -> None:
    code, out, _ = invoke("run-local", str(EXAMPLES / "hello.py"), "-e", "dask", "--json")
    assert code == 0
    assert json.loads(out)["tasks"][-1]["result"] == "HELLO, FLOWRELAY!"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["missing.py"], "missing.py: no such file"),
        ([f"{EXAMPLES / 'etl.py'}:nope"], "has no attribute 'nope'"),
        ([str(EXAMPLES / "etl.py"), "-p", "bogus=1"], "has no parameter 'bogus'"),
    ],
)
def test_run_local_load_and_parameter_errors_exit_2_with_the_reason(
    args: list[str], reason: str
) -> None:
    code, _, err = invoke("run-local", *args)
    assert code == 2
    assert reason in err


def test_run_local_required_parameter_missing(tmp_path: Path) -> None:
    script = tmp_path / "needs.py"
    script.write_text(
        textwrap.dedent(
            """
            from flowrelay import Flow, Parameter, task

            @task
            def echo(x):
                return x

            with Flow("needs") as flow:
                echo(Parameter("x"))
            """
        )
    )
    code, _, err = invoke("run-local", str(script))
    assert code == 2
    assert "required parameter 'x'" in err
    code, out, _ = invoke("run-local", str(script), "-p", 'x={"a": [1, 2]}', "--json")
    assert code == 0
    assert json.loads(out)["tasks"][-1]["result"] == {"a": [1, 2]}


def test_param_values_are_json_when_they_parse_else_text() -> None:
    assert parse_params(("n=3", "name=ada", "flag=true", "empty=", "eq=a=b")) == {
        "n": 3,
        "name": "ada",
        "flag": True,
        "empty": "",
        "eq": "a=b",
    }


def test_a_param_without_equals_is_a_usage_error() -> None:
    code, _, err = invoke("run-local", str(EXAMPLES / "hello.py"), "-p", "rows")
    assert code == 2
    assert "NAME=VALUE" in err


def test_run_local_shows_task_states_live_on_stderr() -> None:
    code, _, err = invoke("run-local", str(EXAMPLES / "failing.py"))
    assert code == 1
    assert "Task 'divide': Failed: ZeroDivisionError: division by zero" in err


def test_schema_prints_json_schema_for_every_run_config() -> None:
    code, out, _ = invoke("schema", "run-config")
    assert code == 0
    mapping = json.loads(out)["discriminator"]["mapping"]
    assert set(mapping) == {"UniversalRun", "LocalRun", "DockerRun", "KubernetesRun", "ECSRun"}
    code, out, _ = invoke("schema", "storage")
    assert code == 0
    assert set(json.loads(out)["discriminator"]["mapping"]) == {"Module", "Local", "S3"}


@pytest.mark.slow
def test_demo_runs_every_example_as_designed() -> None:
    code, out, _ = invoke("demo", "--local", "--json")
    assert code == 0
    outcome = json.loads(out)
    assert outcome["ok"] is True
    states = [(run["flow"], run["state"]) for run in outcome["runs"]]
    assert ("failing", "Failed") in states
    assert sum(state == "Success" for _, state in states) >= 5


@pytest.mark.slow
def test_installed_command_and_sigterm_closes_the_temporary_cluster(tmp_path: Path) -> None:
    """The console script in the venv, and SIGTERM (how ECS stops a task) mid-run: the run is
    interrupted with exit code 143 and the temporary Dask cluster is closed on the way out."""
    marker = tmp_path / "events.txt"
    script = tmp_path / "slow.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import time
            from distributed import LocalCluster
            from flowrelay import Flow, task
            from flowrelay.sdk.executors import DaskExecutor

            MARKER = {str(marker)!r}

            class RecordingCluster(LocalCluster):
                def close(self, *args, **kwargs):
                    with open(MARKER, "a") as f:
                        f.write("closed\\n")
                    return super().close(*args, **kwargs)

            @task
            def slow():
                with open(MARKER, "a") as f:
                    f.write("started\\n")
                time.sleep(60)

            with Flow("slow", executor=DaskExecutor(
                cluster_class=RecordingCluster,
                cluster_kwargs={{"processes": False, "n_workers": 1}},
            )) as flow:
                slow()
            """
        )
    )
    command = Path(sys.executable).parent / "flowrelay"
    process = subprocess.Popen(
        [str(command), "run-local", str(script), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 60
    while "started" not in (marker.read_text() if marker.exists() else ""):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 143, err
    assert "interrupted" in err
    assert "closed" in marker.read_text()
