"""Which flowrelay stack the CLI talks to: the table and bus names, and AWS clients.

The same commands work against the embedded dev stack and a deployed one, so the names come from
wherever the user already has them:

1. ``--stack NAME`` on the command line: the stack's ``TableName`` / ``BusName`` outputs (a name
   typed now wins over names exported earlier in the shell, so ``--stack prod`` never silently
   talks to the dev stack);
2. ``FLOWRELAY_TABLE_NAME`` and ``FLOWRELAY_BUS_NAME`` (what ``flowrelay dev up`` prints and the
   Lambda functions read);
3. ``FLOWRELAY_STACK``: that stack's outputs.

A name set in the environment overrides the same output of a stack found through
``FLOWRELAY_STACK``, so one of them can be pointed elsewhere while debugging.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from flowrelay.aws.clients import retry_settings
from flowrelay.cli import render
from flowrelay.control.store import Store

F = TypeVar("F", bound=Callable[..., Any])

NO_STACK = (
    "no flowrelay stack: set FLOWRELAY_STACK (or --stack) to your stack's name, or run "
    "`flowrelay dev up` and use the export line it prints"
)
_ENV_NAMES = {"table_name": "FLOWRELAY_TABLE_NAME", "bus_name": "FLOWRELAY_BUS_NAME"}
_OUTPUTS = {"table_name": "TableName", "bus_name": "BusName"}
#: Where ``--stack`` is kept between the group and its commands (``Context.meta`` is shared by
#: the whole context tree and namespaced, so other commands' ``obj`` is left alone).
STACK_META_KEY = "flowrelay.stack"
_OUTPUTS_META_KEY = "flowrelay.stack_outputs"


class ConfigError(Exception):
    """The CLI cannot tell which stack to use, or the stack lacks what it needs (exit 2)."""


@dataclass(frozen=True)
class StackNames:
    """The resources one command works with, and the stack outputs when a stack was read (the
    ``invoke`` command fills in the functions' other environment variables from them)."""

    table_name: str
    bus_name: str
    stack: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)


def aws_client(service: str) -> Any:
    """A fresh boto3 client (not ``flowrelay.aws.clients.client``'s per-process cache: a test or a
    long-lived caller may change the endpoint or credentials between commands)."""
    import boto3
    from botocore.config import Config

    make: Any = boto3.client
    return make(service, config=Config(retries=retry_settings()))


def stack_outputs(stack: str, cloudformation: Any = None) -> dict[str, str]:
    """The outputs of a CloudFormation stack; ``ConfigError`` naming the stack if it is not
    there."""
    from botocore.exceptions import ClientError

    client = cloudformation or aws_client("cloudformation")
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        message = exc.response.get("Error", {}).get("Message", str(exc))
        region = client.meta.region_name
        raise ConfigError(f"cannot read stack {stack!r} (region {region}): {message}") from None
    if not stacks:
        raise ConfigError(f"no stack {stack!r}")
    return {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}


def resolve(
    stack_option: str | None = None,
    env: dict[str, str] | None = None,
    read_outputs: Callable[[str], dict[str, str]] = stack_outputs,
) -> StackNames:
    """The table and bus to use (see the module docstring for the order); ``ConfigError`` with
    the fix when there is no way to tell. ``read_outputs`` reads a stack's outputs."""
    environ = dict(os.environ if env is None else env)
    from_env = {key: environ.get(name) or None for key, name in _ENV_NAMES.items()}
    stack = stack_option or None
    if stack is None:
        if all(from_env.values()):
            return StackNames(
                table_name=str(from_env["table_name"]), bus_name=str(from_env["bus_name"])
            )
        stack = environ.get("FLOWRELAY_STACK") or None
        if stack is None:
            missing = [_ENV_NAMES[key] for key, value in from_env.items() if not value]
            if len(missing) == 1:
                raise ConfigError(f"{missing[0]} is not set: {NO_STACK}")
            raise ConfigError(NO_STACK)
    outputs = read_outputs(stack)
    names: dict[str, str] = {}
    for key, output in _OUTPUTS.items():
        value = outputs.get(output)
        if stack_option is None and from_env[key]:
            value = from_env[key]
        if not value:
            raise ConfigError(f"stack {stack!r} has no {output} output: is it a flowrelay stack?")
        names[key] = value
    return StackNames(stack=stack, outputs=outputs, **names)


def _outputs_for_command(context: click.Context) -> Callable[[str], dict[str, str]]:
    """``stack_outputs``, read once per stack for the running command (its table and bus, its
    queues and its launcher kinds come from one DescribeStacks)."""
    read: dict[str, dict[str, str]] = context.meta.setdefault(_OUTPUTS_META_KEY, {})

    def outputs(stack: str) -> dict[str, str]:
        if stack not in read:
            read[stack] = stack_outputs(stack)
        return read[stack]

    return outputs


def _named_stack(context: click.Context, environ: Mapping[str, str]) -> str | None:
    """The stack the running command names: ``--stack``, else ``FLOWRELAY_STACK``."""
    return context.meta.get(STACK_META_KEY) or environ.get("FLOWRELAY_STACK") or None


def current(ctx: click.Context | None = None) -> StackNames:
    """The names for the running command, from its ``--stack`` and the environment."""
    context = ctx or click.get_current_context()
    return resolve(context.meta.get(STACK_META_KEY), read_outputs=_outputs_for_command(context))


def current_outputs(
    ctx: click.Context | None = None, env: dict[str, str] | None = None
) -> dict[str, str]:
    """All outputs of the stack the running command names (``--stack``, else
    ``FLOWRELAY_STACK``), for commands that need more of it than the table and bus (the queue
    URLs). The exported table and bus names cannot stand in for a stack here: ``ConfigError``
    with the fix when no stack is named."""
    context = ctx or click.get_current_context()
    stack = _named_stack(context, os.environ if env is None else env)
    if stack is None:
        raise ConfigError(
            "this command reads the stack's outputs: set FLOWRELAY_STACK (or --stack) to your "
            "stack's name, or run `flowrelay dev up` and use the export line it prints"
        )
    return _outputs_for_command(context)(stack)


def launchable_kinds(ctx: click.Context | None = None) -> tuple[str, ...]:
    """The target kinds the stack the running command names can launch: its ``LauncherKinds``
    output (``--stack``, else ``FLOWRELAY_STACK``), else ``FLOWRELAY_LAUNCHER_KINDS``, else
    ecs only."""
    from flowrelay.core.settings import SettingsError
    from flowrelay.launchers.kinds import LAUNCHER_KINDS_VARIABLE, launcher_kinds

    context = ctx or click.get_current_context()
    stack = _named_stack(context, os.environ)
    declared = _outputs_for_command(context)(stack).get("LauncherKinds") if stack else None
    env = {LAUNCHER_KINDS_VARIABLE: declared} if declared else dict(os.environ)
    try:
        return launcher_kinds(env)
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def reports_errors(command: F) -> F:
    """Turn the errors a command can meet talking to AWS into one line and an exit code, so no
    user ever sees a botocore traceback for a wrong name, endpoint or credentials."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        from flowrelay.aws.bus import PublishError
        from flowrelay.aws.failures import aws_failure
        from flowrelay.operations import OperationError

        try:
            return command(*args, **kwargs)
        except ConfigError as exc:
            render.fail(str(exc), 2)
        except OperationError as exc:
            render.fail(str(exc), exc.code)
        except (BotoCoreError, ClientError, PublishError) as exc:
            failure = aws_failure(exc)
            if failure is None:
                raise
            render.fail(failure.message, failure.code)

    return wrapper  # type: ignore[return-value]


def open_store(names: StackNames) -> Store:
    """The table the names point at."""
    return Store(aws_client("dynamodb"), names.table_name)
