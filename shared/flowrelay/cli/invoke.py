"""``flowrelay invoke``: a function's handler, run here, wired as template.yaml wires it."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from flowrelay.cli import render
from flowrelay.cli.stack import (
    ConfigError,
    StackNames,
    current,
    current_outputs,
    reports_errors,
)
from flowrelay.devstack.lambda_emulator import LambdaContext, function_arn, load_handler


@click.command()
@click.argument("function")
@click.option(
    "--event",
    "event_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The event, as JSON (samples in events/).",
)
@click.option(
    "--template",
    "template_path",
    default="template.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The SAM template that defines the function.",
)
@reports_errors
def invoke(function: str, event_file: Path, template_path: Path) -> None:
    """Run FUNCTION's handler here, wired as template.yaml wires it, with the event in FILE.

    \b
    FUNCTION is a logical id (Dispatch) or its folder (dispatch, record_state, monitor). The
    handler runs in this process against the resolved stack's table and bus; its logs go to
    stderr and its result is printed as JSON. Exit 1 when it raises or reports failed records.

    \b
    Example:
      flowrelay invoke dispatch --event events/dispatch.json
    """
    from flowrelay.devstack.template import FunctionSpec, functions, load_template

    try:
        template = load_template(template_path)
        specs = functions(template)
    except (OSError, ValueError, KeyError) as exc:
        render.fail(f"{template_path}: {exc}", 2)
    spec: FunctionSpec | None = _find_function(specs, function)
    if spec is None:
        known = ", ".join(
            f"{logical_id} ({Path(found.code_uri).name})"
            for logical_id, found in sorted(specs.items())
        )
        render.fail(f"no function {function!r} in {template_path}: it has {known}", 2)
    try:
        event = json.loads(event_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        render.fail(f"{event_file}: not a JSON event: {exc}", 2)
    names = current()
    if not names.outputs:
        # The table and bus came from the environment; the stack, if one is named, has the rest.
        with contextlib.suppress(ConfigError):
            names = dataclasses.replace(names, outputs=current_outputs())
    code_dir = template_path.resolve().parent / spec.code_uri
    handler_file = template_path.resolve().parent / spec.handler_path
    environment, unresolved = _function_environment(template, spec, names)
    if unresolved:
        render.stderr.print(
            f"[dim]left unset (no stack outputs for them): {', '.join(sorted(unresolved))}[/]"
        )
    context = LambdaContext(
        function_name=spec.logical_id,
        invoked_function_arn=function_arn(
            spec.logical_id, os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        ),
        memory_limit_in_mb=spec.memory_size,
        timeout=spec.timeout,
        log_stream_name="flowrelay-invoke",
    )
    with _lambda_like(environment, code_dir):
        try:
            handler = load_handler(
                template_path.resolve().parent,
                spec.handler_path,
                spec.handler_function,
                spec.logical_id,
            )
        except (OSError, ImportError, AttributeError, SyntaxError) as exc:
            render.fail(f"cannot load {handler_file}: {exc}", 2)
        try:
            result = handler(event, context)
        except Exception as exc:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            render.fail(f"{spec.logical_id} raised {type(exc).__name__}: {first_line}", 1)
    render.echo_json(result)
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if failures:
        records = len(event.get("Records", [])) if isinstance(event, dict) else "?"
        render.fail(
            f"{len(failures)} of {records} records failed (SQS would deliver them again)", 1
        )


def _find_function(specs: dict[str, Any], wanted: str) -> Any:
    """A function by logical id or folder name, ignoring case."""
    for logical_id, spec in specs.items():
        folder = Path(spec.code_uri).name
        if wanted.lower() in (logical_id.lower(), folder.lower()):
            return spec
    return None


def _function_environment(
    template: dict[str, Any], spec: Any, names: StackNames
) -> tuple[dict[str, str], list[str]]:
    """The function's environment variables as Lambda would see them: literals as written, the
    table and bus from the resolved names, ``!Ref Parameter`` as its default, and any other
    intrinsic from the stack output that the template defines with the same expression. Returns
    the variables and the names that could not be resolved."""
    outputs_by_value = {
        json.dumps(definition.get("Value"), sort_keys=True): key
        for key, definition in template.get("Outputs", {}).items()
    }
    parameters = template.get("Parameters", {})
    environment: dict[str, str] = {}
    unresolved = []
    for variable, value in spec.environment.items():
        if variable == "FLOWRELAY_TABLE_NAME":
            environment[variable] = names.table_name
        elif variable == "FLOWRELAY_BUS_NAME":
            environment[variable] = names.bus_name
        elif isinstance(value, str | int | float | bool):
            environment[variable] = str(value)
        elif (output := outputs_by_value.get(json.dumps(value, sort_keys=True))) in names.outputs:
            environment[variable] = names.outputs[str(output)]  # as the stack resolved it
        elif isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters:
            environment[variable] = str(parameters[value["Ref"]].get("Default", ""))
        elif os.environ.get(variable):
            environment[variable] = os.environ[variable]  # the user set it: keep it
        elif isinstance(value, dict) and "Fn::If" in value:
            continue  # declared only when a condition holds (LocalEndpointUrl): not here
        else:
            unresolved.append(variable)
    return environment, unresolved


def _clear_function_caches() -> None:
    """Forget clients and settings cached by an earlier invocation in this process (as a fresh
    Lambda execution environment would), so the environment set for this one is read."""
    from flowrelay.handlers import wiring

    wiring.reset()


@contextmanager
def _lambda_like(environment: dict[str, str], code_dir: Path) -> Iterator[None]:
    """The function's environment variables, its code folder first on ``sys.path`` (Lambda's
    ``/var/task``), and its logs on stderr (powertools logs to the stdout it saw at import; our
    stdout is for the result). All undone afterwards."""
    from flowrelay.handlers import wiring

    saved_env = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    sys.path.insert(0, str(code_dir))
    handler = wiring.logger.registered_handler
    saved_stream = (
        handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    )
    _clear_function_caches()
    try:
        with render.task_prints_to_stderr():
            yield
    finally:
        _clear_function_caches()
        if isinstance(handler, logging.StreamHandler) and saved_stream is not None:
            handler.setStream(saved_stream)
        if str(code_dir) in sys.path:
            sys.path.remove(str(code_dir))
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
