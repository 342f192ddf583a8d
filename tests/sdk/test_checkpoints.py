"""Checkpoint manifests: which task states of a run were checkpointed, stored as JSON next to
the results (a LocalResult's dir, an S3Result's bucket on the moto server) and turned back into
finished states for a restart, with a one-line problem for each entry that cannot be."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowrelay import Flow, Parameter, task
from flowrelay.sdk.checkpoints import (
    CheckpointError,
    manifest_entries,
    manifest_location,
    manifest_result,
    read_manifest,
    restored_states,
    write_manifest,
)
from flowrelay.sdk.results import LocalResult, PrefectResult, Result, S3Result
from flowrelay.sdk.states import NO_VALUE_WRITTEN, Failed, Mapped, State, Success, TriggerFailed


@task
def extract(n: int) -> list[int]:
    return list(range(n))


@task
def transform(x: int) -> int:
    return x * 10


@task
def load(rows: list[int]) -> None:
    return None


def make_flow(result: Result | None = None) -> tuple[Flow, dict[str, Any]]:
    """A flow ``n -> extract -> transform (mapped) -> load`` plus one unrelated task."""
    with Flow("etl", result=result) as flow:
        n = Parameter("n", default=3)
        rows = extract(n)
        shifted = transform.map(rows)
        done = load(shifted)
        other = transform(1)
    return flow, {"n": n, "extract": rows, "transform": shifted, "load": done, "other": other}


def slugs(flow: Flow) -> dict[str, Any]:
    return {flow.slug(t): t for t in flow.tasks}


# --- which states are entries ------------------------------------------------------------------


def test_manifest_entries_keep_successful_checkpointed_states_and_mapped_children() -> None:
    flow, tasks = make_flow()
    mapped = Failed(
        "1 of 3 children failed",
        map_states=[
            Success(result=0, location="/r/t0"),
            Failed("boom"),
            Success(result=None, location=NO_VALUE_WRITTEN),
        ],
    )
    flow_state = Failed(
        "transform failed",
        result={
            tasks["n"]: Success(result=3, location="/r/n"),  # a parameter: never an entry
            tasks["extract"]: Success(result=[0, 1, 2], location="/r/extract"),
            tasks["transform"]: mapped,
            tasks["load"]: TriggerFailed("upstream failed"),
            tasks["other"]: Success(result=10),  # not checkpointed: location None
        },
    )
    entries = manifest_entries(flow, flow_state)
    transform_slug = flow.slug(tasks["transform"])
    assert entries == {
        flow.slug(tasks["extract"]): "/r/extract",
        f"{transform_slug}[0]": "/r/t0",
        f"{transform_slug}[2]": "",
    }


def test_a_successful_mapped_parent_with_a_location_is_an_entry_too() -> None:
    flow, tasks = make_flow()
    state = Mapped(map_states=[Success(result=0, location="a")], location="parent")
    entries = manifest_entries(flow, Success(result={tasks["transform"]: state}))
    slug = flow.slug(tasks["transform"])
    assert entries == {slug: "parent", f"{slug}[0]": "a"}


def test_a_flow_state_without_task_states_has_no_entries() -> None:
    flow, _ = make_flow()
    assert manifest_entries(flow, Failed("could not start", result=ValueError("x"))) == {}


# --- where the manifest goes -------------------------------------------------------------------


def test_manifest_result_is_the_flows_result_else_a_checkpointed_tasks(tmp_path: Path) -> None:
    flow_result = LocalResult(dir=str(tmp_path / "flow"))
    flow, _ = make_flow(flow_result)
    assert manifest_result(flow) is flow_result

    task_result = LocalResult(dir=str(tmp_path / "task"))

    @task(result=task_result, checkpoint=True)
    def kept() -> int:
        return 1

    @task(result=LocalResult(dir=str(tmp_path / "never")), checkpoint=False)
    def never() -> int:
        return 2

    with Flow("tasks-only", result=PrefectResult()) as only_tasks:
        never()
        kept()
    # A PrefectResult keeps values in their locations: it has nowhere to put a manifest.
    assert manifest_result(only_tasks) is task_result

    with Flow("none") as nothing:
        transform(1)
    assert manifest_result(nothing) is None


# --- writing and reading -----------------------------------------------------------------------


def test_local_manifest_round_trip(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path))
    entries = {"extract": "/r/extract", "transform[0]": "", "transform[1]": "/r/t1"}
    uri = write_manifest(result, "run-123", "etl", entries)

    path = tmp_path / "flowrelay-checkpoints" / "run-123.json"
    assert uri == path.as_uri()
    assert uri.startswith("file:///")
    assert json.loads(path.read_text()) == {"run_id": "run-123", "flow": "etl", "entries": entries}
    assert read_manifest(uri) == entries


def test_s3_manifest_round_trip(aws_env: str) -> None:
    bucket = f"checkpoints-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3")
    client.create_bucket(Bucket=bucket)
    entries = {"extract": "2024/5/1/abc.flowrelay_result", "load": ""}

    uri = write_manifest(S3Result(bucket=bucket), "run-9", "etl", entries)

    assert uri == f"s3://{bucket}/flowrelay-checkpoints/run-9.json"
    body = client.get_object(Bucket=bucket, Key="flowrelay-checkpoints/run-9.json")["Body"].read()
    assert json.loads(body)["entries"] == entries
    assert read_manifest(uri) == entries
    assert read_manifest(uri, client=client) == entries


def test_manifest_location_keeps_run_ids_inside_the_folder() -> None:
    assert manifest_location("../../etc/passwd") == "flowrelay-checkpoints/-..-etc-passwd.json"
    assert manifest_location("3f2a-77") == "flowrelay-checkpoints/3f2a-77.json"


def test_a_result_that_cannot_hold_a_manifest_is_refused() -> None:
    with pytest.raises(CheckpointError, match="a PrefectResult cannot hold a checkpoint manifest"):
        write_manifest(PrefectResult(), "run", "etl", {})


def test_reading_a_missing_or_bad_manifest_names_the_uri(tmp_path: Path, aws_env: str) -> None:
    missing = (tmp_path / "nope.json").as_uri()
    with pytest.raises(
        CheckpointError, match=f"cannot read checkpoint manifest {missing}: No such"
    ):
        read_manifest(missing)

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CheckpointError, match=f"checkpoint manifest {bad.as_uri()} is not JSON"):
        read_manifest(bad.as_uri())

    bad.write_text(json.dumps({"run_id": "r", "entries": {"a": 1}}))
    with pytest.raises(CheckpointError, match="has no 'entries' object of task slug -> location"):
        read_manifest(bad.as_uri())

    bucket = f"checkpoints-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/flowrelay-checkpoints/absent.json"
    with pytest.raises(CheckpointError, match=f"cannot read checkpoint manifest {uri}: NoSuchKey"):
        read_manifest(uri)

    with pytest.raises(CheckpointError, match="is not a file:///path or s3://bucket/key URI"):
        read_manifest("http://example.com/x.json")


# --- restoring ---------------------------------------------------------------------------------


def test_restored_states_read_values_back_and_report_what_cannot_be(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path))
    flow, tasks = make_flow(result)
    extract_slug = flow.slug(tasks["extract"])
    transform_slug = flow.slug(tasks["transform"])
    extract_location = str(result.write([0, 1, 2]).location)
    child_location = str(result.write(10).location)

    entries = {
        extract_slug: extract_location,
        f"{transform_slug}[1]": child_location,
        f"{transform_slug}[2]": NO_VALUE_WRITTEN,
        "vanished-task": "/r/x",
        flow.slug(tasks["load"]): str(tmp_path / "deleted.pkl"),
    }
    states, problems = restored_states(flow, entries)

    assert set(states) == {extract_slug, f"{transform_slug}[1]", f"{transform_slug}[2]"}
    assert all(type(state) is Success for state in states.values())
    assert states[extract_slug].result == [0, 1, 2]
    assert states[extract_slug].location == extract_location
    assert states[f"{transform_slug}[1]"].result == 10
    assert states[f"{transform_slug}[2]"].result is None
    assert states[f"{transform_slug}[2]"].location == NO_VALUE_WRITTEN

    assert len(problems) == 2, problems
    unknown = next(p for p in problems if p.startswith("vanished-task:"))
    assert "flow 'etl' has no task with this slug" in unknown
    deleted = next(p for p in problems if p.startswith(flow.slug(tasks["load"])))
    assert f"cannot read {tmp_path / 'deleted.pkl'}" in deleted
    assert all("\n" not in p for p in problems)


def test_restored_states_prefer_the_tasks_own_result(tmp_path: Path, aws_env: str) -> None:
    bucket = f"results-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    on_s3 = S3Result(bucket=bucket)

    @task(result=on_s3, checkpoint=True)
    def fetch() -> dict[str, int]:
        return {"a": 1}

    with Flow("mixed", result=LocalResult(dir=str(tmp_path))) as flow:
        fetched = fetch()
    key = str(on_s3.write({"a": 1}).location)

    states, problems = restored_states(flow, {flow.slug(fetched): key, "fetch[0]": "gone"})
    assert states[flow.slug(fetched)].result == {"a": 1}
    assert problems == [
        f"fetch[0]: S3Result: cannot read s3://{bucket}/gone: NoSuchKey: "
        "The specified key does not exist.; it runs again"
    ]


def test_restored_states_without_any_result_configured() -> None:
    flow, tasks = make_flow()
    slug = flow.slug(tasks["extract"])
    states, problems = restored_states(flow, {slug: "/somewhere", flow.slug(tasks["load"]): ""})
    assert list(states) == [flow.slug(tasks["load"])], "a None value needs no result to restore"
    assert problems == [
        f"{slug}: neither the task nor the flow has a result= to read /somewhere with; "
        "it runs again"
    ]


def test_full_circle_through_a_manifest(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path))
    flow, tasks = make_flow(result)
    written = result.write([5, 6])
    flow_state: State = Failed(
        "load failed",
        result={
            tasks["extract"]: Success(result=[5, 6], location=written.location),
            tasks["load"]: Failed("boom"),
        },
    )
    uri = write_manifest(
        manifest_result(flow) or result, "r1", flow.name, manifest_entries(flow, flow_state)
    )
    states, problems = restored_states(flow, read_manifest(uri))
    assert problems == []
    assert {key: state.result for key, state in states.items()} == {
        flow.slug(tasks["extract"]): [5, 6]
    }
    assert slugs(flow)[flow.slug(tasks["extract"])] is tasks["extract"]
