"""What several commands read from their command line: ``--param NAME=VALUE`` values, and who
is asking (for a run's history)."""

from __future__ import annotations

import getpass
import json
import math
import sys
from pathlib import Path
from typing import Any

import click

from flowrelay.core import jsonvalues


def parse_params(pairs: tuple[str, ...], option: str = "--param") -> dict[str, Any]:
    """``("n=3", "name=ada")`` -> ``{"n": 3, "name": "ada"}``; values are JSON when they parse
    as JSON, else strings. What JSON cannot carry unchanged (``NaN``, ``Infinity``, ``1e999``)
    is refused, not turned into text or null: ``'n="NaN"'`` is the text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint=option)
        if name in params:
            raise click.BadParameter(f"{name!r} is given twice", param_hint=option)
        try:
            params[name] = jsonvalues.loads(raw, whole=name)
        except json.JSONDecodeError:
            params[name] = raw
        except jsonvalues.JsonValueError as exc:
            if not _is_json_to_python(raw):
                params[name] = raw  # not JSON even to Python (``NaNa``): text, as any other
                continue
            raise click.BadParameter(
                f"{pair!r}: {exc}; quote it ('{name}={json.dumps(raw)}') to pass it as text",
                param_hint=option,
            ) from None
    return params


def read_json_option(path: Path, option: str) -> Any:
    """The JSON value in the file an option names (``-``: stdin); ``click.BadParameter`` with
    one line naming the file and what is wrong (unreadable, not UTF-8, not JSON, a value JSON
    cannot carry)."""
    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise click.BadParameter(
            f"cannot read {path}: {exc.strerror or exc}", param_hint=option
        ) from None
    try:
        return jsonvalues.loads(raw.decode("utf-8"), whole=str(path))
    except UnicodeDecodeError as exc:
        raise click.BadParameter(
            f"{path} is not UTF-8 text (byte {exc.start + 1})", param_hint=option
        ) from None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"{path} is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            param_hint=option,
        ) from None
    except (ValueError, RecursionError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint=option) from None


def _is_json_to_python(text: str) -> bool:
    """Whether Python's lenient reader takes ``text`` as JSON (``NaN``, ``1e999`` included)."""
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


class Seconds(click.ParamType[float]):
    """A number of seconds: finite, above ``minimum`` (or at least it, with ``or_equal``)."""

    name = "seconds"

    def __init__(self, minimum: float = 0.0, or_equal: bool = False) -> None:
        self.minimum = minimum
        self.or_equal = or_equal

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float | int) and not isinstance(value, bool):
            number = float(value)
        else:
            try:
                number = float(str(value))
            except ValueError:
                self.fail(f"{value!r} is not a number of seconds", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number of seconds", param, ctx)
        below = number < self.minimum if self.or_equal else number <= self.minimum
        if below:
            bound = f"at least {self.minimum:g}" if self.or_equal else f"more than {self.minimum:g}"
            self.fail(f"{value!r} seconds: give {bound}", param, ctx)
        return number


param_option = click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter value (JSON or text); repeatable.",
)
"""The ``--param NAME=VALUE`` option of every command that starts a run (see ``parse_params``)."""


def requested_by() -> str:
    """Who asked, for the run's history: the CLI and the local user when there is one."""
    try:
        return f"flowrelay-cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in some containers
        return "flowrelay-cli"
