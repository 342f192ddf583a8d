"""``flowrelay dev up``: the embedded dev stack in the foreground (docs/devstack.md)."""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from flowrelay.cli import render

if TYPE_CHECKING:
    from flowrelay.devstack import DevStack


@click.group()
def dev() -> None:
    """The embedded dev stack: AWS (moto) on loopback, no account and no Docker needed."""


@dev.command("up")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default="a free port",
    help="moto's port on 127.0.0.1.",
)
@click.option(
    "--schedule-seconds",
    type=float,
    default=None,
    help="Run scheduled functions (the monitor) this often instead of the template's rate.",
)
@click.option(
    "--template",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="The SAM template. Default: ./template.yaml, else flowrelay's own.",
)
@click.option("--stack-name", default="flowrelay-dev", show_default=True)
@click.option(
    "--clock-speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="EventBridge Scheduler's clock runs this many times faster than real time from the "
    "start: with 3600 an hourly schedule fires every second.",
)
@click.option(
    "--target/--no-target",
    default=True,
    show_default=True,
    help="Create the launch targets 'dev' (ECS on the dev stack), 'dev-k8s' (its Kubernetes, for "
    "KubernetesRun flows) and 'dev-local' (local processes, for LocalRun flows), with no labels, "
    "so runs go somewhere.",
)
def up(
    port: int,
    schedule_seconds: float | None,
    template: Path | None,
    stack_name: str,
    clock_speed: float,
    target: bool,
) -> None:
    """Start the dev stack and keep it running until Ctrl-C (or SIGTERM), then stop it cleanly.

    Prints the ``export`` line that points other shells (the flowrelay CLI, your scripts) at it.

    \b
    Example, in a second shell after pasting the export line:
      flowrelay register shared/flowrelay/sdk/examples/hello.py
      flowrelay run hello --param name=you --watch
    """
    try:
        from flowrelay.devstack import DevStack
        from flowrelay.devstack.stack import DevStackError
    except ImportError as exc:
        raise click.ClickException(
            f"the dev stack needs the devstack extra (pip install 'flowrelay[devstack]'): {exc}"
        ) from exc

    def say(line: str) -> None:
        click.echo(f"{datetime.now():%H:%M:%S} {line}", err=True)

    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    stack = DevStack(
        template,
        port=port,
        stack_name=stack_name,
        schedule_seconds=schedule_seconds,
        log=say,
        clock_speed=clock_speed,
    )
    try:
        try:
            stack.start()
        except DevStackError as exc:
            render.fail(str(exc), 2)
        if target:
            _create_dev_target(stack)
            say(
                "launch targets 'dev' (kind ecs), 'dev-k8s' (kind kubernetes, for KubernetesRun "
                "flows) and 'dev-local' (kind local, for LocalRun flows) created, no labels: runs "
                "without labels go to 'dev'"
            )
        click.echo("# In another shell, use the dev stack with:")
        click.echo(stack.export_line())
        click.echo("# and see it in a browser (after the export line): flowrelay ui --open")
        sys.stdout.flush()
        say(
            "run a function in Lambda's own container (needs Docker and the SAM CLI): "
            + stack.sam_local_invoke("Dispatch", "events/dispatch.json")
        )
        say(_clock_line(stack))
        say("dev stack running; Ctrl-C to stop")
        while not stopping.wait(0.5):
            pass
        say("stopping")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say("dev stack stopped")


def _clock_line(stack: DevStack) -> str:
    """What ``dev up`` says of the schedules: the stack fires them, on which clock."""
    speed = stack.clock_speed
    line = (
        f"EventBridge Scheduler schedules fire in the dev stack (moto only stores them), clock "
        f"speed {speed:g}x"
    )
    if speed != 1:
        line += f": an hour of schedules every {3600 / speed:g} s of real time"
    return line


def _create_dev_target(stack: DevStack) -> None:
    import boto3

    from flowrelay.control.store import Store
    from flowrelay.core.routing import Target
    from flowrelay.launchers.kinds import checked_target

    environment = stack.environment()
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name=environment["AWS_DEFAULT_REGION"],
    )
    store = Store(dynamodb, stack.outputs["TableName"])
    store.targets.put(
        checked_target(Target(name="dev", kind="ecs", settings=stack.ecs_target_settings()))
    )
    store.targets.put(
        checked_target(
            Target(name="dev-k8s", kind="kubernetes", settings=stack.kubernetes_target_settings())
        )
    )
    store.targets.put(
        checked_target(
            Target(name="dev-local", kind="local", settings=stack.local_target_settings())
        )
    )
