"""Fuzzing parse_event and every detail model: whatever comes in, parse_event returns a
ParsedEvent or raises EventError with a message naming what is wrong; valid events round-trip.

The strategies are in tests/support/strategies.py (shared with tests/handlers/test_handler_fuzz.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from flowrelay.core.events import (
    EventError,
    FlowrelayEvent,
    ParsedEvent,
    parse_event,
)
from flowrelay.core.jsonvalues import field_label
from tests.support.strategies import (
    EVERY_DETAIL_MODEL,
    MODEL_READERS,
    VALID_DETAILS,
    NearValid,
    detail_type_of,
    envelope,
    event_of,
    garbage_bodies,
    json_objects,
    json_values,
    near_valid,
    short_text,
    source_of,
    unreadable_json,
)

MODELS = sorted(EVERY_DETAIL_MODEL.values(), key=detail_type_of)
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(raw: Any) -> ParsedEvent | EventError:
    """What parse_event makes of ``raw``: the event, or the EventError it raised. Any other
    exception propagates and fails the test."""
    try:
        return parse_event(raw, MODEL_READERS)
    except EventError as exc:
        reason = str(exc)
        assert reason.strip(), "an EventError must say what is wrong"
        assert "Traceback" not in reason
        return exc


def test_every_detail_model_has_a_strategy() -> None:
    assert set(EVERY_DETAIL_MODEL.values()) == set(VALID_DETAILS)
    for (source, detail_type), model in EVERY_DETAIL_MODEL.items():
        assert (source_of(model), detail_type_of(model)) == (source, detail_type)


@pytest.mark.parametrize("model", MODELS, ids=detail_type_of)
def test_every_field_of_every_model_is_generated(model: type[BaseModel]) -> None:
    for name in model.model_fields:
        find(
            VALID_DETAILS[model],
            lambda detail: name in detail,  # noqa: B023
            settings=settings(phases=[Phase.generate], database=None),
        )


# --- anything at all ------------------------------------------------------------------------


@FUZZ
@given(json_values)
def test_any_json_value(value: Any) -> None:
    outcome(json.dumps(value))
    outcome(json.dumps(value).encode())


@FUZZ
@given(st.text(max_size=200))
def test_any_text(raw: str) -> None:
    outcome(raw)


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes(raw: bytes) -> None:
    outcome(raw)


@FUZZ
@given(garbage_bodies)
def test_garbage_bodies(raw: str) -> None:
    outcome(raw)


@FUZZ
@given(json_objects)
def test_any_object_as_the_event(raw: dict[str, Any]) -> None:
    result = outcome(raw)
    if isinstance(result, EventError):
        assert str(result).startswith(("not an EventBridge event: ", "unknown event: "))


@FUZZ
@given(
    st.sampled_from(
        [*EVERY_DETAIL_MODEL, ("flowrelay", "Other"), ("aws.ecs", "Flow Run Requested")]
    ),
    json_values,
)
def test_envelopes_with_any_detail(key: tuple[str, str], detail: Any) -> None:
    source, detail_type = key
    result = outcome(envelope(detail_type, detail, source=source))
    if isinstance(result, EventError):
        reason = str(result)
        if not isinstance(detail, dict):
            assert reason.startswith("not an EventBridge event: detail: "), reason
        elif key in EVERY_DETAIL_MODEL:
            assert reason.startswith(f"{detail_type}: detail"), reason
        else:
            assert reason.startswith("unknown event: "), reason


@pytest.mark.parametrize("model", MODELS, ids=detail_type_of)
@FUZZ
@given(data=st.data())
def test_random_detail_dicts(model: type[BaseModel], data: st.DataObject) -> None:
    detail = data.draw(json_objects)
    result = outcome(event_of(model, detail))
    if isinstance(result, EventError):
        assert str(result).startswith(f"{detail_type_of(model)}: detail"), str(result)
    else:
        assert isinstance(result.detail, model)


# --- valid events -----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=detail_type_of)
@FUZZ
@given(data=st.data())
def test_valid_events_parse_and_round_trip(model: type[BaseModel], data: st.DataObject) -> None:
    detail = data.draw(VALID_DETAILS[model])
    parsed = parse_event(event_of(model, detail), MODEL_READERS)
    assert isinstance(parsed.detail, model)
    dumped = json.loads(parsed.detail.model_dump_json())
    again = parse_event(json.dumps(event_of(model, dumped)), MODEL_READERS)
    assert again.detail == parsed.detail
    assert again.envelope.model_dump(exclude={"detail"}) == parsed.envelope.model_dump(
        exclude={"detail"}
    )
    if isinstance(parsed.detail, FlowrelayEvent):  # as published: PutEvents entries
        entry = parsed.detail.entry("bus")
        published = parse_event(envelope(entry["DetailType"], json.loads(entry["Detail"])))
        assert published.detail == parsed.detail


# --- near-valid events ------------------------------------------------------------------------


def assert_names_field(reason: str, case: NearValid) -> None:
    assert f"detail.{field_label(case.field)}" in reason, (case, reason)


@pytest.mark.parametrize("model", MODELS, ids=detail_type_of)
@FUZZ
@given(data=st.data())
def test_near_valid_events_name_the_broken_field(
    model: type[BaseModel], data: st.DataObject
) -> None:
    case = data.draw(VALID_DETAILS[model].flatmap(lambda detail: near_valid(model, detail)))
    result = outcome(json.dumps(event_of(model, case.detail)))
    if case.must_fail:
        assert isinstance(result, EventError), case
    if isinstance(result, EventError):
        reason = str(result)
        assert reason.startswith(f"{detail_type_of(model)}: "), reason
        assert_names_field(reason, case)
        if case.mutation == "removed":
            assert f"detail.{field_label(case.field)}: Field required" in reason
        if case.mutation == "extra":
            assert f"detail.{field_label(case.field)}: Extra inputs are not permitted" in reason


ENVELOPE_FIELDS = ["version", "id", "source", "time", "region", "detail-type", "detail"]


@pytest.mark.parametrize("model", MODELS, ids=detail_type_of)
@FUZZ
@given(data=st.data())
def test_envelopes_with_a_broken_field_name_it(model: type[BaseModel], data: st.DataObject) -> None:
    event = event_of(model, data.draw(VALID_DETAILS[model]))
    field = data.draw(st.sampled_from(ENVELOPE_FIELDS))
    if data.draw(st.booleans()):
        del event[field]
    else:
        event[field] = data.draw(st.none() | st.lists(short_text, min_size=1, max_size=2))
    result = outcome(json.dumps(event))
    assert isinstance(result, EventError)
    assert str(result).startswith("not an EventBridge event: "), str(result)
    assert f"{field}: " in str(result)


# --- inputs that once escaped as something other than EventError -------------------------


@FUZZ
@given(unreadable_json)
def test_json_too_deep_or_long_to_read_is_an_event_error(raw: str) -> None:
    result = outcome(raw)
    assert isinstance(result, EventError)
    assert str(result).startswith("not JSON"), str(result)
    assert isinstance(outcome(raw.encode()), EventError)


@pytest.mark.parametrize(
    "raw",
    [
        "[" * 100_000,
        json.dumps(envelope("Flow Run Requested", {"flow": "etl"}))[:-1]
        + ', "x": '
        + "[" * 5_000
        + "]" * 5_000
        + "}",
    ],
    ids=["unclosed-arrays", "nested-field-in-an-event"],
)
def test_deeply_nested_json_is_an_event_error(raw: str) -> None:
    with pytest.raises(EventError):
        parse_event(raw)


def test_an_integer_too_long_to_convert_is_an_event_error() -> None:
    body = json.dumps(envelope("Flow Run Requested", {"flow": "etl", "parameters": {"n": 0}}))
    raw = body.replace('"n": 0', '"n": ' + "1" * 5_000)
    with pytest.raises(EventError):
        parse_event(raw)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_not_json(literal: str) -> None:
    body = json.dumps(envelope("Flow Run Requested", {"flow": "etl", "parameters": {"rows": 0}}))
    with pytest.raises(EventError):
        parse_event(body.replace('"rows": 0', f'"rows": {literal}'))


def test_an_unknown_field_with_an_empty_name_is_named() -> None:
    with pytest.raises(EventError) as caught:
        parse_event(envelope("Flow Run Requested", {"flow": "etl", "": 1}))
    assert "detail: " not in str(caught.value)


def test_what_parses_can_be_written_back() -> None:
    body = json.dumps(envelope("Flow Run Requested", {"flow": "etl", "parameters": {"rows": 0}}))
    deep = body.replace('"rows": 0', '"rows": ' + "[" * 256 + "]" * 256)
    try:
        parsed = parse_event(deep)
    except EventError:
        return
    parsed.detail.model_dump_json()
