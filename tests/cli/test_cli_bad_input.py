"""Bad input on the command line, tried on every command: one ``error:`` line naming what is
wrong, exit 2, never a traceback and never a value silently changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from flowrelay.cli import cli
from flowrelay.cli.options import parse_params
from tests.support.cli import invoke, one_error_line

EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "flowrelay" / "sdk" / "examples"
NOT_UTF8 = b"name=\xff\xfe".decode("utf-8", "surrogateescape")  # as Python reads such argv


def command_paths(
    group: click.Group = cli, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command of the CLI, as the words that call it."""
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, path)
        else:
            yield path


COMMANDS = list(command_paths())


def test_every_command_is_swept() -> None:
    assert ("run",) in COMMANDS
    assert ("runs", "ls") in COMMANDS
    assert ("targets", "put") in COMMANDS
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_an_unknown_option_is_one_line_naming_it(path: tuple[str, ...]) -> None:
    error = one_error_line(invoke(*path, "--no-such-option"), 2)
    assert "--no-such-option" in error
    assert f"flowrelay {' '.join(path)} --help" in error


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_an_argument_that_is_not_utf8_is_one_line_naming_it(path: tuple[str, ...]) -> None:
    error = one_error_line(invoke(*path, NOT_UTF8), 2)
    assert f"argument {len(path) + 1} (b'name=\\xff\\xfe') is not UTF-8 text" in error


def test_not_utf8_from_a_real_shell_is_one_line() -> None:
    """The bytes as a shell passes them, through the installed command."""
    command = Path(sys.executable).with_name("flowrelay")
    result = subprocess.run(
        [os.fsencode(command), b"run-local", os.fsencode(EXAMPLES / "hello.py"), b"-p", b"n=\xff"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: argument 4 (b'n=\\xff')"), lines
    assert b"Traceback" not in result.stderr


NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "[1, NaN]", '{"a": Infinity}']


@pytest.mark.parametrize("value", NON_FINITE)
def test_a_non_finite_param_is_refused_not_changed(value: str) -> None:
    with pytest.raises(click.BadParameter, match="JSON number") as raised:
        parse_params((f"n={value}",))
    assert f"quote it ('n={json.dumps(value)}')" in raised.value.format_message()
    # Quoted as the message says, it is the text it was.
    assert parse_params((f"n={json.dumps(value)}",)) == {"n": value}


@pytest.mark.parametrize(
    "args",
    [
        ("run-local", str(EXAMPLES / "hello.py"), "-p", "name=NaN"),
        ("run", "hello", "-p", "name=1e999"),
        ("targets", "put", "t", "--kind", "ecs", "-s", "cpu=Infinity"),
    ],
    ids=["run-local", "run", "targets-put"],
)
def test_commands_refuse_non_finite_values_before_doing_anything(args: tuple[str, ...]) -> None:
    error = one_error_line(invoke(*args), 2)
    assert "is not a JSON number" in error or "too large for a JSON number" in error


# --- what a hostile new user tried --------------------------------------------------------------


@pytest.mark.parametrize("seconds", ["inf", "-inf", "nan", "1e400", "0", "-1", "soon"])
def test_run_timeouts_are_finite_numbers_of_seconds(seconds: str) -> None:
    error = one_error_line(invoke("run", "hello", "--run-timeout", seconds), 2)
    assert "--run-timeout" in error


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-p", "x=1", "-p", "x=2"), "'x' is given twice"),
        (("-p", 'x={"a": 1, "a": 2}'), "the key 'a' is given twice in one object"),
        (("--label", " gpu "), "label ' gpu ' has spaces around it"),
        (("--label", "a,b"), "label 'a,b' contains a comma"),
        (("--label", ""), "each label must be a non-empty string"),
        (
            (
                "--env",
                "FLOWRELAY_RUN_ID=another",
                "--no-check",
                "--run-config",
                '{"type": "UniversalRun"}',
            ),
            "FLOWRELAY_RUN_ID is set by flowrelay",
        ),
    ],
    ids=["param-twice", "key-twice", "label-spaces", "label-comma", "label-empty", "env-owned"],
)
def test_run_refuses_what_would_be_silently_changed_or_never_match(
    args: tuple[str, ...], expected: str
) -> None:
    assert expected in one_error_line(invoke("run", "hello", *args), 2)


def test_text_that_only_looks_like_a_constant_stays_text() -> None:
    assert parse_params(("x=NaNa", "y=[1,2")) == {"x": "NaNa", "y": "[1,2"}


def test_a_script_that_exits_at_import_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "exits.py"
    script.write_text("import sys\nsys.exit(3)\n")
    for command in ("register", "run-local"):
        error = one_error_line(invoke(command, str(script)), 2)
        assert "called sys.exit(3) while loading" in error


@pytest.mark.parametrize(
    ("name", "expected"),
    [("x" * 5000, "at most 256"), ("bad\x00nul", "control character"), ("two\nlines", "control")],
    ids=["long", "nul", "newline"],
)
def test_a_flow_name_that_cannot_be_shown_or_sent_is_refused(
    tmp_path: Path, name: str, expected: str, names: dict[str, str]
) -> None:
    script = tmp_path / "named.py"
    source = "from flowrelay import Flow, task\n@task\ndef t(): return 1\n"
    script.write_text(f"{source}with Flow({name!r}) as flow:\n    t()\n")
    assert expected in one_error_line(invoke("register", str(script)), 2)


def test_dev_up_on_a_port_in_use_is_one_line() -> None:
    import socket

    command = Path(sys.executable).with_name("flowrelay")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [str(command), "dev", "up", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use (another dev stack? "
        "leave out --port for a free one)"
    ]
    assert "Traceback" not in done.stderr
    out_of_range = one_error_line(invoke("dev", "up", "--port", "99999"), 2)
    assert "99999 is not in the range 0<=x<=65535" in out_of_range
