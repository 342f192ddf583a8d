"""What several commands read from their command line: ``--param NAME=VALUE`` values, and who
is asking (for a run's history)."""

from __future__ import annotations

import getpass
import json
from typing import Any

import click


def parse_params(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("n=3", "name=ada")`` -> ``{"n": 3, "name": "ada"}``; values are JSON when they parse
    as JSON, else strings."""
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        try:
            params[name] = json.loads(raw)
        except json.JSONDecodeError:
            params[name] = raw
    return params


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
