"""Hypothesis strategies for flowrelay's events, shared by the unit and integration fuzz tests.

``VALID_DETAILS`` holds one strategy per detail model the stack's queues carry
(``EVERY_DETAIL_MODEL``: flowrelay's own, ``flowrelay.core.events.DETAIL_MODELS``, and ECS's task
events); a unit test fails when a model is added without one; ``near_valid`` breaks one field of a
valid detail and says which field it broke, so tests can check that the error names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, timedelta, timezone
from typing import Any, Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from pydantic import BaseModel

from flowrelay.core.contract import RUNNER_OWNED
from flowrelay.core.events import (
    DETAIL_MODELS,
    SOURCE,
    FlowRunCancelRequested,
    FlowRunClusterChanged,
    FlowRunRequested,
    FlowRunStateChanged,
    TaskRunStateChanged,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.launchers.ecs.events import SOURCE as ECS_SOURCE
from flowrelay.launchers.ecs.names import GROUP_PREFIX
from flowrelay.launchers.ecs.status import EcsTaskStateChange

# --- plain JSON -------------------------------------------------------------------------------

short_text = st.text(max_size=30)
names = st.text(min_size=1, max_size=30)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | short_text
)
json_values: SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(short_text, children, max_size=4)
    ),
    max_leaves=20,
)
json_objects: SearchStrategy[dict[str, Any]] = st.dictionaries(short_text, json_values, max_size=6)

#: Run ids as the models accept them. Not ``from_regex(RUN_ID_PATTERN)``: Python's ``$`` also
#: matches before a trailing newline, which pydantic's pattern (Rust regex) rejects.
run_ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True)

# --- run configs (valid ones; tests/core/test_run_configs.py covers the invalid) -------------

#: Text a person can read: no control characters (names and labels refuse them).
_readable = st.characters(blacklist_categories=("Cs", "Cc"))
#: Labels as ``flowrelay.core.labels.check_label`` takes them.
labels = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=","),
    min_size=1,
    max_size=20,
).filter(lambda label: label == label.strip() and bool(label))
_labels = st.lists(labels, max_size=3)
_env = st.dictionaries(
    st.text(min_size=1, max_size=10).filter(
        lambda name: "=" not in name and "\x00" not in name and name not in RUNNER_OWNED
    ),
    short_text,
    max_size=3,
)
_common = {"env": _env, "labels": _labels}
run_configs: SearchStrategy[dict[str, Any]] = st.one_of(
    st.fixed_dictionaries({"type": st.just("UniversalRun")}, optional=_common),
    st.fixed_dictionaries(
        {"type": st.just("LocalRun")}, optional={**_common, "working_dir": names}
    ),
    st.fixed_dictionaries(
        {"type": st.just("DockerRun")},
        optional={
            **_common,
            "image": names,
            "ports": st.lists(st.integers(1, 65535), max_size=3),
            "host_config": json_objects,
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("KubernetesRun")},
        optional={
            **_common,
            "image": names,
            "cpu_limit": st.sampled_from(["2", "1.5", "500m"]),
            "memory_request": st.sampled_from(["512Mi", "2Gi", "1G"]),
            "image_pull_policy": st.sampled_from(["Always", "IfNotPresent", "Never"]),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("ECSRun")},
        optional={
            **_common,
            "image": names,
            "cpu": st.sampled_from(["1024", "1 vcpu", "0.5 vcpu"]),
            "memory": st.sampled_from(["2048", "2 GB"]),
            "run_task_kwargs": json_objects,
        },
    ),
)

# --- valid details, one strategy per model ----------------------------------------------------

_offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
timestamps = st.datetimes(timezones=st.none() | _offsets).map(lambda moment: moment.isoformat())

flow_run_requested: SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"flow": st.text(alphabet=_readable, min_size=1, max_size=40).filter(str.strip)},
    optional={
        "schema_version": st.just(1),
        "version": st.none() | st.integers(min_value=1),
        "parameters": json_objects,
        "labels": st.none() | _labels,
        "run_config": st.none() | run_configs,
        "idempotency_key": st.none() | names,
        "flow_run_id": st.none() | run_ids,
        "requested_by": st.none() | short_text,
        "timeout_seconds": st.none()
        | st.floats(min_value=0, exclude_min=True, allow_infinity=False),
        "restart_of": st.none() | run_ids,
    },
)
flow_run_state_changed: SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "flow_run_id": run_ids,
        "state": st.sampled_from([str(state) for state in RunState]),
        "source": st.sampled_from([str(source) for source in Source]),
    },
    optional={
        "schema_version": st.just(1),
        "message": st.none() | short_text,
        "timestamp": timestamps,
        "event_id": names,
        "heartbeat": st.booleans(),
        "details": json_objects,
    },
)
flow_run_cancel_requested: SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"flow_run_id": run_ids},
    optional={
        "schema_version": st.just(1),
        "reason": st.none() | short_text,
        "requested_by": st.none() | short_text,
    },
)
task_run_state_changed: SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"flow_run_id": run_ids, "task": names, "state": names},
    optional={
        "schema_version": st.just(1),
        "map_index": st.none() | st.integers(min_value=0),
        "message": st.none() | short_text,
    },
)
_cluster_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,34}[a-z0-9])?", fullmatch=True)
flow_run_cluster_changed: SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "flow_run_id": run_ids,
        "phase": st.sampled_from(["starting", "started", "scaled", "closed", "failed", "swept"]),
        "cluster": st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["ecs", "kubernetes"]),
                "name": _cluster_names,
                "cluster_class": names,
            },
            optional={"where": json_objects},
        ),
        "message": short_text,
    },
    optional={
        "schema_version": st.just(1),
        "workers": st.none() | st.integers(min_value=0, max_value=10_000),
        "details": json_objects,
        # A report's time must say its zone (it is compared with the table's).
        "timestamp": st.datetimes(timezones=_offsets).map(lambda moment: moment.isoformat()),
        "source": st.sampled_from([str(Source.RUNNER), str(Source.MONITOR)]),
        "event_id": names,
    },
)
_ecs_statuses = st.sampled_from(
    ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "STOPPED"]
)
_containers = st.fixed_dictionaries(
    {},
    optional={
        "name": st.none() | short_text,
        "lastStatus": st.none() | _ecs_statuses,
        "exitCode": st.none() | st.integers(-(2**31), 2**31),
        "reason": st.none() | short_text,
        "containerArn": short_text,  # AWS sends more than the model reads
    },
)
ecs_task_state_change: SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {"taskArn": names, "lastStatus": _ecs_statuses, "version": st.integers(min_value=0)},
    optional={
        "clusterArn": st.none() | short_text,
        "desiredStatus": st.none() | _ecs_statuses,
        "group": st.none() | short_text | run_ids.map(GROUP_PREFIX.__add__),
        "startedBy": st.none() | short_text,
        "stopCode": st.none() | short_text,
        "stoppedReason": st.none() | short_text,
        "containers": st.lists(_containers, max_size=3),
        "taskDefinitionArn": st.none() | short_text,
        "someFieldAwsAddsLater": json_values,
    },
)

VALID_DETAILS: dict[type[BaseModel], SearchStrategy[dict[str, Any]]] = {
    FlowRunRequested: flow_run_requested,
    FlowRunStateChanged: flow_run_state_changed,
    FlowRunCancelRequested: flow_run_cancel_requested,
    TaskRunStateChanged: task_run_state_changed,
    FlowRunClusterChanged: flow_run_cluster_changed,
    EcsTaskStateChange: ecs_task_state_change,
}


#: Every detail model the stack's queues carry, by (source, detail-type).
EVERY_DETAIL_MODEL: dict[tuple[str, str], type[BaseModel]] = {
    **DETAIL_MODELS,
    (ECS_SOURCE, EcsTaskStateChange.DETAIL_TYPE): EcsTaskStateChange,
}
#: ``parse_event``'s readers for the events that are not flowrelay's own, as their models (the
#: launchers' readers turn them into ``InfraEvent``s; here the models themselves are fuzzed).
MODEL_READERS = {(ECS_SOURCE, EcsTaskStateChange.DETAIL_TYPE): EcsTaskStateChange.model_validate}


# --- envelopes --------------------------------------------------------------------------------


def source_of(model: type[BaseModel]) -> str:
    return ECS_SOURCE if model is EcsTaskStateChange else SOURCE


def detail_type_of(model: type[BaseModel]) -> str:
    detail_type: str = getattr(model, "DETAIL_TYPE")  # noqa: B009 - a ClassVar of each model
    return detail_type


def envelope(
    detail_type: str, detail: Any, source: str = SOURCE, event_id: str = "e-1", **extra: Any
) -> dict[str, Any]:
    """An EventBridge event as it reaches SQS in the dev stack (moto leaves out ``account``)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": detail_type,
        "source": source,
        "time": "2026-11-23T12:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
        **extra,
    }


def event_of(model: type[BaseModel], detail: Any, event_id: str = "e-1") -> dict[str, Any]:
    return envelope(detail_type_of(model), detail, source=source_of(model), event_id=event_id)


def valid_events(model: type[BaseModel]) -> SearchStrategy[dict[str, Any]]:
    return VALID_DETAILS[model].map(lambda detail: event_of(model, detail))


# --- near-valid: one field broken -------------------------------------------------------------

Mutation = Literal["removed", "wrong_type", "extra", "changed"]


@dataclass(frozen=True)
class NearValid:
    """A valid detail with one field broken. ``must_fail``: no model could accept it (a required
    field removed or given a non-scalar, or an unknown field on a strict model); otherwise the
    new value may happen to be acceptable (e.g. ``"3"`` for an int)."""

    detail: dict[str, Any]
    field: str
    mutation: Mutation
    must_fail: bool


#: Values of the wrong JSON type for every scalar field of the event models.
non_scalars: SearchStrategy[Any] = st.one_of(
    st.none(),
    st.lists(json_values, max_size=3),
    st.dictionaries(short_text, json_values, max_size=3),
)


def is_strict(model: type[BaseModel]) -> bool:
    return model.model_config.get("extra") == "forbid"


@st.composite
def near_valid(draw: st.DrawFn, model: type[BaseModel], detail: dict[str, Any]) -> NearValid:
    """``detail`` (valid for ``model``) with one field removed, replaced or added."""
    fields = model.model_fields
    required = sorted(name for name, info in fields.items() if info.is_required())
    choices: list[Mutation] = ["changed"]
    if required:
        choices += ["removed", "wrong_type"]
    if is_strict(model):
        choices.append("extra")
    mutation = draw(st.sampled_from(choices))
    mutated = dict(detail)
    if mutation == "removed":
        field = draw(st.sampled_from(required))
        del mutated[field]
        return NearValid(mutated, field, mutation, must_fail=True)
    if mutation == "wrong_type":
        field = draw(st.sampled_from(required))
        mutated[field] = draw(non_scalars)
        return NearValid(mutated, field, mutation, must_fail=True)
    if mutation == "extra":
        # A non-empty name: an empty one is reported as plain "detail: ..." (a strict xfail in
        # tests/core/test_event_fuzz.py).
        field = draw(names.filter(lambda name: name not in fields))
        mutated[field] = draw(json_values)
        return NearValid(mutated, field, mutation, must_fail=True)
    field = draw(st.sampled_from(sorted(fields)))
    mutated[field] = draw(json_values | st.sampled_from(["", "x", -1, 0, 1.5, True]))
    return NearValid(mutated, field, mutation, must_fail=False)


# --- garbage ----------------------------------------------------------------------------------

#: JSON that Python's json module cannot read although it is well-formed: nested deeper than the
#: recursion limit (far deeper: hypothesis raises the limit while a test runs), or an integer
#: over the 4300-digit limit.
unreadable_json: SearchStrategy[str] = st.one_of(
    st.integers(20_000, 40_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(20_000, 40_000).map(
        lambda depth: (
            json.dumps(envelope("Flow Run Requested", {"flow": "etl"}))[:-1]
            + ', "x": '
            + '{"a": ' * depth
            + "1"
            + "}" * depth
            + "}"
        )
    ),
    st.integers(4_301, 6_000).map(lambda digits: '{"detail": ' + "7" * digits + "}"),
)

#: Message bodies that are not events at all: text, JSON that is not an object, objects that are
#: not EventBridge events, envelopes with a random detail, and JSON too deep or long to read.
garbage_bodies: SearchStrategy[str] = st.one_of(
    unreadable_json,
    st.text(max_size=60),
    json_values.map(json.dumps),
    json_objects.map(json.dumps),
    st.builds(
        lambda detail_type, detail: json.dumps(envelope(detail_type, detail)),
        st.sampled_from([*(detail_type_of(model) for model in VALID_DETAILS), "Other"]),
        json_values,
    ),
)
