"""ECS's task events through the reader the launchers give record_state
(``launchers.kinds.event_readers``): whatever the detail, an ``InfraEvent`` or an ``EventError``
naming the bad field, never anything else."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from flowrelay.core.events import EventError, parse_event
from flowrelay.launchers.base import InfraEvent
from flowrelay.launchers.ecs.status import EcsTaskStateChange
from flowrelay.launchers.kinds import event_readers
from tests.support.strategies import VALID_DETAILS, envelope, json_objects

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
READERS = event_readers()
PHASES = {"STOPPED": "stopped", "RUNNING": "running", "PENDING": "starting"}


def ecs_event(detail: Any) -> dict[str, Any]:
    return envelope("ECS Task State Change", detail, source="aws.ecs")


@FUZZ
@given(VALID_DETAILS[EcsTaskStateChange])
def test_valid_task_events_read_into_their_run_and_status(detail: dict[str, Any]) -> None:
    event = parse_event(ecs_event(detail), READERS).detail
    assert isinstance(event, InfraEvent)
    group = detail.get("group") or ""
    expected_run = group.removeprefix("flowrelay:") if group.startswith("flowrelay:") else None
    assert event.run_id == (expected_run or None)
    assert event.status.ref == detail["taskArn"]
    assert event.status.sequence == detail["version"]
    if detail["lastStatus"] in PHASES:
        assert event.status.phase == PHASES[detail["lastStatus"]]
    assert event.status.message.strip()
    if event.status.phase == "stopped":
        assert event.status.message.startswith("ECS task stopped (")


@FUZZ
@given(json_objects)
def test_any_detail_is_an_event_or_names_the_bad_field(detail: dict[str, Any]) -> None:
    outcome: object
    try:
        outcome = parse_event(ecs_event(detail), READERS).detail
    except EventError as exc:
        outcome = exc
    if isinstance(outcome, EventError):
        assert str(outcome).startswith("ECS Task State Change: detail"), str(outcome)
    else:
        assert isinstance(outcome, InfraEvent)
