"""The acceptance corpus of issue 14 (``tests/corpus``) through the dev stack, as a user runs a
flow there: registered with ``Module`` storage (the runner imports ``tests.corpus.<name>``),
started with ``flowrelay run NAME --param ... --env ...``, followed to its end with ``flowrelay
runs show --json``.

A run of the stack reports its final state and message; what its tasks gave is checked where
the flow leaves it: the results it checkpoints (``LocalResult`` files, ``S3Result`` objects in
the stack's S3) and the files it writes. Secrets come from the stack's Secrets Manager, not
from the environment, so the AWS path of ``Secret`` is the one exercised here.

Every corpus flow runs at once on one stack (about 40 runner processes), then the runs that
repeat a flow (a target found, other parameters) run as a second wave.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from flowrelay.cli import cli
from flowrelay.control.store import Store
from flowrelay.core.routing import Target
from flowrelay.core.storage import Module
from flowrelay.devstack import DevStack
from flowrelay.sdk.flow import registration_for
from flowrelay.sdk.storage import load_flow
from tests.corpus import NAMES
from tests.support.corpus import (
    HOME_VARIABLE,
    base_env,
    expanded_env,
    file_problems,
    fresh_module,
    runs_in_another_process,
)
from tests.support.devstack import clients_of

ROOT = Path(__file__).resolve().parents[2]
FINAL = {"Success", "Failed", "Cancelled", "TimedOut", "Crashed"}
SECRET_PREFIX = "FLOWRELAY__CONTEXT__SECRETS__"
WAVE_TIMEOUT = 60.0

pytestmark = [
    pytest.mark.slow,
    # moto's CloudFormation skips resource types it does not implement, with a warning.
    pytest.mark.filterwarnings("ignore:Tried to parse", "ignore:No Moto CloudFormation"),
]


@dataclass
class CorpusRun:
    """One corpus module on the stack: what it expects and what its runs ended as."""

    name: str
    tmp: Path
    expected: Mapping[str, Any] = field(default_factory=dict)
    flow_name: str | None = None
    problem: str | None = None
    #: (the expectation, the run id, the run as ``runs show --json`` prints it)
    runs: list[tuple[Mapping[str, Any], str, dict[str, Any] | None]] = field(default_factory=list)
    #: Modification times of its checkpointed results after the first run.
    result_times: dict[str, int] = field(default_factory=dict)
    s3_times: dict[str, str] = field(default_factory=dict)


def invoke(*args: str) -> tuple[int, str]:
    """The ``flowrelay`` command in this process; its exit code and output."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout + result.stderr


def start(run: CorpusRun, expectation: Mapping[str, Any], env: Mapping[str, str]) -> None:
    """``flowrelay run`` for one run of ``run``'s flow; records its id."""
    run_id = f"corpus-{run.name.replace('_', '-')}-{uuid.uuid4().hex[:8]}"
    args = ["run", str(run.flow_name), "--flow-run-id", run_id]
    for name, value in (expectation.get("parameters") or {}).items():
        args += ["--param", f"{name}={json.dumps(value)}"]
    for name, value in env.items():
        args += ["--env", f"{name}={value}"]
    code, output = invoke(*args)
    if code != 0:
        run.runs.append((expectation, run_id, {"run": {"state": "NotStarted", "message": output}}))
        return
    run.runs.append((expectation, run_id, None))


def wait_for_all(store: Store, runs: list[CorpusRun], deadline: float) -> None:
    """Until every started run is final (or the deadline passes), then their ``runs show``."""
    pending = {run_id for run in runs for (_, run_id, shown) in run.runs if shown is None}
    while pending and time.monotonic() < deadline:
        for run_id in list(pending):
            found = store.runs.get(run_id)
            if found is not None and str(found.state) in FINAL:
                pending.discard(run_id)
        time.sleep(0.3)
    for run in runs:
        for index, (expectation, run_id, shown) in enumerate(run.runs):
            if shown is None:
                code, output = invoke("runs", "show", run_id, "--json")
                document = json.loads(output) if code == 0 else {"run": {"state": "?"}}
                run.runs[index] = (expectation, run_id, document)


def result_files(tmp: Path) -> dict[str, int]:
    """Every file under ``tmp/home`` (where results go) and its modification time."""
    home = tmp / "home"
    if not home.exists():
        return {}
    return {str(p.relative_to(tmp)): p.stat().st_mtime_ns for p in home.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def corpus_on_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    patch = pytest.MonkeyPatch()
    for variable in [v for v in os.environ if v.startswith("FLOWRELAY__")]:
        patch.delenv(variable)
    patch.setenv("PYTHONPATH", str(ROOT))  # the runner processes import tests.corpus
    # This process imports the modules to register them: a LocalResult made at import must not
    # make its directory in the user's home.
    patch.setenv(HOME_VARIABLE, str(tmp_path_factory.mktemp("registering-home")))
    lines: list[str] = []
    # Names of its own: moto's state outlives a stack in this process, and another module's
    # stack ("flowrelay-dev") must still be creatable after this one.
    suffix = uuid.uuid4().hex[:8]
    dev = DevStack(
        ROOT / "template.yaml",
        stack_name=f"flowrelay-corpus-{suffix}",
        parameters={"BusName": f"flowrelay-corpus-{suffix}"},
        log=lines.append,
        poll_seconds=0.1,
        schedule_seconds=1,
    )
    dev.start()
    try:
        for name, value in dev.environment().items():
            patch.setenv(name, value)
        client = clients_of(dev)
        store = Store(client("dynamodb"), dev.outputs["TableName"])
        store.targets.put(Target(name="fargate", kind="ecs", settings=dev.ecs_target_settings()))
        bucket = f"corpus-{uuid.uuid4().hex[:12]}"
        client("s3").create_bucket(Bucket=bucket)
        secrets = client("secretsmanager")

        runs: list[CorpusRun] = []
        for name in NAMES:
            run = CorpusRun(name, tmp_path_factory.mktemp(f"stack-{name}"))
            runs.append(run)
            location = f"tests.corpus.{name}:flow"
            try:
                run.expected = fresh_module(name).EXPECTED
                flow = load_flow(Module(location))
                store.flows.register(registration_for(flow, storage=Module(location)))
                run.flow_name = flow.name
            except Exception as exc:
                run.problem = f"cannot register: {type(exc).__name__}: {exc}"

        def env_of(run: CorpusRun) -> dict[str, str]:
            env = {**base_env(run.tmp), "CORPUS_BUCKET": bucket}
            for variable, value in expanded_env(run.expected, run.tmp).items():
                if variable.startswith(SECRET_PREFIX):
                    # Secrets live in the stack, where a deployed flow finds them.
                    secret = variable.removeprefix(SECRET_PREFIX)
                    try:
                        secrets.create_secret(Name=secret, SecretString=value)
                    except secrets.exceptions.ResourceExistsException:
                        secrets.put_secret_value(SecretId=secret, SecretString=value)
                else:
                    env[variable] = value
            return env

        envs = {run.name: env_of(run) for run in runs if run.flow_name}
        started = time.monotonic()
        for run in runs:
            if run.flow_name:
                start(run, run.expected, envs[run.name])
        wait_for_all(store, runs, time.monotonic() + WAVE_TIMEOUT)
        first_wave = time.monotonic() - started

        # The second wave: runs that repeat a flow in a new process.
        s3 = client("s3")
        for run in runs:
            run.result_times = result_files(run.tmp)
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                run.s3_times[item["Key"]] = str(item["LastModified"])
            for variant in run.expected.get("variants", []):
                if run.flow_name and runs_in_another_process(variant):
                    start(run, variant, envs[run.name])
        wait_for_all(store, runs, time.monotonic() + WAVE_TIMEOUT)
        yield {
            "runs": {run.name: run for run in runs},
            "bucket": bucket,
            "s3": s3,
            "waves": (first_wave, time.monotonic() - started - first_wave),
            "lines": lines,
        }
    finally:
        dev.stop()
        patch.undo()


@pytest.mark.parametrize("name", NAMES)
def test_corpus_flow_on_the_dev_stack(name: str, corpus_on_stack: dict[str, Any]) -> None:
    run: CorpusRun = corpus_on_stack["runs"][name]
    if run.problem is not None:
        pytest.fail(f"{name}: {run.problem}")
    found: list[str] = []
    for index, (expectation, run_id, shown) in enumerate(run.runs):
        state = (shown or {}).get("run", {}).get("state")
        message = (shown or {}).get("run", {}).get("message") or ""
        if state != expectation["state"]:
            found.append(
                f"run {index + 1} ({run_id}): {state} ({message!r}), expected "
                f"{expectation['state']}"
            )
        wanted = expectation.get("message")
        if wanted and wanted not in message:
            found.append(f"run {index + 1}: message {message!r} lacks {wanted!r}")
    found += file_problems(run.expected, run.tmp)
    if len(run.runs) > 1:
        # A repeat found its targets: it did not write its results again.
        for relative, written_at in run.result_times.items():
            now = result_files(run.tmp).get(relative)
            if now != written_at:
                found.append(f"{relative} was written again by a later run")
    s3 = corpus_on_stack["s3"]
    listed = s3.list_objects_v2(Bucket=corpus_on_stack["bucket"]).get("Contents", [])
    objects = {item["Key"]: str(item["LastModified"]) for item in listed}
    for key in run.expected.get("s3_keys") or ():
        if key not in objects:
            found.append(f"no object {key} in the stack's bucket ({sorted(objects)})")
        elif len(run.runs) > 1 and run.s3_times.get(key) != objects[key]:
            found.append(f"{key} was written again by a later run")
    assert not found, f"{name}:\n" + "\n".join(found)


def test_the_corpus_runs_within_its_time(corpus_on_stack: dict[str, Any]) -> None:
    """Every corpus flow ran to its end on one stack within the waves' limits (a run that did
    not end shows as "?" above)."""
    first, second = corpus_on_stack["waves"]
    assert first < WAVE_TIMEOUT
    assert second < WAVE_TIMEOUT
