"""Storage: Module, Local and S3 locations, flow loading and its errors, JSON round trip."""

from __future__ import annotations

import itertools
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from flowrelay.core.storage import S3, Local, Module, parse_storage, split_location
from flowrelay.sdk.flow import Flow
from flowrelay.sdk.storage import FlowLoadError, load_flow

TWO_TASK_FLOW = """
from flowrelay import Flow, Parameter, task


@task
def add(x, y):
    return x + y


@task
def double(x):
    return 2 * x


with Flow("adder") as flow:
    total = double(add(Parameter("x", default=1), 20))
"""

TWO_FLOWS = """
from flowrelay import Flow

zeta = Flow("zeta")
alpha = Flow("alpha")
"""

_module_numbers = itertools.count()


@pytest.fixture
def write_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], str]]:
    """Write an importable module with the given source; returns its (unique) name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    written: list[str] = []

    def write(source: str) -> str:
        name = f"flowrelay_test_module_{next(_module_numbers)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


def write_script(folder: Path, source: str, name: str = "flow_script.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def load_error(load: Callable[[], object]) -> str:
    with pytest.raises(FlowLoadError) as info:
        load()
    return str(info.value)


def total_of(flow: Flow, **parameters: object) -> object:
    state = flow.run(parameters)
    assert state.is_successful(), state.message
    (double,) = flow.get_tasks(name="double")
    return state.result[double].result


# --- Module ----------------------------------------------------------------------------------


def test_module_storage_loads_the_example_flow() -> None:
    flow = load_flow(Module("flowrelay.sdk.examples.hello:flow"))
    assert isinstance(flow, Flow)
    assert flow.name == "hello"
    state = flow.run()
    assert state.is_successful()
    (shout,) = flow.get_tasks(name="shout")
    assert state.result[shout].result == "HELLO, FLOWRELAY!"


def test_module_storage_without_attr_finds_the_only_flow() -> None:
    from flowrelay.sdk.examples import hello

    assert load_flow(Module("flowrelay.sdk.examples.hello")) is hello.flow


def test_module_storage_loads_a_named_flow_from_a_module(
    write_module: Callable[[str], str],
) -> None:
    name = write_module(TWO_TASK_FLOW)
    flow = load_flow(Module(f"{name}:flow"))
    assert flow.name == "adder"
    assert total_of(flow, x=2) == 44


def test_module_storage_without_attr_finds_the_single_flow_in_a_module(
    write_module: Callable[[str], str],
) -> None:
    name = write_module(TWO_TASK_FLOW)
    flow = load_flow(Module(name))
    assert flow is sys.modules[name].flow
    assert total_of(flow) == 42


def test_module_with_two_flows_needs_an_attr(write_module: Callable[[str], str]) -> None:
    name = write_module(TWO_FLOWS)
    message = load_error(lambda: load_flow(Module(name)))
    assert "2 flows (alpha, zeta)" in message
    assert name in message
    assert load_flow(Module(f"{name}:zeta")).name == "zeta"


def test_module_storage_errors(write_module: Callable[[str], str]) -> None:
    name = write_module(TWO_TASK_FLOW + "\nnot_a_flow = 3\n")
    assert (
        load_error(lambda: load_flow(Module(f"{name}:missing")))
        == f"{name} has no attribute 'missing'"
    )
    assert (
        load_error(lambda: load_flow(Module(f"{name}:not_a_flow")))
        == f"{name}:not_a_flow is an int, not a Flow"
    )
    empty = write_module("X = 1\n")
    assert load_error(lambda: load_flow(Module(empty))) == f"{empty} defines no Flow"


def test_module_storage_that_cannot_be_imported() -> None:
    message = load_error(lambda: load_flow(Module("flowrelay_no_such_module_anywhere:flow")))
    assert "cannot import 'flowrelay_no_such_module_anywhere'" in message


def test_module_storage_whose_import_raises(write_module: Callable[[str], str]) -> None:
    name = write_module("raise RuntimeError('database is down')\n")
    message = load_error(lambda: load_flow(Module(name)))
    assert name in message
    assert "RuntimeError" in message
    assert "database is down" in message


def test_module_storage_with_a_syntax_error(write_module: Callable[[str], str]) -> None:
    name = write_module("from flowrelay import Flow\n\nflow = Flow('x'\n\nx = = 2\n")
    message = load_error(lambda: load_flow(Module(name)))
    assert name in message
    assert "SyntaxError" in message
    assert "line" in message


# --- Local ------------------------------------------------------------------------------------


def test_local_storage_loads_a_script_by_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_script(tmp_path, TWO_TASK_FLOW, "etl.py")
    monkeypatch.chdir(tmp_path)
    flow = load_flow(Local("etl.py"))
    assert flow.name == "adder"
    assert total_of(flow, x=5) == 50


def test_local_storage_loads_a_named_flow(tmp_path: Path) -> None:
    script = write_script(tmp_path, TWO_FLOWS)
    assert load_flow(Local(f"{script}:alpha")).name == "alpha"
    assert load_flow(Local(f"{script}:zeta")).name == "zeta"


def test_local_storage_returns_a_flow_with_no_tasks(tmp_path: Path) -> None:
    # An empty Flow has len() == 0, so it is falsy: loading must not test truthiness.
    script = write_script(tmp_path, "from flowrelay import Flow\n\nflow = Flow('empty')\n")
    flow = load_flow(Local(str(script)))
    assert flow.name == "empty"
    assert len(flow) == 0


def test_local_storage_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.py"
    assert load_error(lambda: load_flow(Local(str(missing)))) == f"{missing}: no such file"
    assert load_error(lambda: load_flow(Local(f"{missing}:flow"))) == f"{missing}: no such file"


def test_local_storage_directory_is_not_a_script(tmp_path: Path) -> None:
    assert load_error(lambda: load_flow(Local(str(tmp_path)))) == f"{tmp_path}: no such file"


def test_local_storage_script_without_a_flow(tmp_path: Path) -> None:
    script = write_script(tmp_path, "VALUE = 1\n")
    assert load_error(lambda: load_flow(Local(str(script)))) == f"{script} defines no Flow"


def test_local_storage_two_flows_without_attr_lists_them(tmp_path: Path) -> None:
    script = write_script(tmp_path, TWO_FLOWS)
    message = load_error(lambda: load_flow(Local(str(script))))
    assert message == (f"{script} defines 2 flows (alpha, zeta); name one as {script}:NAME")


def test_local_storage_attr_missing(tmp_path: Path) -> None:
    script = write_script(tmp_path, TWO_TASK_FLOW)
    assert (
        load_error(lambda: load_flow(Local(f"{script}:other")))
        == f"{script} has no attribute 'other'"
    )


def test_local_storage_attr_is_not_a_flow(tmp_path: Path) -> None:
    script = write_script(tmp_path, TWO_TASK_FLOW)
    message = load_error(lambda: load_flow(Local(f"{script}:double")))
    assert message == f"{script}:double is a FunctionTask, not a Flow"


def test_local_storage_syntax_error_names_the_line(tmp_path: Path) -> None:
    script = write_script(tmp_path, "from flowrelay import Flow\n\nflow = Flow('x')\nx = = 2\n")
    message = load_error(lambda: load_flow(Local(str(script))))
    assert message.startswith(f"{script}:4: syntax error: ")


def test_local_storage_exception_while_loading(tmp_path: Path) -> None:
    script = write_script(tmp_path, "import os\n\nraise KeyError('MISSING_SETTING')\n")
    with pytest.raises(FlowLoadError) as info:
        load_flow(Local(str(script)))
    assert str(info.value) == f"{script}: raised KeyError while loading: 'MISSING_SETTING'"
    assert isinstance(info.value.__cause__, KeyError)


def test_local_storage_can_load_again_after_the_script_is_fixed(tmp_path: Path) -> None:
    script = write_script(tmp_path, "raise ValueError('not yet')\n")
    with pytest.raises(FlowLoadError, match="not yet"):
        load_flow(Local(str(script)))
    write_script(tmp_path, TWO_TASK_FLOW)
    assert total_of(load_flow(Local(str(script)))) == 42


# --- JSON round trip, validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "storage",
    [
        Module("flowrelay.sdk.examples.hello:flow"),
        Module("pkg.module"),
        Local("flows/etl.py"),
        Local("C:\\flows\\etl.py:daily"),
        S3("my-bucket"),
        S3("my-bucket", "flows/etl/0123456789abcdef.py"),
        S3(bucket="my.bucket", key="flows/x.py", attr="daily"),
    ],
    ids=repr,
)
def test_storage_json_round_trip(storage: BaseModel) -> None:
    parsed = parse_storage(storage.model_dump_json())
    assert type(parsed) is type(storage)
    assert parsed == storage
    assert parse_storage(storage.model_dump()) == storage


def test_storage_keyword_and_positional_forms_are_equal() -> None:
    assert Module("a.b:flow") == Module(path="a.b:flow")
    assert Local("x.py") == Local(path="x.py")
    assert S3("bucket", "key.py") == S3(bucket="bucket", key="key.py")


def test_storage_is_frozen_and_rejects_unknown_fields() -> None:
    storage = S3("my-bucket")
    with pytest.raises(ValidationError, match="frozen"):
        storage.key = "other.py"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="region"):
        S3("my-bucket", region="us-east-1")
    with pytest.raises(ValidationError, match="type"):
        parse_storage({"type": "GCS", "bucket": "b"})


def test_empty_paths_are_rejected() -> None:
    with pytest.raises(ValidationError, match="path"):
        Module("")
    with pytest.raises(ValidationError, match="path"):
        Local("")
    with pytest.raises(ValidationError, match="key"):
        S3("my-bucket", "")


@pytest.mark.parametrize(
    "bucket", ["abc", "my-bucket", "my.bucket.name", "bucket-123", "1bucket", "a" * 63]
)
def test_s3_accepts_valid_bucket_names(bucket: str) -> None:
    assert S3(bucket).bucket == bucket


@pytest.mark.parametrize(
    "bucket",
    [
        "ab",
        "a" * 64,
        "My-Bucket",
        "my_bucket",
        "-bucket",
        "bucket-",
        ".bucket",
        "bucket.",
        "my bucket",
        "my..bucket",
        "192.168.1.10",
        "s3://my-bucket",
    ],
)
def test_s3_rejects_invalid_bucket_names(bucket: str) -> None:
    with pytest.raises(ValidationError) as info:
        S3(bucket)
    assert info.value.errors()[0]["loc"] == ("bucket",)


def test_s3_without_key_cannot_load() -> None:
    message = load_error(lambda: load_flow(S3("my-bucket")))
    assert "'my-bucket'" in message
    assert "no key" in message


# --- split_location ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("flows/etl.py:daily", ("flows/etl.py", "daily")),
        ("flows/etl.py", ("flows/etl.py", None)),
        ("/abs/path/etl.py:flow_2", ("/abs/path/etl.py", "flow_2")),
        ("etl.py:", ("etl.py:", None)),
        ("etl.py:not-a-name", ("etl.py:not-a-name", None)),
        ("etl.py:2flow", ("etl.py:2flow", None)),
        ("C:\\x.py", ("C:\\x.py", None)),
        ("C:\\flows\\etl.py:daily", ("C:\\flows\\etl.py", "daily")),
        ("a:b:flow", ("a:b", "flow")),
    ],
)
def test_split_location(location: str, expected: tuple[str, str | None]) -> None:
    assert split_location(location) == expected
