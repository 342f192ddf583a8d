"""Schedule expressions as EventBridge Scheduler takes them, and the schedule a flow registers.

A flow's schedule (``ScheduleSpec``) is one or more clocks; each clock (``ClockSpec``) becomes one
EventBridge Scheduler schedule: an expression in AWS's own form, the IANA time zone AWS evaluates
it in, optional start and end dates, and the parameters and labels its runs get. What AWS would
refuse is refused here, when the schedule is defined, with the reason:

>>> parse_expression("cron(0  10 * * ? *)")
'cron(0 10 * * ? *)'
>>> try:
...     parse_expression("rate(1 minutes)")
... except ScheduleError as exc:
...     print(exc)
'rate(1 minutes)': AWS wants the singular unit for 1: rate(1 minute)

Classic 5-field cron (what Prefect's ``CronClock`` and croniter read) and intervals translate to
AWS's forms, or are refused with the reason when AWS cannot say the same thing:

>>> classic_cron_to_aws("0 9 * * 1-5")
'cron(0 9 ? * 2-6 *)'
>>> interval_to_rate(timedelta(hours=2))
'rate(2 hours)'
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from flowrelay.core import jsonvalues
from flowrelay.core.labels import check_labels
from flowrelay.core.modeling import Model


class ScheduleError(ValueError):
    """A schedule, clock or expression that cannot be an EventBridge Scheduler schedule; the
    message (one line) says what is wrong and, where there is one, what to write instead."""


def _refused(text: str, reason: str) -> ScheduleError:
    shown = repr(text) if len(text) <= 120 else repr(text[:117]) + "..."
    return ScheduleError(f"{shown}: {reason}")


# --- AWS expressions ---------------------------------------------------------------------------

MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK, YEAR = range(6)
_FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week", "year")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (1, 7), (1970, 2199))
#: The largest increment (``/``) AWS takes in each field (Quartz's rule: less than the field's
#: span); day-of-week takes none.
_MAX_STEP = (59, 23, 31, 12, 0, 229)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAYS = {
    name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)
}
_NUMBER = re.compile(r"[0-9]{1,6}")
#: A rate's value: AWS documents no largest one; far beyond any interval a timedelta holds.
_RATE_VALUE = re.compile(r"[0-9]{1,15}")
_WRAPPED = re.compile(r"([A-Za-z]+)\((.*)\)", re.DOTALL)
_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_RATE_UNITS = {"minute": 1, "hour": 60, "day": 24 * 60}
#: What EventBridge Scheduler takes for each kind of expression.
KINDS = ("cron", "rate", "at")


def parse_expression(text: str) -> str:
    """``text`` as EventBridge Scheduler takes it, in one canonical spelling (single spaces,
    names in capitals, numbers without leading zeros); ``ScheduleError`` with AWS's reason for
    what it refuses.

    - ``cron(minute hour day-of-month month day-of-week year)``: exactly one of day-of-month and
      day-of-week is ``?``; ``,`` ``-`` ``*`` ``/`` in every field but day-of-week (no ``/``);
      ``L``, ``L-n`` and ``nW`` in day-of-month; ``L`` (Saturday, spelled 7), ``nL`` and ``n#k``
      in day-of-week (1-7, 1 = Sunday, or SUN-SAT); months 1-12 or JAN-DEC; years 1970-2199.
    - ``rate(value unit)``: a whole number of at least 1; ``minute``, ``hour``, ``day`` for 1 and
      ``minutes``, ``hours``, ``days`` otherwise.
    - ``at(yyyy-mm-ddThh:mm:ss)``: one time, in the schedule's time zone.

    >>> parse_expression("cron(0 9 ? * mon-fri *)")
    'cron(0 9 ? * MON-FRI *)'
    >>> parse_expression("rate(5 minutes)"), parse_expression("at(2027-01-01T09:00:00)")
    ('rate(5 minutes)', 'at(2027-01-01T09:00:00)')
    >>> parse_expression("cron(0 9 * * MON *)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowrelay.core.schedules.ScheduleError: 'cron(0 9 * * MON *)': ... cron(0 9 ? * MON *)
    """
    if not isinstance(text, str):
        raise ScheduleError(
            f"a schedule expression is text such as 'rate(5 minutes)', got {type(text).__name__}"
        )
    stripped = text.strip()
    wrapped = _WRAPPED.fullmatch(stripped)
    if wrapped is None:
        if len(stripped.split()) == 5:
            raise _refused(
                text,
                "this looks like a classic 5-field cron expression: give it to "
                "CronClock/CronSchedule (flowrelay.schedules), which translate it, or write the "
                "AWS form cron(minute hour day-of-month month day-of-week year)",
            )
        raise _refused(
            text,
            "not a schedule expression: write cron(minute hour day-of-month month day-of-week "
            "year), rate(value unit) or at(yyyy-mm-ddThh:mm:ss)",
        )
    kind, body = wrapped.groups()
    if kind not in KINDS:
        if kind.lower() in KINDS:
            raise _refused(text, f"write {kind.lower()}(...) in lower case")
        raise _refused(
            text, f"unknown kind {kind}(...): AWS takes cron(...), rate(...) and at(...)"
        )
    if kind == "cron":
        canonical = _parse_cron(text, body)
    elif kind == "rate":
        canonical = _parse_rate(text, body)
    else:
        canonical = _parse_at(text, body)
    if len(canonical) > MAX_EXPRESSION:
        raise _refused(
            text,
            f"{len(canonical)} characters: AWS takes schedule expressions of at most "
            f"{MAX_EXPRESSION}; use fewer list items (ranges, increments) or two clocks",
        )
    return canonical


def expression_kind(expression: str) -> Literal["cron", "rate", "at"]:
    """Whether a canonical expression (``parse_expression``'s) is a cron, a rate or an at.

    >>> expression_kind("rate(1 day)")
    'rate'
    """
    kind = expression.split("(", 1)[0]
    if kind == "cron":
        return "cron"
    if kind == "rate":
        return "rate"
    if kind == "at":
        return "at"
    raise ScheduleError(f"{expression!r} is not a schedule expression")


def rate_interval(expression: str) -> timedelta:
    """How often a ``rate(...)`` expression fires.

    >>> rate_interval("rate(90 minutes)")
    datetime.timedelta(seconds=5400)
    """
    canonical = parse_expression(expression)
    if expression_kind(canonical) != "rate":
        raise ScheduleError(f"{expression!r} is not a rate expression")
    value, unit = canonical[len("rate(") : -1].split()
    return timedelta(minutes=int(value) * _RATE_UNITS[unit.removesuffix("s")])


def _parse_rate(text: str, body: str) -> str:
    parts = body.split()
    if len(parts) != 2:
        raise _refused(text, "a rate is rate(value unit), e.g. rate(5 minutes) or rate(1 hour)")
    value, unit = parts
    if not _RATE_VALUE.fullmatch(value):
        raise _refused(text, f"a rate's value is a whole number of at least 1, not {value!r}")
    number = int(value)
    if number < 1:
        raise _refused(text, "a rate's value is at least 1")
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        if unit.lower().removesuffix("s") in _RATE_UNITS:
            raise _refused(text, f"write the unit in lower case: {unit.lower()}")
        if singular in ("second", "sec", "secs"):
            raise _refused(text, "AWS rates are at least one minute: rate(1 minute)")
        if singular == "week":
            days = 7 * number
            raise _refused(text, f"AWS rates have no weeks: rate({days} days)")
        raise _refused(text, f"unknown unit {unit!r}: AWS rates are in minutes, hours or days")
    wanted = singular if number == 1 else singular + "s"
    if unit != wanted:
        which = "singular" if number == 1 else "plural"
        raise _refused(text, f"AWS wants the {which} unit for {number}: rate({number} {wanted})")
    return f"rate({number} {wanted})"


def _parse_at(text: str, body: str) -> str:
    when = body.strip()
    if not _AT.fullmatch(when):
        raise _refused(
            text,
            "a one-time schedule is at(yyyy-mm-ddThh:mm:ss), local time in the schedule's time "
            "zone (no offset, no fractions of a second)",
        )
    try:
        datetime.strptime(when, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise _refused(text, f"{when} is not a date and time that exists") from None
    return f"at({when})"


def _parse_cron(text: str, body: str) -> str:
    fields = body.split()
    if len(fields) != 6:
        hint = {
            5: ": add the year (* for every year); a classic 5-field cron goes to CronClock, "
            "which translates it",
            7: ": AWS cron has no seconds field",
        }.get(len(fields), "")
        raise _refused(
            text,
            f"AWS cron has 6 fields (minute hour day-of-month month day-of-week year), "
            f"this has {len(fields)}{hint}",
        )
    canonical = [_cron_field(text, index, field) for index, field in enumerate(fields)]
    day_of_month, day_of_week = canonical[DAY_OF_MONTH], canonical[DAY_OF_WEEK]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise _refused(text, _question_mark_rule(canonical))
    return f"cron({' '.join(canonical)})"


def _question_mark_rule(fields: list[str]) -> str:
    day_of_month, day_of_week = fields[DAY_OF_MONTH], fields[DAY_OF_WEEK]
    rule = "exactly one of day-of-month and day-of-week must be ? in AWS cron"
    if day_of_month == "?":
        return f"{rule}, and both are: one of them says which days (* for every day)"
    suggestion = list(fields)
    if day_of_week == "*":
        suggestion[DAY_OF_WEEK] = "?"
    elif day_of_month == "*":
        suggestion[DAY_OF_MONTH] = "?"
    else:
        return (
            f"{rule}; this restricts both ({day_of_month} and {day_of_week}), which AWS cannot "
            f"express: use two clocks, one for each"
        )
    numbered = any(char.isdigit() for char in day_of_week)
    note = "; AWS numbers the days 1-7 from Sunday (MON-FRI is 2-6)" if numbered else ""
    return f"{rule}; for these days write cron({' '.join(suggestion)}){note}"


def _cron_field(text: str, index: int, field: str) -> str:
    """One field of an AWS cron expression, canonical."""
    name = _FIELD_NAMES[index]
    upper = field.upper()
    if upper == "?":
        if index not in (DAY_OF_MONTH, DAY_OF_WEEK):
            raise _refused(text, f"? is for day-of-month or day-of-week, not the {name}")
        return "?"
    if index == DAY_OF_MONTH:
        special = _day_of_month_special(text, upper)
        if special is not None:
            return special
    if index == DAY_OF_WEEK:
        special = _day_of_week_special(text, upper)
        if special is not None:
            return special
    if upper == "*":
        return "*"
    items = upper.split(",")
    return ",".join(_cron_item(text, index, item) for item in items)


def _day_of_month_special(text: str, field: str) -> str | None:
    if field == "L":
        return field
    if field == "LW":
        # The month's last weekday, as in Quartz, whose cron AWS's follows (AWS's reference
        # lists L and W for day-of-month without spelling the pair out).
        return field
    if "#" in field:
        raise _refused(text, "# is for day-of-week (6#3: the third Friday), not day-of-month")
    if "L" not in field and "W" not in field:
        return None
    if field.startswith("L-") and _NUMBER.fullmatch(field[2:]):
        back = int(field[2:])
        if not 1 <= back <= 30:
            raise _refused(text, f"L-{back}: L-n counts 1 to 30 days back from the month's end")
        return f"L-{back}"
    if field.endswith("W") and _NUMBER.fullmatch(field[:-1]):
        day = int(field[:-1])
        if not 1 <= day <= 31:
            raise _refused(text, f"{field}: the day before W is 1-31")
        return f"{day}W"
    raise _refused(
        text,
        f"day-of-month {field}: L and W stand alone in the field (L, L-3, LW or 15W), not in "
        f"lists, ranges or increments",
    )


def _day_of_week_special(text: str, field: str) -> str | None:
    if field == "L":
        # Alone in day-of-week, L is the week's last day, Saturday: spelled 7, which every
        # reader of AWS cron (the dev stack's aws-croniter too) takes the same way.
        return "7"
    if "/" in field:
        raise _refused(text, "day-of-week takes no increments (/) in AWS cron: list the days")
    if "#" in field:
        day, _, nth = field.partition("#")
        if "," in field or "-" in field or not _NUMBER.fullmatch(nth):
            raise _refused(
                text, f"day-of-week {field}: # stands alone, as day#n (6#3: the third Friday)"
            )
        if not 1 <= int(nth) <= 5:
            raise _refused(text, f"day-of-week {field}: the n of day#n is 1-5")
        return f"{_day_token(text, day)}#{int(nth)}"
    if field.endswith("L"):
        day = field[:-1]
        if "," in day or "-" in day:
            raise _refused(
                text, f"day-of-week {field}: L stands alone, as L or dayL (6L: the last Friday)"
            )
        return f"{_day_token(text, day)}L"
    return None


def _day_token(text: str, token: str) -> str:
    """A day of the week as written (a name or 1-7), canonical."""
    _value(text, DAY_OF_WEEK, token)
    return token if token in _DAYS else str(int(token))


def _cron_item(text: str, index: int, item: str) -> str:
    """One comma-separated item of a field: ``v``, ``a-b``, with ``/step`` (or ``*/step``)."""
    name = _FIELD_NAMES[index]
    if item == "":
        raise _refused(text, f"the {name} field has an empty item (two commas, or one at an end)")
    if item == "*":
        raise _refused(text, f"* stands alone in the {name} field, not in a list")
    base, slash, step = item.partition("/")
    if slash:
        if index == DAY_OF_WEEK:
            raise _refused(text, "day-of-week takes no increments (/) in AWS cron: list the days")
        if not _NUMBER.fullmatch(step):
            raise _refused(text, f"{item}: the increment after / is a whole number")
        if not 1 <= int(step) <= _MAX_STEP[index]:
            raise _refused(
                text, f"{item}: the {name} increment is 1-{_MAX_STEP[index]}, not {int(step)}"
            )
        step = str(int(step))
    if base == "*" and slash:
        start = "*"
    else:
        low, dash, high = base.partition("-")
        start = _value_token(text, index, low)
        if dash:
            # A range may wrap (FRI-MON, 22-2): AWS reads it as running past the end.
            start = f"{start}-{_value_token(text, index, high)}"
    return f"{start}/{step}" if slash else start


def _value_token(text: str, index: int, token: str) -> str:
    _value(text, index, token)
    if (index == MONTH and token in _MONTHS) or (index == DAY_OF_WEEK and token in _DAYS):
        return token
    return str(int(token))


def _value(text: str, index: int, token: str) -> int:
    name = _FIELD_NAMES[index]
    low, high = _BOUNDS[index]
    names = _MONTHS if index == MONTH else _DAYS if index == DAY_OF_WEEK else {}
    if token in names:
        return names[token]
    if not _NUMBER.fullmatch(token):
        also = " or JAN-DEC" if index == MONTH else " or SUN-SAT" if index == DAY_OF_WEEK else ""
        raise _refused(text, f"{token!r} is not a {name} ({low}-{high}{also})")
    number = int(token)
    if not low <= number <= high:
        note = ", 1 = Sunday" if index == DAY_OF_WEEK else ""
        raise _refused(text, f"{name} {number} is out of range ({low}-{high}{note})")
    return number


# --- classic cron ------------------------------------------------------------------------------

_NICKNAMES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Classic fields: minute, hour, day-of-month, month, day-of-week (0-7, 0 and 7 = Sunday).
_CLASSIC_FIELDS = (MINUTE, HOUR, DAY_OF_MONTH, MONTH)
_CLASSIC_DAYS = {name: number - 1 for name, number in _DAYS.items()}


def classic_cron_to_aws(expr: str, day_or: bool = True) -> str:
    """A classic 5-field cron expression (minute hour day-of-month month day-of-week, as croniter
    and Prefect's ``CronClock`` read it) in AWS's form; ``ScheduleError`` saying why when AWS
    cannot express it.

    Day-of-week 0-7 (0 and 7 = Sunday) becomes AWS's 1-7 (1 = Sunday); of the day fields, the
    one left ``*`` becomes ``?``; the year is ``*``. Classic cron runs on days that match
    *either* restricted day field (``day_or=True``, croniter's default) or, with
    ``day_or=False``, both; AWS restricts only one, so both restricted is refused.

    >>> classic_cron_to_aws("*/15 * * * *"), classic_cron_to_aws("0 12 * * 7")
    ('cron(*/15 * * * ? *)', 'cron(0 12 ? * 1 *)')
    >>> classic_cron_to_aws("@hourly")
    'cron(0 * * * ? *)'
    >>> classic_cron_to_aws("0 9 1 * 1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowrelay.core.schedules.ScheduleError: '0 9 1 * 1': ... use two clocks, ...
    """
    if not isinstance(expr, str):
        raise ScheduleError(
            f"a cron expression is text such as '0 9 * * 1-5', got {type(expr).__name__}"
        )
    text = expr.strip()
    if _WRAPPED.fullmatch(text):
        raise _refused(expr, "already an AWS expression, not a classic 5-field cron")
    if text.startswith("@"):
        if text.lower() == "@reboot":
            raise _refused(expr, "runs when cron starts; a schedule has no start-up to run at")
        if text.lower() not in _NICKNAMES:
            raise _refused(expr, f"unknown nickname; known: {', '.join(_NICKNAMES)}")
        text = _NICKNAMES[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        hint = {
            6: ": croniter reads a sixth field as seconds, and schedules fire on whole minutes",
            7: ": croniter reads fields six and seven as seconds and year, and schedules fire on "
            "whole minutes (an AWS cron(...) has a year field)",
        }.get(len(fields), "")
        raise _refused(
            expr,
            f"a classic cron expression has 5 fields (minute hour day-of-month month "
            f"day-of-week), this has {len(fields)}{hint}",
        )
    minute, hour, day_of_month, month, day_of_week = (
        _classic_field(expr, index, field)
        for index, field in zip((*_CLASSIC_FIELDS, DAY_OF_WEEK), fields, strict=True)
    )
    if day_of_week == "*":
        day_of_week = "?"
    elif day_of_month == "*":
        day_of_month = "?"
    else:
        days = f"day-of-month ({fields[DAY_OF_MONTH]}) and day-of-week ({fields[DAY_OF_WEEK]})"
        if day_or:
            first = " ".join([*fields[:DAY_OF_WEEK], "*"])
            second = " ".join([*fields[:DAY_OF_MONTH], "*", fields[MONTH], fields[DAY_OF_WEEK]])
            raise _refused(
                expr,
                f"restricts both {days}: classic cron runs on days that match either, and an AWS "
                f"cron expression restricts only one of them (the other is ?), so it cannot say "
                f"this; use two clocks, CronClock({first!r}) and CronClock({second!r})",
            )
        raise _refused(
            expr,
            f"with day_or=False runs on days that match both {days}, and an AWS cron "
            f"expression restricts only one of them (the other is ?); for the nth weekday of a "
            f"month write an AWS expression with # (cron(0 9 ? * 6#2 *): the second Friday)",
        )
    aws = f"cron({minute} {hour} {day_of_month} {month} {day_of_week} *)"
    try:
        return parse_expression(aws)
    except ScheduleError as exc:  # a safety net: the fields were checked one by one above
        raise _refused(expr, f"translates to {aws}, which AWS refuses ({exc})") from None


def _classic_field(expr: str, index: int, field: str) -> str:
    """One classic field in AWS's spelling (``*`` for any; ``?`` is croniter's ``*``)."""
    upper = field.upper()
    if upper in ("*", "?"):
        if upper == "?" and index not in (DAY_OF_MONTH, DAY_OF_WEEK):
            raise _refused(expr, f"? is for the day fields, not the {_FIELD_NAMES[index]}")
        return "*"
    if index == DAY_OF_WEEK:
        return _classic_days_of_week(expr, upper)
    if index == DAY_OF_MONTH and upper == "L":
        return "L"
    return ",".join(_classic_item(expr, index, item) for item in upper.split(","))


def _classic_item(expr: str, index: int, item: str) -> str:
    name = _FIELD_NAMES[index]
    low, high = _BOUNDS[index]
    if item in ("", "*"):
        what = "an empty item" if not item else "* in a list"
        raise _refused(expr, f"the {name} field has {what}")
    base, slash, step = item.partition("/")
    if slash:
        if not _NUMBER.fullmatch(step) or int(step) < 1:
            raise _refused(expr, f"{item}: the increment after / is a whole number of at least 1")
        if int(step) > _MAX_STEP[index]:
            raise _refused(
                expr,
                f"{item}: AWS takes {name} increments up to {_MAX_STEP[index]}, and */"
                f"{int(step)} fires only at {low}: write {low}",
            )
    if base == "*":
        if not slash:
            raise _refused(expr, f"* stands alone in the {name} field")
        return f"*/{int(step)}"
    first, dash, last = base.partition("-")
    start = _classic_value(expr, index, first)
    if dash:
        end = _classic_value(expr, index, last)
        if start > end:
            raise _refused(
                expr,
                f"{base} runs backwards; classic cron has no ranges that wrap around: write "
                f"{start}-{high},{low}-{end}",
            )
        text = f"{start}-{end}"
    else:
        text = str(start)
    return f"{text}/{int(step)}" if slash else text


def _classic_value(expr: str, index: int, token: str) -> int:
    name = _FIELD_NAMES[index]
    low, high = _BOUNDS[index]
    if index == MONTH and token in _MONTHS:
        return _MONTHS[token]
    if not _NUMBER.fullmatch(token):
        also = " or JAN-DEC" if index == MONTH else ""
        raise _refused(expr, f"{token!r} is not a {name} ({low}-{high}{also})")
    number = int(token)
    if not low <= number <= high:
        raise _refused(expr, f"{name} {number} is out of range ({low}-{high})")
    return number


def _classic_days_of_week(expr: str, field: str) -> str:
    """Classic day-of-week (0-7, 0 and 7 = Sunday, SUN-SAT) as AWS's (1-7, 1 = Sunday)."""
    if "L" in field:  # no day's name has an L
        raise _refused(
            expr,
            "L in day-of-week (the last such day of the month) has no classic translation "
            "here: write the AWS form, e.g. cron(0 9 ? * 6L *) for the last Friday",
        )
    if "#" in field:
        day, _, nth = field.partition("#")
        if "," in field or "-" in field or "/" in field or not _NUMBER.fullmatch(nth):
            raise _refused(expr, f"{field}: # stands alone, as day#n (5#3: the third Friday)")
        if not 1 <= int(nth) <= 5:
            raise _refused(expr, f"{field}: the n of day#n is 1-5")
        return f"{_classic_day(expr, day) + 1}#{int(nth)}"
    days: set[int] = set()
    for item in field.split(","):
        if item in ("", "*"):
            what = "an empty item" if not item else "* in a list"
            raise _refused(expr, f"the day-of-week field has {what}")
        base, slash, step = item.partition("/")
        increment = 1
        if slash:
            if not _NUMBER.fullmatch(step) or int(step) < 1:
                raise _refused(expr, f"{item}: the increment after / is a whole number of 1+")
            increment = int(step)
        if base == "*":
            first, last = 0, 6
        else:
            low, dash, high = base.partition("-")
            first = _classic_day(expr, low, keep_seven=True)
            last = _classic_day(expr, high, keep_seven=True) if dash else (6 if slash else first)
            if first > last:
                raise _refused(
                    expr,
                    f"{base} runs backwards; classic cron has no ranges that wrap around: write "
                    f"{first}-6,0-{last}",
                )
        days.update(day % 7 for day in range(first, last + 1, increment))
    return _day_list(sorted(day + 1 for day in days))


def _classic_day(expr: str, token: str, keep_seven: bool = False) -> int:
    """A classic day of the week, 0-6 (Sunday 0), or 7 for Sunday in a range."""
    if token in _CLASSIC_DAYS:
        return _CLASSIC_DAYS[token]
    if not _NUMBER.fullmatch(token) or int(token) > 7:
        raise _refused(expr, f"{token!r} is not a day-of-week (0-7, 0 and 7 = Sunday, or SUN-SAT)")
    number = int(token)
    return number if keep_seven else number % 7


def _day_list(days: list[int]) -> str:
    """Sorted day numbers as a list with ranges: [2, 3, 4, 5, 6] -> '2-6', [1, 7] -> '1,7'."""
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        f"{run[0]}-{run[-1]}" if len(run) > 2 else ",".join(map(str, run)) for run in runs
    )


# --- intervals and time zones ------------------------------------------------------------------


def interval_to_rate(interval: timedelta) -> str:
    """An interval as an AWS ``rate(...)``, in its largest exact unit; ``ScheduleError`` when
    it is under a minute or not whole minutes (AWS rates count whole minutes, hours or days).

    >>> interval_to_rate(timedelta(minutes=90)), interval_to_rate(timedelta(days=7))
    ('rate(90 minutes)', 'rate(7 days)')
    >>> interval_to_rate(timedelta(seconds=90))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowrelay.core.schedules.ScheduleError: an interval of 0:01:30 is not a whole number of ...
    """
    if not isinstance(interval, timedelta):
        raise ScheduleError(
            f"an interval is a timedelta (timedelta(minutes=5)), got {type(interval).__name__}"
        )
    if interval <= timedelta(0):
        raise ScheduleError(f"an interval must be positive, got {interval}")
    if interval < timedelta(minutes=1):
        raise ScheduleError(
            f"an interval of {interval} is under one minute: AWS rates are at least 1 minute"
        )
    minutes, rest = divmod(interval, timedelta(minutes=1))
    if rest:
        raise ScheduleError(
            f"an interval of {interval} is not a whole number of minutes: AWS rates count whole "
            f"minutes, hours or days"
        )
    for unit, size in (("day", 24 * 60), ("hour", 60), ("minute", 1)):
        if minutes % size == 0:
            count = minutes // size
            return f"rate({count} {unit}{'' if count == 1 else 's'})"
    raise AssertionError("unreachable: every whole number of minutes is minutes")


#: Names zoneinfo lists that are no place's time: this machine's own zone, and tzdata's
#: placeholder.
_NOT_ZONES = frozenset({"localtime", "Factory"})


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def check_timezone(name: str) -> str:
    """``name`` if it is an IANA time zone (what EventBridge Scheduler takes); ``ScheduleError``
    otherwise, with the name meant when only its capitals are wrong.

    >>> check_timezone("Europe/Berlin")
    'Europe/Berlin'
    >>> check_timezone("europe/berlin")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    flowrelay.core.schedules.ScheduleError: ... 'europe/berlin': did you mean 'Europe/Berlin'?
    """
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(
            f"a time zone is an IANA name such as 'Europe/Berlin' or 'UTC', got {name!r}"
        )
    if name == "UTC" or name in _zones():
        return name
    if not _zones():
        raise ScheduleError(
            f"there is no time zone database on this machine to check {name!r} against: "
            f"install tzdata"
        )
    meant = next((zone for zone in sorted(_zones()) if zone.lower() == name.lower()), None)
    if meant is not None:
        raise ScheduleError(f"unknown time zone {name!r}: did you mean {meant!r}?")
    raise ScheduleError(
        f"unknown time zone {name!r}: AWS takes IANA names such as 'Europe/Berlin', "
        f"'America/New_York' or 'UTC'"
    )


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive one is taken to be UTC already (as Prefect's clocks take it).

    >>> as_utc(datetime(2027, 1, 1, 9))
    datetime.datetime(2027, 1, 1, 9, 0, tzinfo=datetime.timezone.utc)
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


# --- the registered schedule -------------------------------------------------------------------

#: A clock's name: part of its EventBridge Scheduler schedule's name, so AWS's characters; it
#: starts and ends with a letter or digit (a schedule's name joins it with a "-", and names
#: differing only in outer dashes would be one schedule).
_CLOCK_NAME = re.compile(r"[0-9A-Za-z](?:[0-9A-Za-z_.-]{0,62}[0-9A-Za-z])?")
#: What EventBridge Scheduler replaces in a target's input, on every attempt.
_PLACEHOLDER = "<aws.scheduler."
#: How far past a recurring schedule's start may be: AWS refuses an earlier StartDate.
START_DATE_GRACE = timedelta(minutes=5)
#: EventBridge Scheduler's limit on a schedule expression.
MAX_EXPRESSION = 256


def check_clock_name(name: str) -> str:
    """``name`` if it can name a clock (1-64 of letters, digits, ``-``, ``_`` and ``.``: it is
    part of its schedule's name in AWS).

    >>> check_clock_name("weekdays")
    'weekdays'
    """
    if not isinstance(name, str) or not _CLOCK_NAME.fullmatch(name):
        raise ScheduleError(
            f"a clock's name is 1-64 letters, digits, '-', '_' or '.', starting and ending "
            f"with a letter or digit (it names its schedule in AWS), got {name!r}"
        )
    return name


def check_clock_parameters(parameters: Any) -> dict[str, Any]:
    """``parameters`` if they can travel with each run of a clock (a dict of JSON values)."""
    if not isinstance(parameters, dict) or not all(isinstance(key, str) for key in parameters):
        raise ScheduleError(
            f"parameter_defaults is a dict of parameter names to values, got {parameters!r}"[:200]
        )
    try:
        json.dumps(parameters, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"parameter_defaults must be JSON values: {exc}") from None
    try:
        jsonvalues.check(parameters, whole="parameter_defaults")
    except jsonvalues.JsonValueError as exc:
        raise ScheduleError(str(exc)) from None
    if _PLACEHOLDER in json.dumps(parameters):
        raise ScheduleError(
            f"parameter_defaults hold {_PLACEHOLDER}...>: EventBridge Scheduler would replace it "
            "in every fire's request (a retry would then differ from its first try)"
        )
    return parameters


class ClockSpec(Model):
    """One clock of a flow's schedule: one EventBridge Scheduler schedule.

    ``expression`` is AWS's (``parse_expression``), evaluated in ``timezone`` (IANA); dates are
    instants, kept in UTC (a naive one is UTC); each run the clock requests gets
    ``parameters`` and ``labels``.

    >>> clock = ClockSpec(name="clock-1", expression="cron(0 9 ? * mon-fri *)",
    ...                   timezone="Europe/Berlin", parameters={"region": "eu"})
    >>> clock.expression, clock.kind
    ('cron(0 9 ? * MON-FRI *)', 'cron')
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Stable within the flow's schedule: clock-1, clock-2, ...")
    expression: str = Field(description="cron(...), rate(...) or at(...), as AWS takes it.")
    timezone: str = "UTC"
    start_date: datetime | None = None
    end_date: datetime | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    labels: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_clock_name(name)

    @field_validator("expression")
    @classmethod
    def _check_expression(cls, expression: str) -> str:
        return parse_expression(expression)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, timezone: str) -> str:
        return check_timezone(timezone)

    @field_validator("start_date", "end_date")
    @classmethod
    def _in_utc(cls, moment: datetime | None) -> datetime | None:
        return None if moment is None else as_utc(moment)

    @field_validator("parameters")
    @classmethod
    def _check_parameters(cls, parameters: dict[str, Any]) -> dict[str, Any]:
        return check_clock_parameters(parameters)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: list[str]) -> list[str]:
        return sorted(set(check_labels(labels)))

    @model_validator(mode="after")
    def _dates_in_order(self) -> ClockSpec:
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ScheduleError(
                f"clock {self.name!r}: end_date {self.end_date.isoformat()} is not after "
                f"start_date {self.start_date.isoformat()}"
            )
        return self

    @property
    def kind(self) -> Literal["cron", "rate", "at"]:
        return expression_kind(self.expression)

    def start_date_for(self, now: datetime) -> datetime | None:
        """The StartDate to give AWS for this clock at ``now``.

        AWS refuses a recurring schedule whose StartDate is more than 5 minutes past, and a
        clock defined long ago (Prefect's ``start_date=pendulum.datetime(2020, 1, 1)``) has
        one. A cron clock fires by the wall clock, so a past start changes nothing and is left
        out; a rate clock keeps its phase: its first fire at or after ``now``
        (start + k * rate). An ``at`` clock has none (AWS ignores it).

        >>> clock = ClockSpec(name="c", expression="rate(1 hour)",
        ...                   start_date=datetime(2020, 1, 1, 9, 30))
        >>> clock.start_date_for(datetime(2027, 5, 1, 12, 10, tzinfo=UTC)).isoformat()
        '2027-05-01T12:30:00+00:00'
        """
        start = self.start_date
        if start is None or self.kind == "at":
            return None
        now = as_utc(now)
        if start >= now - START_DATE_GRACE:
            return start
        if self.kind == "cron":
            return None
        every = rate_interval(self.expression)
        # Whole periods from the start to now, rounded up (integer division: exact).
        return start + -((start - now) // every) * every


class ScheduleSpec(Model):
    """A flow's schedule as registered: its clocks, each one EventBridge Scheduler schedule.

    >>> ScheduleSpec.of_expression("rate(5 minutes)").clocks[0].name
    'clock-1'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    clocks: list[ClockSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _names_unique(self) -> ScheduleSpec:
        seen: set[str] = set()
        for clock in self.clocks:
            if clock.name in seen:
                raise ScheduleError(f"two clocks are named {clock.name!r}: each needs its own")
            seen.add(clock.name)
        return self

    @classmethod
    def of_expression(cls, expression: str, timezone: str = "UTC") -> ScheduleSpec:
        """A schedule of one clock, ``clock-1``, from an AWS expression; ``ScheduleError`` when
        AWS would refuse it."""
        expression, timezone = parse_expression(expression), check_timezone(timezone)
        return cls(clocks=[ClockSpec(name="clock-1", expression=expression, timezone=timezone)])
