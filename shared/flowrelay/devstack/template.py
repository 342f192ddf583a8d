"""Reading template.yaml, the one definition of flowrelay's AWS resources.

Besides loading the template, this module says what the template's functions are and what
triggers them (``function_event_sources``), so the embedded dev stack can feed the functions as
Lambda would: from the SQS queues and schedules the template names, not from a copy of them.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class _CloudFormationLoader(yaml.SafeLoader):
    """A YAML loader that keeps CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ...)
    as ``{"Ref": ...}`` / ``{"Fn::GetAtt": ...}`` instead of refusing them."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: str | Path) -> dict[str, Any]:
    """template.yaml as a dict, intrinsic functions in their long form."""
    loaded = yaml.load(Path(path).read_text(), Loader=_CloudFormationLoader)
    if not isinstance(loaded, dict) or "Resources" not in loaded:
        raise ValueError(f"{path} is not a CloudFormation/SAM template (no Resources)")
    return loaded


def resource_properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """The ``Properties`` of one resource, by logical id."""
    try:
        resource = template["Resources"][logical_id]
    except KeyError:
        raise KeyError(f"template has no resource {logical_id!r}") from None
    return dict(resource.get("Properties", {}))


# --- functions and what triggers them ----------------------------------------------------------

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_SQS_DEFAULT_BATCH_SIZE = 10  # Lambda's default for SQS event sources
# What Lambda accepts for an SQS event source mapping (CreateEventSourceMapping): a template
# outside these bounds would fail to deploy, so the dev stack refuses it too.
_SQS_BATCH_SIZE_RANGE = (1, 10_000)
_SQS_BATCHING_WINDOW_RANGE = (0, 300)
_SQS_MAXIMUM_CONCURRENCY_RANGE = (2, 1000)


@dataclass(frozen=True)
class FunctionSpec:
    """An ``AWS::Serverless::Function`` with the template's ``Globals`` applied."""

    logical_id: str
    code_uri: str
    handler: str
    timeout: int
    memory_size: int
    environment: dict[str, Any] = field(default_factory=dict)
    """``Environment.Variables`` (globals and the function's own), intrinsics unresolved."""

    @property
    def handler_path(self) -> str:
        """The handler's source file relative to the template: ``functions/dispatch/app.py``."""
        module, _, _ = self.handler.rpartition(".")
        return posixpath.join(self.code_uri, *module.split(".")) + ".py"

    @property
    def handler_function(self) -> str:
        """The name of the handler callable in its module: ``handler``."""
        return self.handler.rpartition(".")[2]


@dataclass(frozen=True)
class EventSource:
    """One trigger of one function, as Lambda would wire it: an SQS queue it polls or a
    schedule it runs on."""

    function: str
    """Logical id of the function."""
    name: str
    """The event's key under the function's ``Events``."""
    kind: Literal["sqs", "schedule"]
    handler_path: str
    """The handler's source file relative to the template: ``functions/dispatch/app.py``."""
    handler_function: str
    """The handler callable in that file: ``handler``."""
    timeout: int
    """The function's timeout in seconds."""
    enabled: bool = True
    queue: str | None = None
    """SQS: logical id of the queue."""
    batch_size: int | None = None
    """SQS: at most this many messages per invocation."""
    maximum_batching_window_seconds: int = 0
    """SQS: how long Lambda waits to fill a batch before invoking with what it has (0: it
    invokes with what one poll returned)."""
    maximum_concurrency: int | None = None
    """SQS: ``ScalingConfig.MaximumConcurrency``, the most batches of this source in flight at
    once; None when the template sets none (Lambda then scales by its own rules)."""
    report_batch_item_failures: bool = False
    """SQS: the handler returns ``batchItemFailures`` and only those messages are retried."""
    schedule: str | None = None
    """Schedule: the expression, ``rate(1 minute)`` or ``cron(...)``."""

    @property
    def interval_seconds(self) -> int | None:
        """Schedule: seconds between runs of a ``rate(...)`` expression; None for cron."""
        return rate_seconds(self.schedule) if self.schedule else None


def rate_seconds(expression: str) -> int | None:
    """Seconds between runs of an EventBridge ``rate(...)`` expression, None for anything else.

    >>> rate_seconds("rate(1 minute)"), rate_seconds("rate(2 hours)")
    (60, 7200)
    >>> rate_seconds("cron(0 12 * * ? *)") is None
    True
    """
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    unit = match.group(2).removesuffix("s")
    return int(match.group(1)) * _RATE_UNIT_SECONDS[unit]


def functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """Every ``AWS::Serverless::Function`` by logical id, with ``Globals.Function`` applied."""
    globals_ = dict(template.get("Globals", {}).get("Function", {}))
    specs: dict[str, FunctionSpec] = {}
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        own = dict(resource.get("Properties", {}))
        merged = {**globals_, **own}
        environment = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **own.get("Environment", {}).get("Variables", {}),
        }
        missing = [key for key in ("CodeUri", "Handler") if not isinstance(merged.get(key), str)]
        if missing:
            raise ValueError(f"function {logical_id}: no literal {' or '.join(missing)}")
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            code_uri=str(merged["CodeUri"]).rstrip("/"),
            handler=str(merged["Handler"]),
            timeout=_literal_int(merged.get("Timeout", 3), logical_id, "Timeout"),
            memory_size=_literal_int(merged.get("MemorySize", 128), logical_id, "MemorySize"),
            environment=environment,
        )
    return specs


def function_event_sources(template: dict[str, Any]) -> dict[str, list[EventSource]]:
    """What triggers each function, by function logical id (a function with no events maps to an
    empty list). Only the triggers flowrelay uses are understood, SQS queues of this template and
    schedules; any other kind raises ``ValueError`` instead of being silently left unwired."""
    sources: dict[str, list[EventSource]] = {}
    for logical_id, spec in functions(template).items():
        events = template["Resources"][logical_id].get("Properties", {}).get("Events", {})
        sources[logical_id] = [
            _event_source(template, spec, name, event) for name, event in events.items()
        ]
    return sources


def _event_source(
    template: dict[str, Any], spec: FunctionSpec, name: str, event: dict[str, Any]
) -> EventSource:
    where = f"function {spec.logical_id}, event {name}"
    kind = event.get("Type")
    properties = dict(event.get("Properties", {}))
    common: dict[str, Any] = {
        "function": spec.logical_id,
        "name": name,
        "handler_path": spec.handler_path,
        "handler_function": spec.handler_function,
        "timeout": spec.timeout,
    }
    if kind == "SQS":
        queue = _get_att_target(properties.get("Queue"), "Arn")
        if queue is None or template["Resources"].get(queue, {}).get("Type") != "AWS::SQS::Queue":
            raise ValueError(f"{where}: Queue must be !GetAtt <queue in this template>.Arn")
        batch_size = _literal_int(
            properties.get("BatchSize", _SQS_DEFAULT_BATCH_SIZE), where, "BatchSize"
        )
        window = _literal_int(
            properties.get("MaximumBatchingWindowInSeconds", 0),
            where,
            "MaximumBatchingWindowInSeconds",
        )
        _within(batch_size, _SQS_BATCH_SIZE_RANGE, where, "BatchSize")
        _within(window, _SQS_BATCHING_WINDOW_RANGE, where, "MaximumBatchingWindowInSeconds")
        if batch_size > 10 and window < 1:
            # Lambda: "Maximum batch size over 10 requires a batching window of at least 1 s".
            raise ValueError(f"{where}: a BatchSize over 10 needs MaximumBatchingWindowInSeconds")
        return EventSource(
            **common,
            kind="sqs",
            enabled=properties.get("Enabled", True) is not False,
            queue=queue,
            batch_size=batch_size,
            maximum_batching_window_seconds=window,
            maximum_concurrency=_maximum_concurrency(properties.get("ScalingConfig"), where),
            report_batch_item_failures="ReportBatchItemFailures"
            in properties.get("FunctionResponseTypes", []),
        )
    if kind == "Schedule":
        schedule = properties.get("Schedule")
        if not isinstance(schedule, str):
            raise ValueError(f"{where}: Schedule must be a literal rate(...) or cron(...)")
        enabled = properties.get("Enabled", True) is not False and properties.get(
            "State", "ENABLED"
        ) in ("ENABLED", None)
        return EventSource(**common, kind="schedule", enabled=enabled, schedule=schedule)
    raise ValueError(f"{where}: event type {kind!r} is not supported (SQS and Schedule are)")


def _maximum_concurrency(scaling: Any, where: str) -> int | None:
    """``ScalingConfig.MaximumConcurrency`` of an SQS event, None when it sets none."""
    if scaling is None:
        return None
    if not isinstance(scaling, dict) or not set(scaling) <= {"MaximumConcurrency"}:
        raise ValueError(f"{where}: ScalingConfig takes only MaximumConcurrency, got {scaling!r}")
    if "MaximumConcurrency" not in scaling:
        return None
    value = _literal_int(scaling["MaximumConcurrency"], where, "MaximumConcurrency")
    _within(value, _SQS_MAXIMUM_CONCURRENCY_RANGE, where, "MaximumConcurrency")
    return value


def _within(value: int, bounds: tuple[int, int], where: str, name: str) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{where}: {name} must be from {low} to {high}, got {value}")


def _get_att_target(value: Any, attribute: str) -> str | None:
    """The logical id in ``{"Fn::GetAtt": [id, attribute]}`` (or ``"id.attribute"``)."""
    if not isinstance(value, dict) or set(value) != {"Fn::GetAtt"}:
        return None
    target = value["Fn::GetAtt"]
    if isinstance(target, str):
        target = target.split(".", 1)
    if isinstance(target, list) and len(target) == 2 and target[1] == attribute:
        return str(target[0])
    return None


def _literal_int(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{where}: {name} must be a literal number, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{where}: {name} must be a literal number, got {value!r}") from None
