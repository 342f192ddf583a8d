"""Results and serializers as the seeds' engine's ``prefect.engine.results`` documents them:
LocalResult on a temporary directory, S3Result against the moto server over HTTP,
PrefectResult in the location string; templated locations and the errors that name what is
wrong."""

from __future__ import annotations

import base64
import datetime
import json
import os
import pickle
import socket
import uuid
from pathlib import Path
from typing import Any

import boto3
import cloudpickle
import pytest
from botocore.config import Config

from flowrelay.engine import results as public_results
from flowrelay.engine import serializers as public_serializers
from flowrelay.sdk import results, serializers
from flowrelay.sdk.results import (
    LocalResult,
    LocationTemplateError,
    PrefectResult,
    Result,
    ResultError,
    S3Result,
)
from flowrelay.sdk.serializers import (
    CompressedSerializer,
    DateTimeSerializer,
    JSONSerializer,
    PickleSerializer,
    Serializer,
)

# What the engine formats locations with: the run's context and the task's inputs.
CONTEXT: dict[str, Any] = {
    "flow_name": "etl",
    "task_name": "extract",
    "task_slug": "extract",
    "map_index": None,
    "today": "2024-05-01",
    "parameters": {"region": "eu", "n": 3},
    "x": 7,
}


# --- serializers ------------------------------------------------------------------------------


def test_pickle_serializer_round_trips_what_plain_pickle_cannot() -> None:
    offset = 10

    def shift(value: int) -> int:  # a closure: only cloudpickle can carry it
        return value + offset

    restored = PickleSerializer().deserialize(PickleSerializer().serialize(shift))
    assert restored(1) == 11


def test_pickle_serializer_reads_base64_pickles_of_early_versions() -> None:
    old = base64.b64encode(cloudpickle.dumps({"a": 1}))
    assert PickleSerializer().deserialize(old) == {"a": 1}


def test_pickle_serializer_reports_the_real_error_for_garbage() -> None:
    with pytest.raises(pickle.UnpicklingError):
        PickleSerializer().deserialize(b"not a pickle")


def test_json_serializer_round_trips_and_refuses_what_json_cannot_hold() -> None:
    data = JSONSerializer().serialize({"rows": [1, 2], "ok": True, "none": None})
    assert json.loads(data) == {"rows": [1, 2], "ok": True, "none": None}
    assert JSONSerializer().deserialize(data) == {"rows": [1, 2], "ok": True, "none": None}
    with pytest.raises(TypeError, match="set"):
        JSONSerializer().serialize({1, 2})


def test_datetime_and_compressed_serializers() -> None:
    moment = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.UTC)
    assert DateTimeSerializer().serialize(moment) == b"2024-05-01T12:30:00+00:00"
    assert DateTimeSerializer().deserialize(DateTimeSerializer().serialize(moment)) == moment

    packed = CompressedSerializer(JSONSerializer(), format="gzip")
    data = packed.serialize(["x"] * 1000)
    assert len(data) < len(JSONSerializer().serialize(["x"] * 1000))
    assert packed.deserialize(data) == ["x"] * 1000
    assert packed == CompressedSerializer(JSONSerializer(), format="gzip")
    assert packed != CompressedSerializer(PickleSerializer(), format="gzip")
    with pytest.raises(ValueError, match="'zip' is not one of: bz2, gzip, lzma, zlib"):
        CompressedSerializer(JSONSerializer(), format="zip")


def test_serializers_compare_by_kind_and_the_base_says_what_is_missing() -> None:
    assert PickleSerializer() == PickleSerializer()
    assert PickleSerializer() != JSONSerializer()
    with pytest.raises(NotImplementedError, match="Serializer does not implement serialize"):
        Serializer().serialize(1)


# --- the base Result ---------------------------------------------------------------------------


def test_result_defaults_and_format() -> None:
    result = Result(value=3, location="{flow_name}/{task_name}-{parameters[region]}.pkl")
    assert result.serializer == PickleSerializer()
    formatted = result.format(**CONTEXT)
    assert formatted.location == "etl/extract-eu.pkl"
    assert formatted.value == 3
    assert result.location == "{flow_name}/{task_name}-{parameters[region]}.pkl", "unchanged"


def test_result_location_can_be_a_callable() -> None:
    def where(**kwargs: Any) -> str:
        return f"{kwargs['flow_name']}/{kwargs['x'] * 2}.out"

    result = Result(location=where)
    assert result.location is None
    assert result.format(**CONTEXT).location == "etl/14.out"

    # A location set afterwards (as a task's target is) wins, be it a template or a callable.
    later = result.copy()
    later.location = "{task_name}.out"
    assert later.format(**CONTEXT).location == "extract.out"
    setattr(later, "location", where)  # noqa: B010  # callables are accepted at run time too
    assert later.format(**CONTEXT).location == "etl/14.out"


def test_without_a_template_each_format_gives_a_fresh_location() -> None:
    first, second = Result().format(), Result().format()
    assert first.location != second.location
    assert first.location is not None
    assert first.location.endswith(".flowrelay_result")


def test_a_missing_template_key_is_named() -> None:
    result = Result(location="{flow_name}/{date}/{task_name}.pkl")
    with pytest.raises(LocationTemplateError) as caught:
        result.format(**CONTEXT)
    message = str(caught.value)
    assert "{date}" in message
    assert "'{flow_name}/{date}/{task_name}.pkl'" in message
    assert "flow_name" in message  # the keys there are
    # Code written for the seeds' engine catches the KeyError str.format raises there.
    assert isinstance(caught.value, KeyError)


def test_positional_template_fields_are_refused_with_the_reason() -> None:
    with pytest.raises(LocationTemplateError, match="positional fields"):
        Result(location="out/{}.pkl").format(**CONTEXT)


def test_the_base_result_stores_nothing_and_says_what_to_use() -> None:
    with pytest.raises(NotImplementedError, match="use LocalResult, S3Result or PrefectResult"):
        Result().write(1)


def test_copy_from_value_equality_and_validators() -> None:
    result = Result(value=1, location="a", validators=[lambda r: r.value > 0])
    assert result.copy() == result
    assert result.copy() is not result
    assert result.from_value(5).value == 5
    assert result.from_value(5).location is None
    assert result.validate()
    assert not result.from_value(-1).validate()
    assert repr(result) == "<Result: 1>"


def test_result_location_must_be_a_template_or_callable() -> None:
    with pytest.raises(TypeError, match="must be a str template or a callable, got int"):
        Result(location=3)  # type: ignore[arg-type]


# --- LocalResult -------------------------------------------------------------------------------


def test_local_result_writes_reads_and_checks_a_templated_location(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path), location="{flow_name}/{task_name}-{today}.pkl")
    written = result.write({"rows": 3}, **CONTEXT)

    expected = tmp_path / "etl" / "extract-2024-05-01.pkl"
    assert written.location == str(expected), "the location is the file's absolute path"
    assert written.value == {"rows": 3}
    assert cloudpickle.loads(expected.read_bytes()) == {"rows": 3}
    assert result.read(str(written.location)).value == {"rows": 3}
    assert result.read("etl/extract-2024-05-01.pkl").value == {"rows": 3}, "relative to dir"

    assert result.exists("{flow_name}/{task_name}-{today}.pkl", **CONTEXT)
    assert not result.exists("{flow_name}/{task_name}-{today}.pkl", **{**CONTEXT, "today": "x"})
    assert [p.name for p in (tmp_path / "etl").iterdir()] == [expected.name], "no temp file left"


def test_local_result_exists_names_a_missing_template_key(tmp_path: Path) -> None:
    with pytest.raises(LocationTemplateError, match=r"needs \{run\}"):
        LocalResult(dir=str(tmp_path)).exists("{run}.pkl", **CONTEXT)


def test_local_result_absolute_locations_are_used_as_given(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere" / "value.pkl"
    result = LocalResult(dir=str(tmp_path / "results"), location=str(elsewhere))
    assert result.write(5).location == str(elsewhere)
    assert elsewhere.exists()
    assert result.exists(str(elsewhere))


def test_local_result_json_serializer_writes_readable_json(tmp_path: Path) -> None:
    result = LocalResult(
        dir=str(tmp_path), location="{task_name}.json", serializer=JSONSerializer()
    )
    written = result.write({"n": [1, 2]}, **CONTEXT)
    assert json.loads((tmp_path / "extract.json").read_text()) == {"n": [1, 2]}
    assert result.read(str(written.location)).value == {"n": [1, 2]}


def test_local_result_without_a_template_writes_unique_files_in_dir(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path))
    first, second = result.write(1), result.write(2)
    assert first.location != second.location
    assert Path(str(first.location)).parent == tmp_path
    assert result.read(str(second.location)).value == 2


def test_local_result_dir_defaults_to_the_home_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRELAY__HOME_DIR", str(tmp_path / "home"))
    assert LocalResult().dir == str(tmp_path / "home" / "results")
    assert (tmp_path / "home" / "results").is_dir()

    monkeypatch.delenv("FLOWRELAY__HOME_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert LocalResult(validate_dir=False).dir == str(tmp_path / "user" / ".flowrelay" / "results")


def test_local_result_relative_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert LocalResult(dir="out").dir == str(tmp_path / "out")


def test_local_result_errors_name_the_path_and_the_dir(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path))
    with pytest.raises(ResultError, match=f"cannot read {tmp_path / 'nope.pkl'}: No such file"):
        result.read("nope.pkl")

    (tmp_path / "garbage.pkl").write_bytes(b"garbage")
    with pytest.raises(ResultError, match=r"PickleSerializer\(\) cannot read .*garbage\.pkl"):
        result.read("garbage.pkl")

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ResultError, match=f"cannot create its dir {blocker / 'sub'}"):
        LocalResult(dir=str(blocker / "sub"))

    with pytest.raises(ResultError, match=r"cannot serialize set for .*extract\.json"):
        LocalResult(
            dir=str(tmp_path), location="{task_name}.json", serializer=JSONSerializer()
        ).write({1}, **CONTEXT)


def test_local_result_pickles(tmp_path: Path) -> None:
    result = LocalResult(dir=str(tmp_path), location="{task_name}.pkl")
    assert pickle.loads(pickle.dumps(result)) == result


# --- PrefectResult -----------------------------------------------------------------------------


def test_prefect_result_keeps_the_json_value_in_its_location() -> None:
    written = PrefectResult().write([1, {"a": None}], **CONTEXT)
    assert written.location == '[1, {"a": null}]'
    assert PrefectResult().read(written.location).value == [1, {"a": None}]
    assert PrefectResult().exists(written.location)
    assert not PrefectResult().exists("{not json")
    assert PrefectResult(serializer=PickleSerializer()).serializer == JSONSerializer()
    with pytest.raises(ResultError, match="cannot serialize set"):
        PrefectResult().write({1})


# --- S3Result (moto over HTTP) -----------------------------------------------------------------


@pytest.fixture
def bucket(aws_env: str) -> str:
    name = f"results-{uuid.uuid4().hex[:8]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def test_s3_result_writes_reads_and_checks_a_templated_key(bucket: str) -> None:
    result = S3Result(bucket=bucket, location="{flow_name}/{parameters[region]}/{task_name}.pkl")
    written = result.write({"rows": 3}, **CONTEXT)

    assert written.location == "etl/eu/extract.pkl"
    body = boto3.client("s3").get_object(Bucket=bucket, Key="etl/eu/extract.pkl")["Body"].read()
    assert cloudpickle.loads(body) == {"rows": 3}
    assert result.read("etl/eu/extract.pkl").value == {"rows": 3}
    assert result.exists("{flow_name}/{parameters[region]}/{task_name}.pkl", **CONTEXT)
    assert not result.exists("etl/us/extract.pkl")


def test_s3_result_json_serializer_writes_readable_json(bucket: str) -> None:
    result = S3Result(bucket=bucket, location="out/{x}.json", serializer=JSONSerializer())
    result.write({"n": 1}, **CONTEXT)
    body = boto3.client("s3").get_object(Bucket=bucket, Key="out/7.json")["Body"].read()
    assert json.loads(body) == {"n": 1}
    assert result.read("out/7.json").value == {"n": 1}


def test_s3_result_default_location_is_a_dated_unique_key(bucket: str) -> None:
    written = S3Result(bucket=bucket).write(42)
    today = datetime.datetime.now(datetime.UTC)
    assert str(written.location).startswith(f"{today.year}/{today.month}/")
    assert S3Result(bucket=bucket).read(str(written.location)).value == 42


def test_s3_result_reads_an_empty_object_as_none(bucket: str) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key="empty", Body=b"")
    assert S3Result(bucket=bucket).read("empty").value is None


def test_s3_result_errors_name_bucket_and_key(bucket: str) -> None:
    result = S3Result(bucket=bucket)
    with pytest.raises(ResultError, match=f"cannot read s3://{bucket}/missing.pkl: NoSuchKey"):
        result.read("missing.pkl")

    absent = S3Result(bucket=f"{bucket}-absent", location="{task_name}.pkl")
    with pytest.raises(
        ResultError, match=f"cannot write s3://{bucket}-absent/extract.pkl: NoSuchBucket"
    ):
        absent.write(1, **CONTEXT)

    with pytest.raises(LocationTemplateError, match=r"needs \{missing\}"):
        result.exists("{missing}.pkl", **CONTEXT)


def test_s3_result_exists_raises_for_errors_other_than_not_found(aws_env: str) -> None:
    # A loopback port nothing listens on: the request fails before S3 can say 404.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = S3Result(
        bucket="unreachable",
        boto3_kwargs={
            "endpoint_url": f"http://127.0.0.1:{port}",
            "config": Config(retries={"max_attempts": 1, "mode": "standard"}),
        },
    )
    with pytest.raises(ResultError) as caught:
        result.exists("some/key.pkl")
    message = str(caught.value)
    assert message.startswith("S3Result: cannot check s3://unreachable/some/key.pkl: ")
    assert "EndpointConnectionError" in message
    assert "\n" not in message


def has_client(result: Any) -> bool:
    return result._client.client is not None


def test_s3_result_client_is_made_lazily_reused_and_not_pickled(bucket: str) -> None:
    result = S3Result(bucket=bucket, location="{task_name}.pkl")
    assert not has_client(result), "no client until one is needed"
    written = result.write(1, **CONTEXT)
    assert has_client(result)
    assert written.client is result.client, "copies share the client"
    assert result.format(**CONTEXT).client is result.client

    restored = pickle.loads(pickle.dumps(written))
    assert not has_client(restored)
    assert restored == written
    assert restored.read("extract.pkl").value == 1


def test_s3_result_refuses_a_bad_configuration() -> None:
    with pytest.raises(ValueError, match="needs a bucket name"):
        S3Result(bucket="")
    with pytest.raises(ValueError, match='may not set "service_name"'):
        S3Result(bucket="b", boto3_kwargs={"service_name": "sqs"})


def test_boto3_is_imported_lazily() -> None:
    # Like flowrelay.sdk.storage: importing the results module must not import boto3.
    source = Path(results.__file__).read_text()
    top_level = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert not any("boto" in line for line in top_level)
    assert os.path.basename(serializers.__file__) == "serializers.py"


# --- public paths ------------------------------------------------------------------------------


def test_public_paths_are_the_sdk_objects() -> None:
    for name in public_results.__all__:
        assert getattr(public_results, name) is getattr(results, name)
    for name in public_serializers.__all__:
        assert getattr(public_serializers, name) is getattr(serializers, name)
