"""Restart from failure end to end, as a user would: `flowrelay dev up` in one process, the CLI
in others. A flow whose middle task fails until a file exists runs and fails; the file is made;
`flowrelay runs retry` starts a new run that reuses what the first one checkpointed (a
LocalResult in a temporary folder): the first task does not run again, the failed one and what
follows it do, and each run's history names the other.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest

from flowrelay.core.runs import restart_key, run_id_for
from tests.cli.test_cli_on_dev_stack import (  # noqa: F401 - dev_stack: the module's stack
    dev_stack,
    flowrelay,
)
from tests.support.restart import counts, restartable_script

pytestmark = pytest.mark.slow

FLOW = restartable_script("restart-e2e")


def shown(env: dict[str, str], run_id: str) -> dict[str, Any]:
    result = flowrelay(env, "runs", "show", run_id, "--json")
    assert result.returncode == 0, result.stderr
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def test_retry_reuses_the_checkpointed_results_and_runs_the_failed_task_and_what_follows(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env: dict[str, str] = request.getfixturevalue("dev_stack")
    script = tmp_path / "restartable.py"
    script.write_text(textwrap.dedent(FLOW))
    registered = flowrelay(env, "register", f"{script}:flow")
    assert registered.returncode == 0, registered.stderr

    first = flowrelay(env, "run", "restart-e2e", "--watch", "--flow-run-id", "e2e-restart")
    assert first.returncode == 1, first.stdout + first.stderr
    original = shown(env, "e2e-restart")
    assert original["run"]["state"] == "Failed"
    assert original["run"]["message"] == "Task 'transform' failed: ValueError: not fixed yet"
    checkpoints = original["history"][-1]["details"]["checkpoints"]
    assert checkpoints["tasks"] == 1
    assert counts(tmp_path) == {"extract": 1, "transform": 1, "load": 0}

    (tmp_path / "fixed").write_text("")
    retried = flowrelay(env, "runs", "retry", "e2e-restart", "--watch", timeout=120)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    restart_id = run_id_for(restart_key("e2e-restart"))
    assert retried.stdout.splitlines()[0] == restart_id

    # The first task's result was reused; the failed task and what follows it ran again.
    assert counts(tmp_path) == {"extract": 1, "transform": 2, "load": 1}
    assert (tmp_path / "loaded.txt").read_text() == "6"

    restart = shown(env, restart_id)
    assert restart["run"]["state"] == "Success"
    assert restart["run"]["restart_of"] == "e2e-restart"
    assert restart["run"]["flow_version"] == original["run"]["flow_version"]
    assert restart["history"][0]["message"] == "restart of run e2e-restart"
    (running,) = [entry for entry in restart["history"] if entry["state"] == "Running"]
    assert running["message"].endswith("reusing 1 checkpointed task result of run e2e-restart"), (
        running["message"]
    )
    assert running["details"]["checkpoints"] == checkpoints["uri"]

    linked = shown(env, "e2e-restart")
    assert linked["restarted_as"] == restart_id
    assert linked["run"]["state"] == "Failed"  # the original keeps how it ended
    assert any(
        entry["note"] and entry["message"] == f"restarted as run {restart_id}"
        for entry in linked["history"]
    )

    again = flowrelay(env, "runs", "retry", "e2e-restart")
    assert again.returncode == 2
    assert f"run e2e-restart was already restarted as {restart_id}; retry {restart_id}" in (
        again.stderr
    )
    succeeded = flowrelay(env, "runs", "retry", restart_id)
    assert succeeded.returncode == 2
    assert "succeeded: there is nothing to restart" in succeeded.stderr
