"""The events on the flowrelay bus, and how any event the control plane receives is parsed.

Every event is an EventBridge envelope whose ``detail`` is one of the models here, chosen by
``source`` and ``detail-type`` (infrastructure events, such as ECS's task state changes, are
read by their launcher's reader). ``parse_event`` turns raw JSON into (envelope, detail) or raises
``EventError`` with a message naming every bad field::

    >>> event = parse_event({
    ...     "version": "0", "id": "e-1", "source": "flowrelay", "time": "2026-01-01T00:00:00Z",
    ...     "region": "us-east-1", "resources": [], "detail-type": "Flow Run Requested",
    ...     "detail": {"flow": "etl", "parameters": {"rows": 10}}})
    >>> event.detail.flow, event.detail.parameters
    ('etl', {'rows': 10})

Our own events are versioned (``schema_version``) and strict: an unknown field is an error, so a
misspelt ``paramters`` is caught where it is sent instead of being silently dropped. The
launchers read AWS's events leniently: AWS adds fields over time.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.limits import DETAILS_BYTES, REQUEST_BYTES, json_size, over
from flowrelay.core.modeling import Model
from flowrelay.core.run_configs import RunConfig
from flowrelay.core.runs import RUN_ID_PATTERN

SOURCE = "flowrelay"
#: How deep an event's values may nest. Far beyond any real parameters, and well inside what
#: pydantic can write back (255 levels): what parses can always be stored on its run.
MAX_NESTING = 64


class EventError(ValueError):
    """An event that cannot be used; the message names what is wrong with it."""


def _now() -> datetime:
    return datetime.now(UTC)


class FlowrelayEvent(Model):
    """Base of the events flowrelay publishes on its bus."""

    model_config = ConfigDict(extra="forbid")
    DETAIL_TYPE: ClassVar[str]

    schema_version: Literal[1] = 1

    def entry(self, bus_name: str) -> dict[str, Any]:
        """This event as one ``PutEvents`` entry for ``bus_name``."""
        return {
            "Source": SOURCE,
            "DetailType": self.DETAIL_TYPE,
            "Detail": self.model_dump_json(exclude_none=True),
            "EventBusName": bus_name,
        }


class FlowRunRequested(FlowrelayEvent):
    """Please run this flow. Delivered at least once: ``flow_run_id`` or ``idempotency_key``
    make repeated deliveries (and repeated requests) create one run."""

    DETAIL_TYPE: ClassVar[str] = "Flow Run Requested"

    flow: str = Field(min_length=1, max_length=256, description="Registered flow name.")
    version: int | None = Field(default=None, ge=1, description="Flow version; latest if unset.")
    parameters: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] | None = Field(
        default=None, description="Replace the registered labels for this run."
    )
    run_config: RunConfig | None = Field(
        default=None, description="Replace the registered run config for this run."
    )
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    flow_run_id: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    requested_by: str | None = Field(default=None, max_length=256)
    timeout_seconds: float | None = Field(
        default=None, gt=0, description="Stop the run and make it TimedOut after this long running."
    )

    @model_validator(mode="after")
    def _fits_a_run(self) -> FlowRunRequested:
        carried = {
            "parameters": self.parameters,
            "run_config": self.run_config.model_dump(mode="json") if self.run_config else None,
            "labels": self.labels,
        }
        size = json_size(carried)
        if size > REQUEST_BYTES:
            raise ValueError(
                over(
                    "the run's parameters, run config and labels",
                    size,
                    REQUEST_BYTES,
                    "a run is one DynamoDB item of at most 400 KB; pass large inputs by "
                    "reference, e.g. an S3 key",
                )
            )
        return self


class FlowRunStateChanged(FlowrelayEvent):
    """A run moved (or someone proposes that it moves) to ``state``."""

    DETAIL_TYPE: ClassVar[str] = "Flow Run State Changed"

    flow_run_id: str = Field(pattern=RUN_ID_PATTERN)
    state: RunState
    source: Source
    message: str | None = Field(default=None, max_length=8192)
    timestamp: datetime = Field(default_factory=_now)
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=128)
    heartbeat: bool = Field(default=False, description="A heartbeat: no change of state.")
    details: dict[str, Any] = Field(
        default_factory=dict, description="Where logs are, the failing task, exit codes, ..."
    )

    @field_validator("details")
    @classmethod
    def _details_fit(cls, details: dict[str, Any]) -> dict[str, Any]:
        size = json_size(details)
        if size > DETAILS_BYTES:
            raise ValueError(
                over("details", size, DETAILS_BYTES, "they are kept in the run's history")
            )
        return details


class FlowRunCancelRequested(FlowrelayEvent):
    """Please stop this run."""

    DETAIL_TYPE: ClassVar[str] = "Flow Run Cancel Requested"

    flow_run_id: str = Field(pattern=RUN_ID_PATTERN)
    reason: str | None = Field(default=None, max_length=1024)
    requested_by: str | None = Field(default=None, max_length=256)


class TaskRunStateChanged(FlowrelayEvent):
    """A task inside a run finished (optional, for progress views)."""

    DETAIL_TYPE: ClassVar[str] = "Task Run State Changed"

    flow_run_id: str = Field(pattern=RUN_ID_PATTERN)
    task: str = Field(min_length=1)
    map_index: int | None = Field(default=None, ge=0)
    state: str = Field(min_length=1)
    message: str | None = Field(default=None, max_length=8192)


class Envelope(Model):
    """An EventBridge event. Our own model rather than powertools' ``EventBridgeModel``:
    importing that loads every AWS event model powertools ships (over 100 ms of cold start,
    measured in BENCHMARKS.md). ``account`` is optional: EventBridge-to-SQS delivery in moto
    (the dev stack) leaves it out."""

    model_config = ConfigDict(populate_by_name=True)

    version: str
    id: str
    source: str
    account: str | None = None
    time: datetime
    region: str
    resources: list[str] = Field(default_factory=list)
    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    replay_name: str | None = Field(default=None, alias="replay-name")


DETAIL_MODELS: dict[tuple[str, str], type[BaseModel]] = {
    (SOURCE, model.DETAIL_TYPE): model
    for model in (
        FlowRunRequested,
        FlowRunStateChanged,
        FlowRunCancelRequested,
        TaskRunStateChanged,
    )
}
#: Reads the ``detail`` of one kind of event (source, detail-type) into its model; raises
#: ``pydantic.ValidationError`` when the detail does not fit.
DetailReader = Callable[[Mapping[str, Any]], Any]


class ParsedEvent(Model):
    envelope: Envelope
    detail: Any


def parse_event(
    raw: str | bytes | dict[str, Any],
    readers: Mapping[tuple[str, str], DetailReader] | None = None,
) -> ParsedEvent:
    """The envelope and typed detail of one EventBridge event; ``EventError`` if unusable.

    flowrelay's own events are read by their models; ``readers`` read other sources' events
    (the launchers' infrastructure events: ``flowrelay.launchers.kinds.event_readers``).
    """
    try:
        data = (
            json.loads(raw, parse_constant=_reject_constant)
            if isinstance(raw, (str, bytes))
            else raw
        )
    except json.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise EventError(f"not JSON: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:  # e.g. an integer literal over Python's digit limit
        raise EventError(f"not JSON: {exc}") from None
    except RecursionError:
        raise EventError("not JSON that can be read: nested too deeply") from None
    if not isinstance(data, dict):
        raise EventError(f"an event must be a JSON object, got {type(data).__name__}")
    _check_values(data)
    try:
        envelope = Envelope.model_validate(data)
    except ValidationError as exc:
        raise EventError(f"not an EventBridge event: {describe(exc)}") from None
    key = (envelope.source, envelope.detail_type)
    model = DETAIL_MODELS.get(key)
    reader: DetailReader | None = model.model_validate if model is not None else None
    if reader is None and readers is not None:
        reader = readers.get(key)
    if reader is None:
        raise EventError(
            f"unknown event: source {envelope.source!r}, detail-type {envelope.detail_type!r}"
        )
    try:
        detail = reader(envelope.detail)
    except ValidationError as exc:
        raise EventError(f"{envelope.detail_type}: {describe(exc, 'detail')}") from None
    return ParsedEvent(envelope=envelope, detail=detail)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_values(data: dict[str, Any]) -> None:
    """Refuse what JSON cannot carry or a run cannot store: non-finite numbers (Python reads
    ``NaN``; pydantic would write it back as null, changing the parameters) and nesting deeper
    than ``MAX_NESTING``. Iterative, so no input can exhaust the stack."""
    pending: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while pending:
        value, path = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            raise EventError(f"{_path(path)}: {value} is not a JSON number")
        if isinstance(value, dict | list):
            if len(path) >= MAX_NESTING:
                raise EventError(f"{_path(path[:4])}: nested deeper than {MAX_NESTING} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            pending.extend((item, (*path, field_label(key))) for key, item in items)


def _path(path: tuple[str, ...]) -> str:
    return ".".join(path) or "event"


def field_label(part: int | str) -> str:
    """A location part as a reader can tell it apart: odd names (empty, with dots or spaces)
    quoted. ``field_label("flow") == "flow"``; ``field_label("") == "''"``."""
    text = str(part)
    return text if text and text.replace("_", "").replace("-", "").isalnum() else repr(text)


def describe(error: ValidationError, prefix: str | None = None) -> str:
    """A pydantic error as one line naming each bad field: ``detail.flow: Field required``."""
    parts = []
    for item in error.errors(include_url=False):
        location = ".".join(field_label(part) for part in item["loc"])
        if prefix:
            location = f"{prefix}.{location}" if location else prefix
        message = item["msg"].removeprefix("Value error, ")
        parts.append(f"{location or 'event'}: {message}")
    return "; ".join(parts)


def event_json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of each event's detail, by detail-type."""
    return {
        model.DETAIL_TYPE: model.model_json_schema()  # type: ignore[attr-defined]
        for model in DETAIL_MODELS.values()
    }
