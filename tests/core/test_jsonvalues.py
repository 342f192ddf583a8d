"""What JSON cannot carry unchanged is refused wherever a user's value enters, with where it is;
everything else passes through unchanged."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from flowrelay.core import jsonvalues
from flowrelay.core.events import FlowRunRequested, parse_event
from flowrelay.core.jsonvalues import JsonValueError

finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(finite_json)
def test_what_json_can_carry_comes_back_unchanged(value: Any) -> None:
    jsonvalues.check(value)
    assert jsonvalues.loads(json.dumps(value)) == value


@given(finite_json, st.sampled_from([math.nan, math.inf, -math.inf]))
def test_a_non_finite_number_anywhere_is_refused_naming_where(value: Any, bad: float) -> None:
    wrapped = {"outer": [value, {"bad": bad}]}
    with pytest.raises(JsonValueError, match=r"^parameters\.outer\.1\.bad: (nan|inf|-inf) is not"):
        jsonvalues.check(wrapped, "parameters")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e999", '{"a": [1, -1e400]}'])
def test_loads_refuses_what_json_has_not(text: str) -> None:
    with pytest.raises(JsonValueError, match="JSON number"):
        jsonvalues.loads(text)


def test_text_that_is_not_unicode_is_refused_in_values_and_names() -> None:
    bad = b"caf\xe9".decode("utf-8", "surrogateescape")
    with pytest.raises(JsonValueError, match=r"^request\.labels\.0: 'caf\\udce9' is not valid"):
        jsonvalues.check({"labels": [bad]}, "request")
    with pytest.raises(JsonValueError, match=r"^parameters: .*\(character 4 came from bytes"):
        jsonvalues.check({bad: 1}, "parameters")
    with pytest.raises(JsonValueError, match="is not valid Unicode"):
        jsonvalues.loads('{"a": "\\udce9"}')  # an escaped lone surrogate is JSON, not text


def test_a_request_built_in_python_refuses_non_finite_parameters() -> None:
    with pytest.raises(ValidationError, match=r"parameters\.ratio: nan is not a JSON number"):
        FlowRunRequested(flow="etl", parameters={"ratio": float("nan")})


def test_an_event_with_a_non_finite_number_is_refused() -> None:
    raw = (
        '{"version": "0", "id": "e", "source": "flowrelay", "detail-type": "Flow Run Requested",'
        ' "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],'
        ' "detail": {"flow": "etl", "parameters": {"n": 1e999}}}'
    )
    with pytest.raises(ValueError, match="1e999 is too large for a JSON number"):
        parse_event(raw)
