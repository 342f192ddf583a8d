"""``flowrelay targets put|ls|rm``: the launch targets in the stack's table."""

from __future__ import annotations

import json

import click
from pydantic import ValidationError
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.options import parse_params
from flowrelay.cli.stack import (
    ConfigError,
    aws_client,
    current,
    current_outputs,
    launchable_kinds,
    open_store,
    reports_errors,
)
from flowrelay.core.events import describe


@click.group()
def targets() -> None:
    """Launch targets: where dispatch may start runs (by kind and labels)."""


@targets.command("put")
@click.argument("name")
@click.option(
    "--kind",
    type=click.Choice(["ecs", "local", "kubernetes"]),
    help="Target kind (default: the --like target's).",
)
@click.option(
    "--like",
    metavar="TARGET",
    help="Start from this target: its kind, labels and settings (--labels and --setting change "
    "them).",
)
@click.option(
    "--labels", default=None, metavar="A,B", help="Comma-separated labels (default: none)."
)
@click.option(
    "--setting",
    "-s",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting of the kind (`flowrelay schema target`); VALUE is JSON when it parses as "
    "JSON (numbers, true, lists: '[\"subnet-1\"]'), else text. Repeatable.",
)
@click.option(
    "--no-defaults",
    is_flag=True,
    help="Fill in nothing from the stack (for ecs: its cluster, its log group, and the default "
    "VPC's subnets and security group).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the saved target as JSON.")
@reports_errors
def targets_put(
    name: str,
    kind: str | None,
    like: str | None,
    labels: str | None,
    settings: tuple[str, ...],
    no_defaults: bool,
    as_json: bool,
) -> None:
    """Create or replace the launch target NAME.

    \b
    An ecs target starts from the stack's cluster and log group and the account's default VPC
    (each setting filled in is named); --setting gives or replaces any of them. Only kinds the
    stack launches are taken. Runs waiting in Pending for a target are offered to it by the
    monitor (within a minute).

    \b
    Examples:
      flowrelay targets put fargate --kind ecs --labels prod
      flowrelay targets put big --like fargate --labels big -s cpu=4096 -s memory=16384
      flowrelay targets put vpc --kind ecs -s 'subnets=["subnet-1"]' -s assign_public_ip=false
    """
    from flowrelay.core.routing import Target
    from flowrelay.launchers.kinds import TargetSettingsError, checked_target

    given = parse_params(settings, "--setting")
    store = open_store(current())
    base_labels: list[str] = []
    base_settings: dict[str, object] = {}
    if like is not None:
        model = store.targets.get(like)
        if model is None:
            render.fail(f"no target {like!r} to start from (flowrelay targets ls)", 1)
        kind = kind or model.kind
        base_labels, base_settings = list(model.labels), dict(model.settings)
    if kind is None:
        render.fail("say which kind of target: --kind ecs|local|kubernetes, or --like TARGET", 2)
    _check_launchable(kind)
    filled: dict[str, object] = {}
    if kind == "ecs" and like is None and not no_defaults:
        filled = {key: value for key, value in _ecs_defaults().items() if key not in given}
    label_list = (
        [label.strip() for label in labels.split(",") if label.strip()]
        if labels is not None
        else base_labels
    )
    try:
        target = checked_target(
            Target(
                name=name,
                kind=kind,
                labels=label_list,
                settings={**filled, **base_settings, **given},
            )
        )
    except ValidationError as exc:
        render.fail(f"invalid target {name!r}: {describe(exc)}", 2)
    except TargetSettingsError as exc:
        hint = ""
        if kind == "ecs" and "settings.cluster" in exc.problems and not filled:
            hint = " (give --setting cluster=NAME, or name the stack: --stack or FLOWRELAY_STACK)"
        render.fail(f"invalid target {name!r}: {exc.problems}{hint}", 2)
    store.targets.put(target)
    if filled and not as_json:
        shown = ", ".join(f"{key}={json.dumps(value)}" for key, value in filled.items())
        render.stderr.print(f"[dim]from the stack: {escape(shown)}[/]", highlight=False)
    if as_json:
        render.echo_json(target.model_dump(mode="json"))
        return
    if target.kind == "ecs" and not target.settings.get("image"):
        render.stderr.print(
            "[yellow]note:[/] no image: runs sent here need their own (ECSRun image, or a task "
            "definition); --setting image=IMAGE gives every run one",
            highlight=False,
        )
    shown_labels = ", ".join(target.labels) or "none"
    render.stdout.print(
        f"saved target {escape(target.name)} ({target.kind}; labels: {escape(shown_labels)})"
    )


def _check_launchable(kind: str) -> None:
    """Exit 2 when the stack cannot launch ``kind`` targets: every run sent there would wait."""
    from flowrelay.launchers.kinds import COMING

    kinds = launchable_kinds()
    if kind in kinds:
        return
    launches = f"this stack launches {' and '.join(kinds)} targets"
    if kind in COMING:
        render.fail(f"{COMING[kind]}; {launches}", 2)
    if kind == "local":
        render.fail(
            f"local targets run flows as processes beside the functions, which only the dev stack "
            f"(flowrelay dev up) does; {launches}",
            2,
        )
    render.fail(f"{launches}, not {kind} targets", 2)


def _ecs_defaults() -> dict[str, object]:
    """What an ecs target takes from the stack the command names (nothing without one)."""
    from flowrelay.launchers.ecs.settings import stack_defaults

    try:
        outputs = current_outputs()
    except ConfigError:
        return {}
    return stack_defaults(outputs, aws_client("ec2"))


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
