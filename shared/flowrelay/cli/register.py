"""``flowrelay register``: a flow's registration in the stack's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError
from rich.markup import escape

from flowrelay.cli import render
from flowrelay.cli.stack import (
    ConfigError,
    aws_client,
    current,
    current_outputs,
    open_store,
    reports_errors,
)
from flowrelay.core.events import describe
from flowrelay.core.registration import FlowRegistration
from flowrelay.core.storage import S3, Local, Storage, split_location
from flowrelay.sdk.storage import FlowLoadError, load_flow, upload_script


@click.command()
@click.argument("location", metavar="FILE[:ATTR]")
@click.option(
    "--storage",
    "storage_kind",
    type=click.Choice(["local", "s3"]),
    help="Where runs load the flow from (default: the flow's own storage, else this file).",
)
@click.option("--bucket", help="With --storage s3: the bucket the script is uploaded to.")
@click.option("--json", "as_json", is_flag=True, help="Print the registration as JSON.")
@reports_errors
def register(location: str, storage_kind: str | None, bucket: str | None, as_json: bool) -> None:
    """Register the flow in FILE (the attribute ATTR, or its only Flow).

    \b
    Registering unchanged content again keeps the version, so CI may register on every deploy.
    Storage: the flow's own (flow.storage) when set; otherwise this script by absolute path
    (Local, for the dev stack and this machine); `--storage s3 --bucket B` uploads the script
    to B under a content-addressed key, for deployed stacks.

    \b
    Example:
      flowrelay register flows/etl.py:flow --storage s3 --bucket my-flows
    """
    from flowrelay.sdk.flow import registration_for

    if bucket and storage_kind is None:
        storage_kind = "s3"
    if storage_kind == "s3" and not bucket:
        render.fail("--storage s3 needs --bucket BUCKET", 2)
    if storage_kind == "local" and bucket:
        render.fail("--bucket goes with --storage s3, not --storage local", 2)
    script, attr = split_location(location)
    try:
        flow = load_flow(Local(location))
    except FlowLoadError as exc:
        render.fail(str(exc), 2)
    names = current()
    storage: Storage | None
    if storage_kind == "s3":
        try:
            target = S3(str(bucket), attr=attr)
        except ValidationError as exc:
            render.fail(f"--bucket: {describe(exc)}", 2)
        storage = upload_script(target, script, flow.name, client=aws_client("s3"))
    elif storage_kind == "local" or flow.storage is None:
        absolute = str(Path(script).resolve())
        storage = Local(f"{absolute}:{attr}" if attr else absolute)
    else:
        storage = None  # the flow's own
    try:
        registration = registration_for(flow, storage=storage)
    except ValidationError as exc:
        render.fail(f"cannot register flow {flow.name[:60]!r}: {describe(exc)}", 2)
    except ValueError as exc:
        render.fail(str(exc), 2)
    stored, created = open_store(names).flows.register(registration)
    synced = _sync_schedules(_stack_outputs(names.outputs), stored)
    if as_json:
        render.echo_json({**stored.model_dump(mode="json"), "schedules": synced})
        return
    if created:
        render.stdout.print(f"registered {escape(stored.name)} version {stored.version}")
    else:
        render.stdout.print(f"{escape(stored.name)} is unchanged: version {stored.version}")
    if synced is not None:
        for verb in ("created", "updated", "deleted"):
            for name in synced[verb]:
                render.stdout.print(f"  schedule {escape(name)} {verb}")
        if synced["unchanged"] and not any(synced[v] for v in ("created", "updated", "deleted")):
            render.stdout.print(f"  {len(synced['unchanged'])} schedule(s) unchanged")


def _stack_outputs(read: dict[str, str]) -> dict[str, str]:
    """The named stack's outputs (``--stack`` or ``FLOWRELAY_STACK``; read already when the
    table and bus came from it), or none when only the table and bus are named."""
    if read:
        return read
    try:
        return current_outputs()
    except ConfigError:
        return {}


def _sync_schedules(
    outputs: dict[str, str], registration: FlowRegistration
) -> dict[str, Any] | None:
    """The flow's EventBridge Scheduler schedules made what its registration says (created,
    updated, deleted: ``flowrelay.control.schedule_sync``); None when the stack was named by
    its table and bus only, so its schedule group is unknown (said, when the flow has a
    schedule: nothing is silently left undone)."""
    from flowrelay.control.schedule_sync import ScheduleTarget, sync

    target = ScheduleTarget.of_stack(outputs)
    if target is None:
        if registration.schedule is not None:
            fix = (
                "deploy the current template.yaml (the stack has no ScheduleGroupName output)"
                if outputs
                else "set FLOWRELAY_STACK (or --stack) so that its schedule group is known"
            )
            render.stderr.print(
                f"[yellow]the flow's schedule was not synced: {fix}, and register again[/]"
            )
        return None
    from botocore.exceptions import ClientError

    try:
        report = sync(aws_client("scheduler"), registration.name, registration, target)
    except ClientError as exc:
        if registration.schedule is not None:
            raise
        # A flow without a schedule only checks that none is left from an earlier version:
        # a registering role without scheduler permissions still registers it.
        render.stderr.print(
            f"[yellow]could not check for schedules of earlier versions to remove: "
            f"{escape(str(exc))}[/]"
        )
        return None
    for why in report.skipped:
        render.stderr.print(f"[yellow]no schedule for clock {escape(why)}[/]")
    return report.model_dump(mode="json")
