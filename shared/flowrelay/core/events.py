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
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from flowrelay.core import jsonvalues
from flowrelay.core.clusters import ClusterPhase, ClusterSweep
from flowrelay.core.jsonvalues import field_label
from flowrelay.core.labels import check_labels
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.limits import DETAILS_BYTES, REQUEST_BYTES, json_size, over
from flowrelay.core.modeling import Model
from flowrelay.core.registration import check_flow_name
from flowrelay.core.run_configs import RunConfig
from flowrelay.core.runs import RUN_ID_PATTERN, FlowRun

SOURCE = "flowrelay"


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
    restart_of: str | None = Field(
        default=None,
        pattern=RUN_ID_PATTERN,
        description="Restart this run (of the same flow, ended other than Success): the new run "
        "reuses its checkpointed task results and runs the rest. Unless ``version`` is given, "
        "the version that run ran.",
    )

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: list[str] | None) -> list[str] | None:
        check_labels(labels)
        return labels

    @field_validator("flow")
    @classmethod
    def _check_flow(cls, flow: str) -> str:
        return check_flow_name(flow)

    @model_validator(mode="after")
    def _fits_a_run(self) -> FlowRunRequested:
        # Python callers can put what JSON cannot carry (float("nan")) where the bus's reader
        # would refuse it: refused here, before it is sent and changed.
        jsonvalues.check(
            {
                "flow": self.flow,
                "parameters": self.parameters,
                "labels": self.labels,
                "idempotency_key": self.idempotency_key,
                "requested_by": self.requested_by,
            },
            whole="request",
        )
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

    @classmethod
    def restart(cls, original: FlowRun, requested_by: str | None = None) -> FlowRunRequested:
        """The request that restarts ``original`` (``flowrelay runs retry``): its flow version,
        parameters, labels, run config and timeout, keyed so that any number of such requests
        make one restart. Raises ValidationError when the run's record no longer makes a valid
        request."""
        from flowrelay.core.run_configs import parse_run_config
        from flowrelay.core.runs import restart_key

        return cls(
            flow=original.flow_name,
            version=original.flow_version,
            parameters=original.parameters,
            labels=list(original.labels),
            run_config=(
                parse_run_config(original.run_config) if original.run_config is not None else None
            ),
            idempotency_key=restart_key(original.run_id),
            restart_of=original.run_id,
            requested_by=requested_by,
            timeout_seconds=original.timeout_seconds,
        )

    def differences(self, run: FlowRun) -> list[str]:
        """What this request asks for that the existing ``run`` (the one its ``flow_run_id`` or
        ``idempotency_key`` names) was not made with; empty when it is a repeat of the
        request that made it. Only what the request states is compared: a request that
        leaves the version, labels, run config or timeout to the registration repeats one that
        did the same, whatever the registration says now.

        >>> from datetime import UTC, datetime
        >>> now = datetime(2026, 1, 1, tzinfo=UTC)
        >>> run = FlowRun(run_id="r", flow_name="etl", parameters={"rows": 1},
        ...               created_at=now, updated_at=now, state_entered_at=now)
        >>> FlowRunRequested(flow="etl", parameters={"rows": 2}).differences(run)
        ['parameters: rows is 2 here, 1 on the run']
        """
        found: list[str] = []
        if self.flow != run.flow_name:
            found.append(f"flow: {self.flow!r} here, {run.flow_name!r} on the run")
        if self.version is not None and self.version != run.flow_version:
            found.append(f"version: {self.version} here, {run.flow_version} on the run")
        if self.parameters != run.parameters:
            found.append(f"parameters: {_what_differs(self.parameters, run.parameters)}")
        labels = self.labels
        if labels is None and self.run_config is not None and self.run_config.labels:
            labels = list(self.run_config.labels)
        if labels is not None and sorted(set(labels)) != sorted(run.labels):
            found.append(f"labels: {sorted(set(labels))} here, {sorted(run.labels)} on the run")
        if self.run_config is not None and self.run_config.model_dump(mode="json") != (
            run.run_config
        ):
            found.append("run_config: not the run config the run was made with")
        if self.restart_of is not None and self.restart_of != run.restart_of:
            recorded = run.restart_of or "none"
            found.append(f"restart_of: {self.restart_of} here, {recorded} on the run")
        if self.timeout_seconds is not None and self.timeout_seconds != run.timeout_seconds:
            recorded = "none" if run.timeout_seconds is None else f"{run.timeout_seconds:g}"
            found.append(f"timeout_seconds: {self.timeout_seconds:g} here, {recorded} on the run")
        return found


def _what_differs(asked: Mapping[str, Any], recorded: Mapping[str, Any]) -> str:
    """The parameters that differ, named (at most three), with short values."""
    names = sorted(
        name
        for name in asked.keys() | recorded.keys()
        if name not in asked or name not in recorded or asked[name] != recorded[name]
    )
    parts = []
    for name in names[:3]:
        if name not in recorded:
            parts.append(f"{name} is given here, not on the run")
        elif name not in asked:
            parts.append(f"{name} is on the run, not given here")
        else:
            parts.append(
                f"{name} is {_short(asked[name])} here, {_short(recorded[name])} on the run"
            )
    if len(names) > 3:
        parts.append(f"and {len(names) - 3} more")
    return "; ".join(parts)


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def details_that_fit(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` if they fit in a history item, else ``ValueError`` saying by how much not."""
    size = json_size(details)
    if size > DETAILS_BYTES:
        raise ValueError(over("details", size, DETAILS_BYTES, "they are kept in the run's history"))
    return details


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
        return details_that_fit(details)


class FlowRunClusterChanged(FlowrelayEvent):
    """The run's ephemeral Dask cluster is starting (reported before it is created, so it can
    always be found and swept), started, scaled, closed, failed to start or close, or swept of
    what was left behind. ``workers``: how many workers it has now, when known."""

    DETAIL_TYPE: ClassVar[str] = "Flow Run Cluster Changed"

    flow_run_id: str = Field(pattern=RUN_ID_PATTERN)
    phase: ClusterPhase
    cluster: ClusterSweep
    source: Source = Source.RUNNER
    message: str = Field(max_length=8192)
    workers: int | None = Field(default=None, ge=0)
    timestamp: AwareDatetime = Field(default_factory=_now)
    event_id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=128)
    details: dict[str, Any] = Field(
        default_factory=dict, description="The scheduler, the dashboard, what a sweep stopped."
    )

    @field_validator("details")
    @classmethod
    def _details_fit(cls, details: dict[str, Any]) -> dict[str, Any]:
        return details_that_fit(details)


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
        FlowRunClusterChanged,
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
        data = jsonvalues.loads(raw, whole="event") if isinstance(raw, (str, bytes)) else raw
        if not isinstance(raw, (str, bytes)):
            jsonvalues.check(raw, whole="event")
    except jsonvalues.JsonValueError as exc:
        raise EventError(str(exc)) from None
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
