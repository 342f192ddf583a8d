"""The acceptance corpus of issue 14 (``tests/corpus``): flows written in the seeds' engine's
documented style run here with the outcomes its documentation states, under ``flow.run()`` in
this process and under ``flowrelay run-local`` in another, as a user would run them.

Each run gets a scratch directory of its own (its results home, the files it writes) and boto3
pointed at the test moto server, so nothing reaches the user's home or AWS.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.corpus import NAMES
from tests.support.corpus import (
    base_env,
    clean_environment,
    expanded_env,
    file_problems,
    fresh_module,
    outcome_of_json,
    outcome_of_state,
    parameters_args,
    path_of,
    problems,
    runs_in_another_process,
)

FLOWRELAY = str(Path(sys.executable).parent / "flowrelay")
# Four runs at once: the corpus's CLI runs are short, and most of each is Python starting up.
PARALLEL_CLI_RUNS = 4


def make_bucket(endpoint: str | None = None) -> str:
    """A new bucket in the test moto server, for the ``S3Result`` flow (``CORPUS_BUCKET``)."""
    name = f"corpus-{uuid.uuid4().hex[:12]}"
    client: Any = boto3.client("s3", endpoint_url=endpoint) if endpoint else boto3.client("s3")
    client.create_bucket(Bucket=name)
    return name


def s3_problems(expected: Mapping[str, Any], bucket: str, endpoint: str | None = None) -> list[str]:
    """Objects ``EXPECTED["s3_keys"]`` names that are not in ``bucket``."""
    client: Any = boto3.client("s3", endpoint_url=endpoint) if endpoint else boto3.client("s3")
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    keys = {item["Key"] for item in listed}
    return [
        f"no object {key} in the bucket (objects: {sorted(keys)})"
        for key in expected.get("s3_keys") or ()
        if key not in keys
    ]


# --- flow.run() ------------------------------------------------------------------------------


def run_here(flow: Any, run: Mapping[str, Any]) -> Any:
    """``flow.run`` as the documentation runs it: with the run's parameters, inside ``with
    flowrelay.context(...)`` when the run sets context."""
    parameters = dict(run.get("parameters") or {})
    if "context" in run:
        import flowrelay

        with flowrelay.context(**run["context"]):
            return flow.run(parameters=parameters)
    return flow.run(parameters=parameters)


@pytest.mark.parametrize("name", NAMES)
def test_under_flow_run(
    name: str,
    tmp_path: Path,
    aws_env: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    for variable in [v for v in os.environ if v.startswith("FLOWRELAY__")]:
        monkeypatch.delenv(variable)
    for variable, value in base_env(tmp_path).items():
        monkeypatch.setenv(variable, value)
    bucket = make_bucket()
    monkeypatch.setenv("CORPUS_BUCKET", bucket)
    module = fresh_module(name)
    expected = module.EXPECTED
    for variable, value in expanded_env(expected, tmp_path).items():
        monkeypatch.setenv(variable, value)
    caplog.set_level(logging.INFO)

    found: list[str] = []
    for index, run in enumerate([expected, *expected.get("variants", [])]):
        state = run_here(module.flow, run)
        captured = capsys.readouterr()
        logged = "\n".join(record.getMessage() for record in caplog.records)
        caplog.clear()
        outcome = outcome_of_state(module.flow, state, captured.out + captured.err, logged)
        found += [f"run {index + 1}: {problem}" for problem in problems(module.flow, run, outcome)]
    found += file_problems(expected, tmp_path)
    found += s3_problems(expected, bucket)
    assert not found, f"{name}:\n" + "\n".join(found)


# --- flowrelay run-local ---------------------------------------------------------------------


@dataclass
class CliRun:
    """One corpus module run with ``flowrelay run-local --json``: its first run and the
    variants that mean the same in a new process."""

    name: str
    tmp: Path
    bucket: str
    expected: Mapping[str, Any]
    flow: Any
    #: Why this process could not import the module to read what it expects (the CLI still
    #: runs it, to show what a user would see).
    import_error: str | None = None
    runs: list[tuple[Mapping[str, Any], subprocess.CompletedProcess[str]]] = field(
        default_factory=list
    )


@pytest.fixture(scope="module")
def cli_runs(
    moto_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, CliRun]]:
    """Every corpus module run under ``flowrelay run-local``, a few at a time."""
    aws = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp_path_factory.getbasetemp() / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path_factory.getbasetemp() / "no-aws-config"),
    }
    patch = pytest.MonkeyPatch()
    # This process imports each module to read what it expects: that import must not make a
    # results directory in the user's home either.
    patch.setenv("FLOWRELAY__HOME_DIR", str(tmp_path_factory.mktemp("importing-home")))
    for variable, value in aws.items():
        patch.setenv(variable, value)
    try:
        prepared: dict[str, CliRun] = {}
        for name in NAMES:
            tmp = tmp_path_factory.mktemp(name)
            bucket = make_bucket(moto_server)
            try:
                module = fresh_module(name)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                prepared[name] = CliRun(name, tmp, bucket, {"state": "Success"}, None, error)
            else:
                prepared[name] = CliRun(name, tmp, bucket, module.EXPECTED, module.flow)

        def run_one(prepared_run: CliRun) -> None:
            env = clean_environment(
                {
                    **aws,
                    **base_env(prepared_run.tmp),
                    "CORPUS_BUCKET": prepared_run.bucket,
                    **expanded_env(prepared_run.expected, prepared_run.tmp),
                }
            )
            expected = prepared_run.expected
            runs = [expected] + [
                variant
                for variant in expected.get("variants", [])
                if runs_in_another_process(variant)
            ]
            for run in runs:
                completed = subprocess.run(
                    [
                        FLOWRELAY,
                        "run-local",
                        f"{path_of(prepared_run.name)}:flow",
                        "--json",
                        *parameters_args(run.get("parameters")),
                    ],
                    check=False,
                    cwd=prepared_run.tmp,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                prepared_run.runs.append((run, completed))

        with ThreadPoolExecutor(PARALLEL_CLI_RUNS) as pool:
            list(pool.map(run_one, prepared.values()))
        yield prepared
    finally:
        patch.undo()


@pytest.mark.slow  # a process per run (about 45, four at a time: some 35 s on two cores)
@pytest.mark.parametrize("name", NAMES)
def test_under_run_local(name: str, cli_runs: dict[str, CliRun], aws_env: str) -> None:
    ran = cli_runs[name]
    found: list[str] = []
    if ran.import_error is not None:
        found.append(f"cannot import the module: {ran.import_error}")
    for index, (run, completed) in enumerate(ran.runs):
        label = f"run {index + 1}"
        output = completed.stderr
        try:
            document = json.loads(completed.stdout)
        except json.JSONDecodeError:
            found.append(
                f"{label}: exit {completed.returncode}, no JSON on stdout:\n"
                f"{completed.stdout[-1500:]}\n{completed.stderr[-1500:]}"
            )
            continue
        wanted_code = 0 if run["state"] == "Success" else 1
        if completed.returncode != wanted_code:
            found.append(f"{label}: exit code {completed.returncode}, expected {wanted_code}")
        outcome = outcome_of_json(document, output)
        found += [f"{label}: {problem}" for problem in problems(ran.flow, run, outcome)]
    found += file_problems(ran.expected, ran.tmp)
    found += s3_problems(ran.expected, ran.bucket)
    assert not found, f"{name}:\n" + "\n".join(found)
