"""``flowrelay targets put|ls|rm``: the launch targets in the stack's table."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from pydantic import ValidationError
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.options import parse_params
from flowrelay.cli.stack import (
    current,
    open_store,
    reports_errors,
)
from flowrelay.core.events import describe

if TYPE_CHECKING:
    pass


@click.group()
def targets() -> None:
    """Launch targets: where dispatch may start runs (by kind and labels)."""


@targets.command("put")
@click.argument("name")
@click.option(
    "--kind", required=True, type=click.Choice(["ecs", "local", "kubernetes"]), help="Target kind."
)
@click.option("--labels", default="", metavar="A,B", help="Comma-separated labels.")
@click.option(
    "--setting",
    "-s",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the kind; VALUE is JSON when it parses as JSON (lists: '[\"subnet-1\"]'), "
    "else text. Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the saved target as JSON.")
@reports_errors
def targets_put(
    name: str, kind: str, labels: str, settings: tuple[str, ...], as_json: bool
) -> None:
    """Create or replace the launch target NAME.

    \b
    Runs waiting in Pending for a target are offered to it by the monitor (within a minute).

    \b
    Example:
      flowrelay targets put fargate --kind ecs --labels prod \\
        --setting cluster=flows --setting 'subnets=["subnet-1"]' --setting assign_public_ip=true
    """
    from flowrelay.core.routing import Target
    from flowrelay.launchers.kinds import TargetSettingsError, checked_target

    values = parse_params(settings, "--setting")
    label_list = [label.strip() for label in labels.split(",") if label.strip()]
    try:
        target = checked_target(Target(name=name, kind=kind, labels=label_list, settings=values))
    except ValidationError as exc:
        render.fail(f"invalid target {name!r}: {describe(exc)}", 2)
    except TargetSettingsError as exc:
        render.fail(f"invalid target {name!r}: {exc.problems}", 2)
    open_store(current()).targets.put(target)
    if as_json:
        render.echo_json(target.model_dump(mode="json"))
        return
    shown = ", ".join(target.labels) or "none"
    render.stdout.print(
        f"saved target {escape(target.name)} ({target.kind}; labels: {escape(shown)})"
    )


@targets.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print the targets as JSON.")
@reports_errors
def targets_ls(as_json: bool) -> None:
    """List the launch targets."""
    found = open_store(current()).targets.list()
    if as_json:
        render.echo_json([target.model_dump(mode="json") for target in found])
        return
    if not found:
        render.stderr.print("[dim]no targets: runs wait in Pending until one fits[/]")
        return
    render.print_table(
        ("name", "kind", "labels", "settings"),
        [
            (
                target.name,
                target.kind,
                ", ".join(target.labels),
                json.dumps(target.settings, separators=(",", ":")),
            )
            for target in found
        ],
    )


@targets.command("rm")
@click.argument("name")
@reports_errors
def targets_rm(name: str) -> None:
    """Remove the launch target NAME (runs already launched on it are not affected)."""
    if not open_store(current()).targets.delete(name):
        render.fail(f"no target {name!r}", 1)
    render.stdout.print(f"removed target {escape(name)}")
