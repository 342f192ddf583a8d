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
