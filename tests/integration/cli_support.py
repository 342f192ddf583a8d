"""Running the CLI in tests the way a user's shell does: its output, its exit code, its one
error line."""

from __future__ import annotations

from click.testing import CliRunner, Result

from flowrelay.cli import cli


def invoke(*args: str) -> Result:
    """``flowrelay ARGS...`` in this process; stdout and stderr kept apart."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_error_line(result: Result, code: int) -> str:
    """The command exited ``code`` with exactly one ``error: ...`` line; that line's text."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ")
