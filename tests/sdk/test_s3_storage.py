"""S3 storage against a moto server over real HTTP on loopback: upload, load, errors."""

from __future__ import annotations

import hashlib
import shutil
import socket
import textwrap
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from flowrelay.core.storage import S3, parse_storage
from flowrelay.sdk.storage import FlowLoadError, load_flow, upload_script

SCRIPT = """
from flowrelay import Flow, Parameter, task


@task
def add(x, y):
    return x + y


@task
def double(x):
    return 2 * x


with Flow("my flow") as flow:
    double(add(Parameter("x", default=1), 20))
"""

TWO_FLOWS = """
from flowrelay import Flow

alpha = Flow("alpha")
beta = Flow("beta")
"""


@pytest.fixture
def s3_client(aws_env: str) -> Any:
    return boto3.client("s3")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"flowrelay-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


def write_script(folder: Path, source: str, name: str = "flow.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def keys_in(s3_client: Any, bucket: str) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_the_moto_server_listens_on_loopback_with_an_ephemeral_port(aws_env: str) -> None:
    assert aws_env.startswith("http://127.0.0.1:")
    port = int(aws_env.rsplit(":", 1)[1])
    assert port > 0
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_upload_stores_the_script_under_a_content_addressed_key(
    tmp_path: Path, s3_client: Any, bucket: str
) -> None:
    script = write_script(tmp_path, SCRIPT)
    body = script.read_bytes()
    stored = upload_script(S3(bucket), script, "my flow")
    assert stored.bucket == bucket
    assert stored.key is not None
    assert hashlib.sha256(body).hexdigest()[:16] in stored.key
    assert stored.key.endswith(".py")
    assert " " not in stored.key
    assert keys_in(s3_client, bucket) == [stored.key]
    assert s3_client.get_object(Bucket=bucket, Key=stored.key)["Body"].read() == body

    # The same script again, even from another path: the same key, no new object.
    copy = tmp_path / "elsewhere" / "copy.py"
    copy.parent.mkdir()
    shutil.copy(script, copy)
    assert upload_script(S3(bucket), script, "my flow").key == stored.key
    assert upload_script(S3(bucket), copy, "my flow").key == stored.key
    assert keys_in(s3_client, bucket) == [stored.key]

    # A changed script gets a new key; the old version stays where registrations point.
    script.write_text(textwrap.dedent(SCRIPT) + "\n# changed\n")
    changed = upload_script(S3(bucket), script, "my flow")
    assert changed.key != stored.key
    assert keys_in(s3_client, bucket) == sorted([stored.key, str(changed.key)])


def test_upload_leaves_the_storage_it_was_called_on_unchanged(tmp_path: Path, bucket: str) -> None:
    storage = S3(bucket)
    stored = upload_script(storage, write_script(tmp_path, SCRIPT), "my flow")
    assert storage.key is None
    assert stored.key is not None


def test_upload_with_an_explicit_key(tmp_path: Path, s3_client: Any, bucket: str) -> None:
    stored = upload_script(S3(bucket, "custom/etl.py"), write_script(tmp_path, SCRIPT), "my flow")
    assert stored.key == "custom/etl.py"
    assert keys_in(s3_client, bucket) == ["custom/etl.py"]


def test_load_returns_a_flow_that_runs(tmp_path: Path, bucket: str) -> None:
    stored = upload_script(S3(bucket), write_script(tmp_path, SCRIPT), "my flow")
    # What a registration keeps and a runner reads back.
    flow = load_flow(parse_storage(stored.model_dump_json()))
    assert flow.name == "my flow"
    state = flow.run(x=2)
    assert state.is_successful(), state.message
    (double,) = flow.get_tasks(name="double")
    assert state.result[double].result == 44


def test_load_with_attr_picks_one_of_several_flows(tmp_path: Path, bucket: str) -> None:
    script = write_script(tmp_path, TWO_FLOWS)
    stored = upload_script(S3(bucket, attr="beta"), script, "two flows")
    assert stored.attr == "beta"
    assert load_flow(stored).name == "beta"
    without_attr = S3(bucket, stored.key)
    with pytest.raises(FlowLoadError, match=r"defines 2 flows \(alpha, beta\)"):
        load_flow(without_attr)


def test_load_of_a_missing_key_names_the_object_and_the_error_code(bucket: str) -> None:
    storage = S3(bucket, "flows/my-flow/0000000000000000.py")
    with pytest.raises(FlowLoadError) as info:
        load_flow(storage)
    message = str(info.value)
    assert message.startswith(f"s3://{bucket}/flows/my-flow/0000000000000000.py: ")
    assert "NoSuchKey" in message


def test_load_from_a_missing_bucket_names_the_error_code(aws_env: str) -> None:
    storage = S3(f"flowrelay-missing-{uuid.uuid4().hex[:12]}", "flow.py")
    with pytest.raises(FlowLoadError) as info:
        load_flow(storage)
    assert str(info.value).startswith(f"s3://{storage.bucket}/flow.py: NoSuchBucket")


def test_load_without_a_key_raises(aws_env: str) -> None:
    with pytest.raises(FlowLoadError, match="has no key") as info:
        load_flow(S3("flowrelay-unregistered"))
    assert "'flowrelay-unregistered'" in str(info.value)


def test_a_broken_script_in_s3_is_a_flow_load_error(tmp_path: Path, bucket: str) -> None:
    broken = write_script(tmp_path, "from flowrelay import Flow\n\nflow = = Flow('x')\n")
    stored = upload_script(S3(bucket), broken, "broken")
    with pytest.raises(FlowLoadError, match=r":3: syntax error"):
        load_flow(stored)
