"""Event models: valid events parse, bad ones fail with a reason naming the field, and nothing
else ever escapes the parser."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowrelay.core.events import (
    EventError,
    FlowRunCancelRequested,
    FlowRunRequested,
    FlowRunStateChanged,
    TaskRunStateChanged,
    parse_event,
)
from flowrelay.core.lifecycle import RunState, Source
from flowrelay.core.run_configs import ECSRun
from flowrelay.launchers.base import InfraEvent
from flowrelay.launchers.ecs.status import EcsTaskStateChange
from flowrelay.launchers.kinds import event_readers
from tests.support.strategies import envelope


def test_flow_run_requested_with_every_field() -> None:
    event = parse_event(
        envelope(
            "Flow Run Requested",
            {
                "flow": "etl",
                "version": 3,
                "parameters": {"rows": 10, "names": ["a"]},
                "labels": ["prod"],
                "run_config": {"type": "ECSRun", "cpu": "1 vcpu"},
                "idempotency_key": "nightly-2026-11-23",
                "flow_run_id": "run-123",
                "requested_by": "scheduler",
            },
            account="123456789012",
        )
    )
    detail = event.detail
    assert isinstance(detail, FlowRunRequested)
    assert detail.run_config == ECSRun(cpu="1 vcpu")
    assert event.envelope.account == "123456789012"


def test_a_json_string_body_parses_like_a_dict() -> None:
    body = json.dumps(envelope("Flow Run Requested", {"flow": "etl"}))
    assert parse_event(body).detail == FlowRunRequested(flow="etl")


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ({}, "detail.flow: Field required"),
        (
            {"flow": "etl", "version": 0},
            "detail.version: Input should be greater than or equal to 1",
        ),
        ({"flow": "etl", "paramters": {}}, "detail.paramters: Extra inputs are not permitted"),
        (
            {"flow": "etl", "parameters": [1]},
            "detail.parameters: Input should be a valid dictionary",
        ),
        (
            {"flow": "etl", "flow_run_id": "../etc"},
            "detail.flow_run_id: String should match pattern",
        ),
        (
            {"flow": "etl", "run_config": {"type": "ECSRun", "cpu": "2 cores"}},
            "detail.run_config.ECSRun.cpu",
        ),
    ],
)
def test_bad_requests_name_the_field(detail: dict[str, Any], reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(envelope("Flow Run Requested", detail))
    assert str(caught.value).startswith("Flow Run Requested: ")
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("{not json", "not JSON"),
        ("[]", "must be a JSON object, got list"),
        ({"detail-type": "Flow Run Requested"}, "not an EventBridge event: "),
        (
            envelope("Something Else", {}),
            "unknown event: source 'flowrelay', detail-type 'Something Else'",
        ),
        (
            envelope("Flow Run Requested", {"flow": "x"}, source="aws.ecs"),
            "unknown event: source 'aws.ecs'",
        ),
    ],
)
def test_unusable_events_say_why(raw: Any, reason: str) -> None:
    with pytest.raises(EventError) as caught:
        parse_event(raw)
    assert reason in str(caught.value)


def test_state_changed_cancel_and_task_events() -> None:
    state = parse_event(
        envelope(
            "Flow Run State Changed",
            {
                "flow_run_id": "r1",
                "state": "Failed",
                "source": "runner",
                "message": "Task 'divide' failed",
            },
        )
    ).detail
    assert isinstance(state, FlowRunStateChanged)
    assert state.state is RunState.FAILED
    assert state.source is Source.RUNNER
    assert state.event_id
    cancel = parse_event(
        envelope("Flow Run Cancel Requested", {"flow_run_id": "r1", "reason": "wrong input"})
    ).detail
    assert cancel == FlowRunCancelRequested(flow_run_id="r1", reason="wrong input")
    task = parse_event(
        envelope(
            "Task Run State Changed",
            {"flow_run_id": "r1", "task": "add", "map_index": 2, "state": "Success"},
        )
    ).detail
    assert isinstance(task, TaskRunStateChanged)
    with pytest.raises(EventError, match=r"detail\.state: Input should be 'Scheduled'"):
        parse_event(
            envelope(
                "Flow Run State Changed", {"flow_run_id": "r1", "state": "Done", "source": "runner"}
            )
        )


def test_ecs_task_that_failed_to_start_with_no_containers() -> None:
    detail = {
        "taskArn": "arn:aws:ecs:us-east-1:123456789012:task/flowrelay/0123456789abcdef",
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/flowrelay",
        "lastStatus": "STOPPED",
        "desiredStatus": "STOPPED",
        "group": "flowrelay:run-42",
        "startedBy": "flowrelay",
        "stopCode": "TaskFailedToStart",
        "stoppedReason": "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
        "containers": [],
        "version": 3,
        "someFieldAwsAddsLater": {"x": 1},
    }
    event = parse_event(
        envelope("ECS Task State Change", detail, source="aws.ecs"), event_readers()
    )
    ecs = event.detail
    assert isinstance(ecs, InfraEvent)
    assert ecs.run_id == "run-42"
    assert ecs.status.phase == "stopped"
    assert ecs.status.message.endswith("; no container ran")
    assert ecs.status.exit_code is None
    assert ecs.status.details["stop_code"] == "TaskFailedToStart"
    assert ecs.status.sequence == 3
    # Without the launchers' readers, an ECS event is not one parse_event knows.
    with pytest.raises(EventError, match=r"unknown event: source 'aws\.ecs'"):
        parse_event(envelope("ECS Task State Change", detail, source="aws.ecs"))


def test_ecs_tasks_not_started_by_flowrelay_have_no_run() -> None:
    base = {"taskArn": "t", "lastStatus": "RUNNING", "version": 1}
    assert EcsTaskStateChange(**base, group="family:web").flow_run_id is None
    assert EcsTaskStateChange(**base).flow_run_id is None
    assert EcsTaskStateChange(**base, group="flowrelay:").flow_run_id is None


def test_entries_for_put_events_round_trip() -> None:
    request = FlowRunRequested(flow="etl", parameters={"rows": 3}, idempotency_key="k")
    entry = request.entry("flowrelay")
    assert entry["Source"] == "flowrelay"
    assert entry["DetailType"] == "Flow Run Requested"
    assert entry["EventBusName"] == "flowrelay"
    parsed = parse_event(envelope(entry["DetailType"], json.loads(entry["Detail"])))
    assert parsed.detail == request


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
detail_types = st.sampled_from(
    [
        "Flow Run Requested",
        "Flow Run State Changed",
        "Flow Run Cancel Requested",
        "Task Run State Changed",
        "ECS Task State Change",
        "Other",
    ]
)


def parses_or_explains(raw: Any) -> None:
    """Parsing either succeeds or raises EventError with a reason; nothing else escapes."""
    try:
        parse_event(raw)
    except EventError as exc:
        reason = str(exc)
        assert reason
        assert "Traceback" not in reason


@given(json_values)
def test_any_json_value_either_parses_or_raises_event_error(value: Any) -> None:
    parses_or_explains(json.dumps(value))


@given(detail_types, st.sampled_from(["flowrelay", "aws.ecs"]), json_values)
def test_any_detail_either_parses_or_names_what_is_wrong(
    detail_type: str, source: str, detail: Any
) -> None:
    parses_or_explains(envelope(detail_type, detail, source=source))


@given(st.binary(max_size=200))
def test_any_bytes_either_parse_or_raise_event_error(raw: bytes) -> None:
    parses_or_explains(raw)


def test_bytes_that_are_not_utf8_are_explained() -> None:
    with pytest.raises(EventError, match="not UTF-8"):
        parse_event(b"\x80")
