"""Schedule expressions (flowrelay.core.schedules): what EventBridge Scheduler takes, in one
spelling; everything it refuses, refused with the reason; classic cron and intervals translated
to AWS's forms, checked against hand-made tables and, for random classic expressions, against
their fire times; the registered ClockSpec and ScheduleSpec; registrations of older versions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from aws_croniter import AwsCroniter  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from flowrelay.core.registration import FlowRegistration
from flowrelay.core.schedules import (
    ClockSpec,
    ScheduleError,
    ScheduleSpec,
    as_utc,
    check_clock_name,
    check_clock_parameters,
    check_timezone,
    classic_cron_to_aws,
    expression_kind,
    interval_to_rate,
    parse_expression,
    rate_interval,
)

# --- AWS expressions --------------------------------------------------------------------------

ACCEPTED = {
    "cron(0 10 * * ? *)": "cron(0 10 * * ? *)",
    "  cron( 0   10 * *  ? * )  ": "cron(0 10 * * ? *)",
    "cron(15 10 ? * 6L 2022-2023)": "cron(15 10 ? * 6L 2022-2023)",
    "cron(0 18 ? * MON-FRI *)": "cron(0 18 ? * MON-FRI *)",
    "cron(0 9 ? * mon-fri *)": "cron(0 9 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)": "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)": "cron(0/15 * * * ? *)",
    "cron(*/5 8-17 ? * 2-6 *)": "cron(*/5 8-17 ? * 2-6 *)",
    "cron(0/10 * ? * MON-FRI *)": "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)": "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)": "cron(0 9 ? * 2#1 *)",
    "cron(0 9 ? * MON#1 *)": "cron(0 9 ? * MON#1 *)",
    "cron(0 0 L * ? *)": "cron(0 0 L * ? *)",
    "cron(0 10 LW * ? *)": "cron(0 10 LW * ? *)",  # the month's last weekday (Quartz's LW)
    "cron(0 0 L-3 * ? *)": "cron(0 0 L-3 * ? *)",
    "cron(0 0 15W * ? *)": "cron(0 0 15W * ? *)",
    "cron(0 0 ? * L *)": "cron(0 0 ? * 7 *)",  # alone, L is Saturday
    "cron(0 0 ? * FRIL *)": "cron(0 0 ? * FRIL *)",
    "cron(0 22-2 * * ? *)": "cron(0 22-2 * * ? *)",  # wraps past midnight
    "cron(0 0 ? * FRI-MON *)": "cron(0 0 ? * FRI-MON *)",
    "cron(0 0 1 jan,jul ? *)": "cron(0 0 1 JAN,JUL ? *)",
    "cron(0 0 1 1 ? 2030/2)": "cron(0 0 1 1 ? 2030/2)",
    "cron(05 09 01 01 ? 2030)": "cron(5 9 1 1 ? 2030)",
    "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)": "cron(0-15/1 8-8 ? * 2,3,4,5,6,7 *)",
    "cron(1-31/30 1-1 ? * 1,7 *)": "cron(1-31/30 1-1 ? * 1,7 *)",
    "cron(*/15,7 * * * ? *)": "cron(*/15,7 * * * ? *)",
    "cron(59 23 31 12 ? 2199)": "cron(59 23 31 12 ? 2199)",
    "cron(0 0 1 1 ? 1970)": "cron(0 0 1 1 ? 1970)",
    "rate(1 minute)": "rate(1 minute)",
    "rate(5 minutes)": "rate(5 minutes)",
    "rate(1 hour)": "rate(1 hour)",
    "rate(12 hours)": "rate(12 hours)",
    "rate(1 day)": "rate(1 day)",
    "rate(7 days)": "rate(7 days)",
    "rate( 05  minutes )": "rate(5 minutes)",
    "at(2027-01-01T09:00:00)": "at(2027-01-01T09:00:00)",
    " at(2028-02-29T23:59:59) ": "at(2028-02-29T23:59:59)",
}


@pytest.mark.parametrize(("given", "canonical"), ACCEPTED.items())
def test_aws_expressions_are_taken_in_one_spelling(given: str, canonical: str) -> None:
    assert parse_expression(given) == canonical
    assert parse_expression(canonical) == canonical


#: Each thing AWS refuses, with what the message must say.
REFUSED = {
    # the ? rule
    "cron(0 9 * * MON *)": "for these days write cron(0 9 ? * MON *)",
    "cron(0 9 * * 1-5 *)": "AWS numbers the days 1-7 from Sunday",
    "cron(0 9 ? * ? *)": "and both are",
    "cron(0 9 1 * MON *)": "restricts both (1 and MON)",
    # fields
    "cron(0 9 * * *)": "this has 5: add the year",
    "cron(0 0 9 * * ? *)": "no seconds field",
    "cron(60 * * * ? *)": "minute 60 is out of range (0-59)",
    "cron(0 24 * * ? *)": "hour 24 is out of range (0-23)",
    "cron(0 0 0 * ? *)": "day-of-month 0 is out of range (1-31)",
    "cron(0 0 32 * ? *)": "day-of-month 32 is out of range (1-31)",
    "cron(0 0 * 0 ? *)": "month 0 is out of range (1-12)",
    "cron(0 0 * 13 ? *)": "month 13 is out of range (1-12)",
    "cron(0 0 ? * 0 *)": "day-of-week 0 is out of range (1-7, 1 = Sunday)",
    "cron(0 0 ? * 8 *)": "day-of-week 8 is out of range",
    "cron(0 0 1 1 ? 1969)": "year 1969 is out of range (1970-2199)",
    "cron(0 0 1 1 ? 2200)": "year 2200 is out of range",
    "cron(0 0 * JANUARY ? *)": "not a month (1-12 or JAN-DEC)",
    "cron(0 0 ? * MONDAY *)": "not a day-of-week",
    "cron(x 0 * * ? *)": "not a minute",
    "cron(? 0 * * ? *)": "? is for day-of-month or day-of-week, not the minute",
    "cron(0 0 * ? ? *)": "not the month",
    "cron(*,5 0 * * ? *)": "* stands alone",
    "cron(1,,2 0 * * ? *)": "empty item",
    "cron(1, 0 * * ? *)": "empty item (two commas, or one at an end)",
    # increments
    "cron(*/0 * * * ? *)": "the minute increment is 1-59, not 0",
    "cron(*/60 * * * ? *)": "the minute increment is 1-59, not 60",
    "cron(0 */24 * * ? *)": "the hour increment is 1-23",
    "cron(0 0 ? * */2 *)": "day-of-week takes no increments",
    "cron(0 0 ? * 1-5/2 *)": "day-of-week takes no increments",
    "cron(*/x * * * ? *)": "the increment after / is a whole number",
    # L, W and #
    "cron(0 0 1,L * ? *)": "L and W stand alone",
    "cron(0 0 L/2 * ? *)": "L and W stand alone",
    "cron(0 0 1-15W * ? *)": "L and W stand alone",
    "cron(0 0 32W * ? *)": "the day before W is 1-31",
    "cron(0 0 L-31 * ? *)": "L-n counts 1 to 30 days back",
    "cron(0 0 3#2 * ? *)": "# is for day-of-week",
    "cron(0 0 ? * 3#6 *)": "the n of day#n is 1-5",
    "cron(0 0 ? * 3#0 *)": "the n of day#n is 1-5",
    "cron(0 0 ? * 1,3#2 *)": "# stands alone",
    "cron(0 0 ? * 8#2 *)": "day-of-week 8 is out of range",
    "cron(0 0 ? * 1-2L *)": "L stands alone",
    "cron(0 0 ? * 9L *)": "day-of-week 9 is out of range",
    "cron(0 0 1W ? * *)": "? is for day-of-month or day-of-week, not the month",
    # rates
    "rate(0 minutes)": "at least 1",
    "rate(1 minutes)": "AWS wants the singular unit for 1: rate(1 minute)",
    "rate(1 hours)": "rate(1 hour)",
    "rate(1 days)": "rate(1 day)",
    "rate(5 minute)": "AWS wants the plural unit for 5: rate(5 minutes)",
    "rate(2 hour)": "rate(2 hours)",
    "rate(-1 minutes)": "whole number of at least 1, not '-1'",
    "rate(1.5 hours)": "not '1.5'",
    "rate(30 seconds)": "at least one minute",
    "rate(2 weeks)": "no weeks: rate(14 days)",
    "rate(1 month)": "unknown unit 'month'",
    "rate(5 Minutes)": "lower case",
    "rate(5)": "rate(value unit)",
    "rate(5 minutes please)": "rate(value unit)",
    # one-time
    "at(2027-01-01 09:00:00)": "at(yyyy-mm-ddThh:mm:ss)",
    "at(2027-01-01T09:00)": "at(yyyy-mm-ddThh:mm:ss)",
    "at(2027-01-01T09:00:00Z)": "no offset",
    "at(2027-01-01T09:00:00+01:00)": "no offset",
    "at(2027-01-01T09:00:00.5)": "no fractions",
    "at(2027-02-30T09:00:00)": "not a date and time that exists",
    "at(2027-01-01T24:00:00)": "not a date and time that exists",
    # not an expression
    "CRON(0 0 * * ? *)": "write cron(...) in lower case",
    "Rate(5 minutes)": "write rate(...) in lower case",
    "every(5 minutes)": "unknown kind every(...)",
    "0 9 * * 1-5": "classic 5-field cron expression: give it to CronClock",
    "": "not a schedule expression",
    "cron 0 9 * * ? *": "not a schedule expression",
}


@pytest.mark.parametrize(("given", "reason"), REFUSED.items())
def test_what_aws_refuses_is_refused_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_expression(given)
    message = str(refused.value)
    assert reason in message
    assert message.startswith(repr(given))
    assert "\n" not in message


def test_an_expression_is_text() -> None:
    with pytest.raises(ScheduleError, match="is text such as 'rate"):
        parse_expression(5)  # type: ignore[arg-type]


def test_a_long_expression_is_shown_cut_short_on_one_line() -> None:
    with pytest.raises(ScheduleError) as refused:
        parse_expression("cron(" + "1," * 200 + "x * * * ? *)\n")
    assert len(str(refused.value)) < 300
    assert "\n" not in str(refused.value)


def test_kinds_and_rate_intervals() -> None:
    assert [expression_kind(e) for e in ("cron(0 0 * * ? *)", "rate(1 day)", "at(x)")] == [
        "cron",
        "rate",
        "at",
    ]
    with pytest.raises(ScheduleError):
        expression_kind("every(1 day)")
    assert rate_interval("rate(1 minute)") == timedelta(minutes=1)
    assert rate_interval("rate(3 hours)") == timedelta(hours=3)
    assert rate_interval("rate(2 days)") == timedelta(days=2)
    with pytest.raises(ScheduleError, match="not a rate"):
        rate_interval("cron(0 0 * * ? *)")


# Random AWS expressions: fields built from their parts, so what is valid is known.

FIELD_VALUES = {0: (0, 59), 1: (0, 23), 2: (1, 31), 3: (1, 12), 4: (1, 7), 5: (1970, 2199)}


@st.composite
def aws_item(draw: st.DrawFn, index: int) -> str:
    low, high = FIELD_VALUES[index]
    value = st.integers(low, high)
    kind = draw(st.sampled_from(["value", "range", "step"] if index != 4 else ["value", "range"]))
    if kind == "value":
        return str(draw(value))
    if kind == "range":
        return f"{draw(value)}-{draw(value)}"
    base = draw(st.sampled_from(["*", str(draw(value)), f"{draw(value)}-{draw(value)}"]))
    step = draw(st.integers(1, {0: 59, 1: 23, 2: 31, 3: 12, 5: 229}[index]))
    return f"{base}/{step}"


@st.composite
def aws_field(draw: st.DrawFn, index: int) -> str:
    if draw(st.booleans()):
        return "*"
    return ",".join(draw(st.lists(aws_item(index), min_size=1, max_size=4)))


@st.composite
def aws_cron(draw: st.DrawFn, year_steps: bool = True) -> str:
    fields = [draw(aws_field(index)) for index in range(6)]
    if not year_steps and "/" in fields[5]:
        fields[5] = "*"
    special_dom = st.sampled_from(["L", "L-5", "15W", "1W"])
    special_dow = st.sampled_from(["6L", "FRIL", "3#2", "MON#5"])
    if draw(st.booleans()):
        fields[2] = draw(special_dom) if draw(st.booleans()) else fields[2]
        fields[4] = "?"
    else:
        fields[2] = "?"
        fields[4] = draw(special_dow) if draw(st.booleans()) else fields[4]
    return f"cron({' '.join(fields)})"


@settings(max_examples=300, deadline=None)
@given(aws_cron())
def test_every_well_formed_aws_cron_is_taken_and_stays_the_same(expression: str) -> None:
    canonical = parse_expression(expression)
    assert parse_expression(canonical) == canonical
    assert canonical == expression  # built in canonical spelling already


@settings(max_examples=200, deadline=None)
@given(aws_cron(year_steps=False))
def test_aws_croniter_reads_what_is_taken(expression: str) -> None:
    """The dev stack computes fire times with aws-croniter: it reads every expression taken here
    (but years with an increment, which it refuses; AWS takes them)."""
    AwsCroniter(parse_expression(expression)[len("cron(") : -1])


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 5),
    st.one_of(st.integers(-5, -1), st.integers(2200, 9999), st.integers(60, 999)),
)
def test_a_number_out_of_its_field_is_refused(index: int, number: int) -> None:
    low, high = FIELD_VALUES[index]
    if low <= number <= high:
        return
    fields = ["0", "0", "1", "1", "?", "*"]
    fields[index] = str(number)
    with pytest.raises(ScheduleError) as refused:
        parse_expression(f"cron({' '.join(fields)})")
    assert "out of range" in str(refused.value) or "is not a" in str(refused.value)


@settings(max_examples=100, deadline=None)
@given(aws_field(2), aws_field(4))
def test_both_day_fields_set_or_both_unset_is_refused(day_of_month: str, day_of_week: str) -> None:
    with pytest.raises(ScheduleError, match="exactly one of day-of-month and day-of-week"):
        parse_expression(f"cron(0 0 {day_of_month} * {day_of_week} *)")
    with pytest.raises(ScheduleError, match="and both are"):
        parse_expression("cron(0 0 ? * ? *)")


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**9), st.sampled_from(["minute", "hour", "day"]), st.booleans())
def test_rates_take_whole_numbers_with_the_unit_aws_wants(
    number: int, unit: str, plural: bool
) -> None:
    written = f"rate({number} {unit}{'s' if plural else ''})"
    if plural == (number > 1):
        assert parse_expression(written) == written
    else:
        with pytest.raises(ScheduleError, match=r"AWS wants the (singular|plural) unit"):
            parse_expression(written)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31)))
def test_every_real_time_is_a_one_time_schedule(moment: datetime) -> None:
    written = f"at({moment:%Y-%m-%dT%H:%M:%S})"
    assert parse_expression(written) == written


# --- classic cron -----------------------------------------------------------------------------

CLASSIC = {
    "0 9 * * 1-5": "cron(0 9 ? * 2-6 *)",
    "*/15 * * * *": "cron(*/15 * * * ? *)",
    "0 0 1 * *": "cron(0 0 1 * ? *)",
    "0 12 * * 0": "cron(0 12 ? * 1 *)",
    "0 12 * * 7": "cron(0 12 ? * 1 *)",
    "0 12 * * SUN": "cron(0 12 ? * 1 *)",
    "0 12 * * sun": "cron(0 12 ? * 1 *)",
    "0 9 * * MON-FRI": "cron(0 9 ? * 2-6 *)",
    "0 0 * * 6": "cron(0 0 ? * 7 *)",
    "0 0 * * 5-7": "cron(0 0 ? * 1,6,7 *)",  # Friday to Sunday
    "0 0 * * 0,7": "cron(0 0 ? * 1 *)",
    "0 0 * * 0-6": "cron(0 0 ? * 1-7 *)",
    "0 0 * * */2": "cron(0 0 ? * 1,3,5,7 *)",  # Sunday, Tuesday, Thursday, Saturday
    "0 0 * * 1/2": "cron(0 0 ? * 2,4,6 *)",
    "0 0 * * 1,2,3,5": "cron(0 0 ? * 2-4,6 *)",
    "0 0 * * 5#3": "cron(0 0 ? * 6#3 *)",
    "0 0 * * FRI#3": "cron(0 0 ? * 6#3 *)",
    "0 0 * * ?": "cron(0 0 * * ? *)",
    "0 0 1 * ?": "cron(0 0 1 * ? *)",
    "0 0 ? * 1": "cron(0 0 ? * 2 *)",
    "0 0 L * *": "cron(0 0 L * ? *)",
    "30 2 * JAN-MAR *": "cron(30 2 * 1-3 ? *)",
    "0 */2 * * *": "cron(0 */2 * * ? *)",
    "5-10/2 * * * *": "cron(5-10/2 * * * ? *)",
    "0,30 9-17 1,15 * *": "cron(0,30 9-17 1,15 * ? *)",
    "00 09 * * *": "cron(0 9 * * ? *)",
    "* * * * *": "cron(* * * * ? *)",
    "@hourly": "cron(0 * * * ? *)",
    "@daily": "cron(0 0 * * ? *)",
    "@midnight": "cron(0 0 * * ? *)",
    "@weekly": "cron(0 0 ? * 1 *)",
    "@monthly": "cron(0 0 1 * ? *)",
    "@yearly": "cron(0 0 1 1 ? *)",
    "@annually": "cron(0 0 1 1 ? *)",
    "  0 9 * * 1-5  ": "cron(0 9 ? * 2-6 *)",
}


@pytest.mark.parametrize(("classic", "aws"), CLASSIC.items())
def test_classic_cron_translates_to_aws(classic: str, aws: str) -> None:
    assert classic_cron_to_aws(classic) == aws
    assert parse_expression(aws) == aws


CLASSIC_REFUSED = {
    "0 9 1 * 1": "classic cron runs on days that match either",
    "0 9 */2 * MON": "use two clocks, CronClock('0 9 */2 * *') and CronClock('0 9 * * MON')",
    "0 9 1-31 * 1-5": "restricts both day-of-month (1-31) and day-of-week (1-5)",
    "@reboot": "no start-up",
    "@every_minute": "unknown nickname",
    "0 0 9 * * *": "reads a sixth field as seconds",
    "0 0 9 * * * 2030": "seconds and year",
    "0 9 * *": "this has 4",
    "*/90 * * * *": "AWS takes minute increments up to 59",
    "0 */0 * * *": "at least 1",
    "0 22-2 * * *": "runs backwards; classic cron has no ranges that wrap around: write 22-23,0-2",
    "0 0 * * 5-1": "write 5-6,0-1",
    "0 0 * * 8": "not a day-of-week (0-7, 0 and 7 = Sunday",
    "0 0 * * 6L": "write the AWS form",
    "0 0 * * L5": "write the AWS form",
    "0 0 15W * *": "not a day-of-month",
    "0 0 * * 5#6": "the n of day#n is 1-5",
    "0 0 * * 1,5#2": "# stands alone",
    "60 * * * *": "minute 60 is out of range",
    "0 24 * * *": "hour 24 is out of range",
    "0 0 0 * *": "day-of-month 0 is out of range",
    "0 0 * 13 *": "month 13 is out of range",
    "H * * * *": "not a minute",
    "*,5 * * * *": "* in a list",
    "1,,2 * * * *": "an empty item",
    "0 ? * * *": "? is for the day fields",
    "cron(0 9 * * ? *)": "already an AWS expression",
}


@pytest.mark.parametrize(("classic", "reason"), CLASSIC_REFUSED.items())
def test_classic_cron_aws_cannot_express_is_refused_with_the_reason(
    classic: str, reason: str
) -> None:
    with pytest.raises(ScheduleError) as refused:
        classic_cron_to_aws(classic)
    assert reason in str(refused.value)
    assert str(refused.value).startswith(repr(classic))


def test_both_day_fields_with_day_or_false_is_refused_too() -> None:
    with pytest.raises(ScheduleError, match=r"match both day-of-month .1. and day-of-week .5."):
        classic_cron_to_aws("0 9 1 * 5", day_or=False)
    # One day field left * means the same with either rule.
    assert classic_cron_to_aws("0 9 * * 1-5", day_or=False) == "cron(0 9 ? * 2-6 *)"


def test_a_classic_expression_is_text() -> None:
    with pytest.raises(ScheduleError, match="is text"):
        classic_cron_to_aws(None)  # type: ignore[arg-type]


# Random classic expressions, built with the sets of values they mean, so their fire times are
# known without reading them back: translated, aws-croniter (the dev stack's cron arithmetic)
# must fire at exactly those times.


@dataclass(frozen=True)
class Field:
    text: str
    values: frozenset[int]


CLASSIC_RANGES = {0: (0, 59), 1: (0, 23), 2: (1, 28), 3: (1, 12), 4: (0, 7)}


@st.composite
def classic_field(draw: st.DrawFn, index: int) -> Field:
    low, high = CLASSIC_RANGES[index]
    # What "*/n" means: the whole field (days of the month to 31, though explicit days are drawn
    # up to 28, which every month has; weekdays 0-6).
    full = (low, 6) if index == 4 else (1, 31) if index == 2 else (low, high)
    items: list[tuple[str, set[int]]] = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "range", "step", "range-step"]))
        a, b = sorted((draw(st.integers(low, high)), draw(st.integers(low, high))))
        step = draw(st.integers(1, 6))
        if kind == "value":
            items.append((str(a), {a}))
        elif kind == "range":
            items.append((f"{a}-{b}", set(range(a, b + 1))))
        elif kind == "step":
            items.append((f"*/{step}", set(range(full[0], full[1] + 1, step))))
        else:
            items.append((f"{a}-{b}/{step}", set(range(a, b + 1, step))))
    values = set().union(*(values for _, values in items))
    if index == 4:
        values = {day % 7 for day in values}
    return Field(",".join(text for text, _ in items), frozenset(values))


@st.composite
def classic_cron(draw: st.DrawFn) -> tuple[str, list[Field | None]]:
    """A classic expression and its fields' values (None for *), at most one day field set."""
    fields: list[Field | None] = [
        None if draw(st.booleans()) else draw(classic_field(index)) for index in range(5)
    ]
    if fields[2] is not None and fields[4] is not None:
        fields[draw(st.sampled_from([2, 4]))] = None
    text = " ".join("*" if field is None else field.text for field in fields)
    return text, fields


def classic_fires(fields: list[Field | None], after: datetime, count: int) -> Iterator[datetime]:
    """The next fire times of a classic expression, from its fields' values, day by day."""

    def allows(index: int, value: int) -> bool:
        field = fields[index]
        return field is None or value in field.values

    minutes = sorted(m for m in range(60) if allows(0, m))
    hours = sorted(h for h in range(24) if allows(1, h))
    day = after.date()
    found = 0
    while found < count and day < date(2199, 1, 1):
        weekday = (day.weekday() + 1) % 7  # classic: Sunday 0
        if allows(3, day.month) and allows(2, day.day) and allows(4, weekday):
            for hour in hours:
                for minute in minutes:
                    moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if moment > after and found < count:
                        found += 1
                        yield moment
        day += timedelta(days=1)


@settings(max_examples=150, deadline=None)
@given(classic_cron(), st.datetimes(datetime(2020, 1, 1), datetime(2040, 1, 1)))
def test_translated_classic_cron_fires_when_the_classic_one_would(
    classic: tuple[str, list[Field | None]], after: datetime
) -> None:
    text, fields = classic
    aws = classic_cron_to_aws(text)
    start = after.replace(second=0, microsecond=0, tzinfo=UTC)
    expected = list(classic_fires(fields, start, 4))
    fired = AwsCroniter(aws[len("cron(") : -1]).get_next(start, n=4)
    assert fired == expected, (text, aws)


# --- intervals and time zones -----------------------------------------------------------------

INTERVALS = {
    timedelta(minutes=1): "rate(1 minute)",
    timedelta(seconds=120): "rate(2 minutes)",
    timedelta(minutes=90): "rate(90 minutes)",
    timedelta(hours=1): "rate(1 hour)",
    timedelta(hours=36): "rate(36 hours)",
    timedelta(days=1): "rate(1 day)",
    timedelta(hours=48): "rate(2 days)",
    timedelta(weeks=2): "rate(14 days)",
    timedelta(days=1, minutes=1): "rate(1441 minutes)",
}


@pytest.mark.parametrize(("interval", "rate"), INTERVALS.items())
def test_intervals_become_rates_in_their_largest_exact_unit(interval: timedelta, rate: str) -> None:
    assert interval_to_rate(interval) == rate
    assert rate_interval(rate) == interval


@pytest.mark.parametrize(
    ("interval", "reason"),
    [
        (timedelta(seconds=30), "under one minute: AWS rates are at least 1 minute"),
        (timedelta(seconds=59, microseconds=999999), "under one minute"),
        (timedelta(seconds=90), "not a whole number of minutes"),
        (timedelta(minutes=5, microseconds=1), "not a whole number of minutes"),
        (timedelta(0), "must be positive"),
        (timedelta(minutes=-5), "must be positive"),
        (300, "is a timedelta"),
    ],
)
def test_intervals_aws_cannot_express_are_refused(interval: timedelta, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        interval_to_rate(interval)


@settings(max_examples=200)
@given(st.integers(1, 10**7))
def test_every_whole_number_of_minutes_is_a_rate_of_the_same_length(minutes: int) -> None:
    rate = interval_to_rate(timedelta(minutes=minutes))
    assert parse_expression(rate) == rate
    assert rate_interval(rate) == timedelta(minutes=minutes)


@pytest.mark.parametrize(
    "name", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Etc/GMT+5"]
)
def test_iana_time_zones_are_taken(name: str) -> None:
    assert check_timezone(name) == name


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("Mars/Olympus_Mons", "unknown time zone 'Mars/Olympus_Mons'"),
        ("europe/berlin", "did you mean 'Europe/Berlin'?"),
        ("+02:00", "unknown time zone"),
        ("CEST", "unknown time zone"),
        ("localtime", "unknown time zone"),
        ("", "an IANA name"),
        ("../../etc/passwd", "unknown time zone"),
    ],
)
def test_unknown_time_zones_are_refused(name: str, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason.replace("+", r"\+").replace("?", r"\?")):
        check_timezone(name)


def test_naive_moments_are_utc() -> None:
    assert as_utc(datetime(2027, 1, 1, 9)) == datetime(2027, 1, 1, 9, tzinfo=UTC)
    plus_two = datetime(2027, 1, 1, 9, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(plus_two) == datetime(2027, 1, 1, 7, tzinfo=UTC)


# --- ClockSpec and ScheduleSpec ---------------------------------------------------------------


def test_a_clock_spec_holds_what_its_schedule_needs() -> None:
    clock = ClockSpec(
        name="weekdays",
        expression="cron(0 9 ? * mon-fri *)",
        timezone="Europe/Berlin",
        start_date=datetime(2027, 1, 1, 9, tzinfo=timezone(timedelta(hours=1))),
        end_date=datetime(2028, 1, 1),
        parameters={"region": "eu", "rows": [1, 2]},
        labels=["gpu", "eu", "gpu"],
    )
    assert clock.expression == "cron(0 9 ? * MON-FRI *)"
    assert clock.kind == "cron"
    assert clock.start_date == datetime(2027, 1, 1, 8, tzinfo=UTC)
    assert clock.end_date == datetime(2028, 1, 1, tzinfo=UTC)
    assert clock.labels == ["eu", "gpu"]
    assert ClockSpec.model_validate_json(clock.model_dump_json()) == clock


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"expression": "rate(1 minutes)"}, "singular unit"),
        ({"timezone": "Mars/Base"}, "unknown time zone"),
        ({"name": "two words"}, "a clock's name is 1-64 letters"),
        ({"name": "x" * 65}, "a clock's name is 1-64 letters"),
        ({"parameters": {"ratio": float("nan")}}, "parameter_defaults must be JSON"),
        ({"parameters": {"when": datetime(2027, 1, 1)}}, "parameter_defaults must be JSON"),
        ({"labels": [" gpu"]}, "spaces around it"),
        (
            {"start_date": datetime(2027, 1, 2), "end_date": datetime(2027, 1, 1)},
            "end_date 2027-01-01T00:00:00[+]00:00 is not after start_date",
        ),
        ({"extra": 1}, "Extra inputs are not permitted"),
    ],
)
def test_a_clock_spec_refuses_what_aws_or_a_run_could_not_take(
    fields: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        ClockSpec.model_validate({"name": "clock-1", "expression": "rate(1 hour)", **fields})


def test_clock_names() -> None:
    assert check_clock_name("clock-1.a_b") == "clock-1.a_b"
    with pytest.raises(ScheduleError):
        check_clock_name("")


def test_a_schedule_has_clocks_with_names_of_their_own() -> None:
    one = ClockSpec(name="a", expression="rate(1 hour)")
    assert ScheduleSpec(clocks=[one, one.model_copy(update={"name": "b"})]).clocks[1].name == "b"
    with pytest.raises(ValidationError, match="two clocks are named 'a'"):
        ScheduleSpec(clocks=[one, one])
    with pytest.raises(ValidationError, match="at least 1 item"):
        ScheduleSpec(clocks=[])
    spec = ScheduleSpec.of_expression("cron(0 10 * * ? *)", timezone="America/New_York")
    assert (spec.clocks[0].name, spec.clocks[0].timezone) == ("clock-1", "America/New_York")
    with pytest.raises(ScheduleError, match="singular unit"):
        ScheduleSpec.of_expression("rate(1 hours)")


NOW = datetime(2027, 5, 1, 12, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "start", "wanted"),
    [
        ("rate(1 hour)", None, None),
        ("rate(1 hour)", datetime(2027, 6, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC)),
        # a start up to 5 minutes past is still taken
        ("rate(1 hour)", NOW - timedelta(minutes=4), NOW - timedelta(minutes=4)),
        # a rate keeps its phase: the first fire at or after now
        ("rate(1 hour)", datetime(2020, 1, 1, 9, 30), datetime(2027, 5, 1, 12, 30, tzinfo=UTC)),
        ("rate(7 days)", datetime(2027, 4, 1, 12, 10), datetime(2027, 5, 6, 12, 10, tzinfo=UTC)),
        ("rate(1 day)", datetime(2027, 4, 1, 12, 10), NOW),
        # a cron fires by the wall clock: a past start changes nothing
        ("cron(0 9 * * ? *)", datetime(2020, 1, 1), None),
        ("cron(0 9 * * ? *)", datetime(2028, 1, 1), datetime(2028, 1, 1, tzinfo=UTC)),
        ("at(2027-06-01T00:00:00)", datetime(2028, 1, 1), None),
    ],
)
def test_the_start_date_aws_is_given(
    expression: str, start: datetime | None, wanted: datetime | None
) -> None:
    clock = ClockSpec(name="c", expression=expression, start_date=start)
    assert clock.start_date_for(NOW) == wanted


# --- registrations ----------------------------------------------------------------------------

BASE = {"name": "etl", "storage": {"type": "Module", "path": "etl:flow"}}


def test_a_registration_carries_its_schedule_through_json() -> None:
    registration = FlowRegistration.model_validate(
        {
            **BASE,
            "schedule": {
                "clocks": [
                    {"name": "clock-1", "expression": "rate(5 minutes)"},
                    {
                        "name": "clock-2",
                        "expression": "cron(0 9 ? * 2-6 *)",
                        "timezone": "Europe/Berlin",
                        "parameters": {"region": "eu"},
                        "labels": ["eu"],
                    },
                ]
            },
        }
    )
    assert registration.schedule is not None
    again = FlowRegistration.model_validate_json(registration.model_dump_json())
    assert again == registration
    assert again.schedule is not None
    assert again.schedule.clocks[1].parameters == {"region": "eu"}


def test_a_schedule_given_as_an_expression_is_one_clock() -> None:
    registration = FlowRegistration.model_validate({**BASE, "schedule": "rate(5 minutes)"})
    assert registration.schedule == ScheduleSpec.of_expression("rate(5 minutes)")
    with pytest.raises(ValidationError, match="singular unit"):
        FlowRegistration.model_validate({**BASE, "schedule": "rate(1 minutes)"})


def test_older_stored_versions_stay_readable() -> None:
    """Before schedules existed a version stored ``str(flow.schedule)``, whatever it was."""
    stored = {**BASE, "version": 3, "registered_at": "2026-01-01T00:00:00Z"}
    as_text = json.dumps({**stored, "schedule": "rate(5 minutes)"})
    schedule = FlowRegistration.model_validate_json(as_text).schedule
    assert schedule == ScheduleSpec.of_expression("rate(5 minutes)")
    not_an_expression = json.dumps({**stored, "schedule": "<Schedule object at 0x7f>"})
    assert FlowRegistration.model_validate_json(not_an_expression).schedule is None
    assert FlowRegistration.model_validate_json(json.dumps(stored)).schedule is None


def test_the_schedule_is_part_of_the_content() -> None:
    plain = FlowRegistration.model_validate(BASE).with_content_hash()
    scheduled = FlowRegistration.model_validate(
        {**BASE, "schedule": "rate(5 minutes)"}
    ).with_content_hash()
    assert plain.content_hash != scheduled.content_hash


@pytest.mark.parametrize(
    ("name", "ok"),
    [("clock-1", True), ("x", True), ("a.b_c", True), ("x-", False), ("-x", False), ("", False)],
)
def test_clock_names_start_and_end_with_a_letter_or_digit(name: str, ok: bool) -> None:
    if ok:
        assert check_clock_name(name) == name
    else:
        with pytest.raises(ScheduleError, match="starting and ending with a letter or digit"):
            check_clock_name(name)


def test_an_expression_longer_than_aws_takes_is_refused() -> None:
    minutes = ",".join(str(minute) for minute in range(60))
    hours = ",".join(str(hour) for hour in range(24))
    days = ",".join(str(day) for day in range(1, 29))
    with pytest.raises(ScheduleError, match="AWS takes schedule expressions of at most 256"):
        classic_cron_to_aws(f"{minutes} {hours} {days} * *")


def test_parameters_holding_a_scheduler_placeholder_are_refused() -> None:
    with pytest.raises(ScheduleError, match="would replace it"):
        check_clock_parameters({"note": "run <aws.scheduler.execution-id>"})
