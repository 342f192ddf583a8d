"""When an EventBridge Scheduler schedule fires, computed as EventBridge Scheduler computes it.

``fire_times`` answers for the three kinds of ScheduleExpression, in the schedule's
ScheduleExpressionTimezone (IANA), with its StartDate and EndDate:

- ``cron(minutes hours day-of-month month day-of-week year)``: AWS's six fields, with ``?``,
  ``L``, ``W``, ``LW``, ``#``, month and weekday names and years; day-of-week 1-7 is SUN-SAT.
  The fields are read as wall-clock time in the time zone, and daylight saving time is handled as
  the EventBridge Scheduler User Guide says ("Daylight savings time on EventBridge Scheduler"):
  a wall-clock time that does not exist (spring forward) is skipped, and one that happens twice
  (fall back) fires once, at its first instance, before the shift. Fires are on or after
  StartDate and on or before EndDate.
- ``rate(value unit)``: every ``value`` minutes, hours or days (``minute`` or ``minutes``, ...),
  as elapsed time: a day is 24 hours whatever daylight saving does (User Guide, same section), so
  the time zone plays no part. StartDate "sets the first occurrence of the schedule"; without
  one, the schedule "starts invoking the target immediately" (User Guide, "Rate-based
  schedules"), that is at its creation: pass the schedule's CreationDate as ``start_date`` then.
  The fires are ``start_date + k * rate`` (k = 0, 1, ...), up to EndDate; the anchor is kept to
  the second, as the scheduled time AWS reports is. With no ``start_date`` at all, ``after`` is
  taken as the anchor (the first fire one rate after it).
- ``at(yyyy-mm-ddThh:mm:ss)``: once, at that wall-clock time in the time zone. StartDate and
  EndDate are ignored, as AWS ignores them for one-time schedules. A wall-clock time that does
  not exist is skipped like a cron time (AWS does not say; this is the cron rule), and a repeated
  one is its first instance.

The cron arithmetic is aws-croniter's (which works in UTC only): the wall-clock times are found
by asking it about local time written as UTC, then each is placed in the time zone. Where it
differs from AWS it is corrected here, each with a test (tests/control/test_fire_times.py):

- ``LW`` (the last weekday of the month) makes aws-croniter raise; it is the weekday nearest the
  last day of the month, so it is asked as ``28W``..``31W``, each kept in the months that day is
  the last of.
- ``L`` alone in day-of-week ("the last day of the week": Saturday, 7) matches nothing in
  aws-croniter; it is asked as ``7``. ``L-n`` in day-of-week, which aws-croniter accepts as the
  last weekday ``n`` of the month, is not AWS syntax (``nL`` is) and is refused.
- aws-croniter gives up after ten steps of its search (its guard against endless loops), so a
  date that is several years away (29 February in a year range that crosses 2100) comes back as
  nothing; the search goes on from the next month, up to the expression's last year.

>>> from datetime import UTC, datetime
>>> [t.isoformat() for t in fire_times(
...     "cron(0 9 ? * MON-FRI *)", "Europe/Berlin",
...     after=datetime(2026, 3, 27, 12, tzinfo=UTC), count=2)]
['2026-03-30T07:00:00+00:00', '2026-03-31T07:00:00+00:00']
>>> [scheduled_time_text(t) for t in fire_times(
...     "rate(90 minutes)", after=datetime(2026, 1, 1, tzinfo=UTC), count=2,
...     start_date=datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC))]
['2026-01-01T00:00:30Z', '2026-01-01T01:30:30Z']
>>> fire_times("cron(0 9 * * * *)", after=datetime(2026, 1, 1, tzinfo=UTC), count=1)
Traceback (most recent call last):
...
ValueError: cron(0 9 * * * *): day-of-month '*' and day-of-week '*': exactly one of them must be ?
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: How EventBridge Scheduler writes ``<aws.scheduler.scheduled-time>`` (and a dead letter's
#: SCHEDULED_TIME): UTC, to the second, e.g. ``2022-03-22T18:59:43Z``.
SCHEDULED_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

_KIND = re.compile(r"^\s*(cron|rate|at)\((.*)\)\s*$", re.DOTALL)
_RATE = re.compile(r"^\s*(\d+)\s+([a-z]+)\s*$")
_AT = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\s*$")
_RATE_UNITS = {
    "minute": timedelta(minutes=1),
    "minutes": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "hours": timedelta(hours=1),
    "day": timedelta(days=1),
    "days": timedelta(days=1),
}
#: Day-of-month values whose ``W`` is ``LW`` in the months they are the last day of.
_LAST_DAYS = (28, 29, 30, 31)
_TICK = timedelta(microseconds=1)


def scheduled_time_text(when: datetime) -> str:
    """``when`` as EventBridge Scheduler fills ``<aws.scheduler.scheduled-time>``.

    >>> scheduled_time_text(datetime(2026, 3, 29, 3, 30, 15, 999, tzinfo=UTC))
    '2026-03-29T03:30:15Z'
    """
    return _aware(when, "when").astimezone(UTC).strftime(SCHEDULED_TIME_FORMAT)


def fire_times(
    expression: str,
    timezone: str = "UTC",
    *,
    after: datetime,
    until: datetime | None = None,
    count: int | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
) -> list[datetime]:
    """The fire times of a schedule strictly after ``after``: on or before ``until`` and at most
    ``count`` of them (one of the two is needed), each an aware datetime in UTC, in order.

    ``timezone`` is the schedule's ScheduleExpressionTimezone; ``start_date`` and ``end_date``
    its StartDate and EndDate (for a rate schedule without StartDate, its CreationDate: see the
    module docstring). ``ValueError`` with one line naming what is wrong for an expression or
    time zone AWS would not take.

    >>> [t.isoformat() for t in fire_times(
    ...     "at(2026-11-01T01:30:00)", "America/New_York",
    ...     after=datetime(2026, 1, 1, tzinfo=UTC), count=5)]
    ['2026-11-01T05:30:00+00:00']
    """
    zone = _zone(timezone)
    after = _aware(after, "after").astimezone(UTC)
    if until is None and count is None:
        raise ValueError("fire_times needs until or count: a recurring schedule never ends")
    if count is not None and count < 0:
        raise ValueError(f"count must be 0 or more, not {count}")
    bounds = _Bounds(
        until=_utc(until, "until"),
        count=count,
        start=_utc(start_date, "start_date"),
        end=_utc(end_date, "end_date"),
    )
    kind, body = _kind(expression)
    if kind == "cron":
        sources = _parse_cron(expression, body)
        # Nothing before StartDate fires: start the search there rather than walk up to it.
        begin = after if bounds.start is None else max(after, bounds.start - _TICK)
        walls = _cron_walls(sources, begin.astimezone(zone))
        return bounds.take(_placed(walls, zone), after, start=True, end=True)
    if kind == "rate":
        every = _parse_rate(expression, body)
        anchor = _whole_second(bounds.start) if bounds.start is not None else after
        return bounds.take(_rate_times(anchor, every, after), after, start=False, end=True)
    local = _parse_at(expression, body)
    # StartDate and EndDate do not apply to one-time schedules.
    return bounds.take(_placed(iter([local]), zone), after, start=False, end=False)


def check_expression(expression: str, timezone: str = "UTC") -> None:
    """``ValueError`` (one line) when EventBridge Scheduler would refuse ``expression`` or
    ``timezone``; nothing otherwise.

    >>> check_expression("rate(5 minutes)")
    >>> check_expression("rate(0 minutes)")
    Traceback (most recent call last):
    ...
    ValueError: rate(0 minutes): the rate value must be a whole number of 1 or more
    """
    _zone(timezone)
    kind, body = _kind(expression)
    if kind == "cron":
        _parse_cron(expression, body)
    elif kind == "rate":
        _parse_rate(expression, body)
    else:
        _parse_at(expression, body)


# --- bounds -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Bounds:
    until: datetime | None
    count: int | None
    start: datetime | None
    end: datetime | None

    def take(
        self,
        times: Iterator[datetime],
        after: datetime,
        *,
        start: bool,
        end: bool,
    ) -> list[datetime]:
        """The ``times`` (ascending instants) after ``after`` within these bounds, StartDate and
        EndDate applied as ``start`` and ``end`` say (a rate's StartDate is its anchor instead,
        and one-time schedules ignore both)."""
        found: list[datetime] = []
        if self.count == 0:
            return found
        for when in times:
            if when <= after:
                continue
            if start and self.start is not None and when < self.start:
                continue
            if self.until is not None and when > self.until:
                break
            if end and self.end is not None and when > self.end:
                break
            found.append(when)
            if self.count is not None and len(found) >= self.count:
                break
        return found


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, not {value.isoformat()}")
    return value


def _utc(value: datetime | None, name: str) -> datetime | None:
    return None if value is None else _aware(value, name).astimezone(UTC)


def _whole_second(value: datetime) -> datetime:
    """Up to the whole second: AWS reports scheduled times to the second, and a fire is never
    before StartDate."""
    if value.microsecond:
        value = value.replace(microsecond=0) + timedelta(seconds=1)
    return value


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {timezone!r} (an IANA name, e.g. Europe/Berlin)"
        ) from None


def _kind(expression: str) -> tuple[str, str]:
    match = _KIND.match(expression)
    if match is None:
        raise ValueError(
            f"{expression!r} is not a schedule expression: expected cron(...), rate(...) or at(...)"
        )
    return match.group(1), match.group(2)


# --- rate and at ------------------------------------------------------------------------------


def _parse_rate(expression: str, body: str) -> timedelta:
    match = _RATE.match(body)
    if match is None:
        raise ValueError(f"{expression}: expected rate(value unit), e.g. rate(5 minutes)")
    value, unit = int(match.group(1)), match.group(2)
    if value < 1:
        raise ValueError(f"{expression}: the rate value must be a whole number of 1 or more")
    if unit not in _RATE_UNITS:
        raise ValueError(f"{expression}: the unit must be minute(s), hour(s) or day(s), not {unit}")
    return value * _RATE_UNITS[unit]


def _rate_times(anchor: datetime, every: timedelta, after: datetime) -> Iterator[datetime]:
    """``anchor + k * every`` for k = 0, 1, ... from the first one after ``after``."""
    k = 0 if after < anchor else math.floor((after - anchor) / every) + 1
    while True:
        yield anchor + k * every
        k += 1


def _parse_at(expression: str, body: str) -> datetime:
    match = _AT.match(body)
    if match is None:
        raise ValueError(f"{expression}: expected at(yyyy-mm-ddThh:mm:ss)")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        return datetime(year, month, day, hour, minute, second)  # wall-clock time, no zone yet
    except ValueError as exc:
        raise ValueError(f"{expression}: {exc}") from None


# --- cron -------------------------------------------------------------------------------------


def _parse_cron(expression: str, body: str) -> list[_Source]:
    """The aws-croniter searches whose merged matches are the expression's wall-clock times."""
    from aws_croniter import AwsCroniter  # type: ignore[import-untyped]

    fields = body.split()
    if len(fields) != 6:
        raise ValueError(
            f"{expression}: a cron expression has 6 fields (minutes hours day-of-month month "
            f"day-of-week year), not {len(fields)}"
        )
    minute, hour, day_of_month, month, day_of_week, year = fields
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ValueError(
            f"{expression}: day-of-month {day_of_month!r} and day-of-week {day_of_week!r}: "
            f"exactly one of them must be ?"
        )
    if day_of_week.startswith("L-"):
        raise ValueError(
            f"{expression}: day-of-week {day_of_week!r} is not AWS cron: the last given weekday "
            f"of the month is written nL (6L: the last Friday)"
        )
    if day_of_week == "L":
        day_of_week = "7"  # the last day of the week: aws-croniter matches nothing for "L"
    variants: list[tuple[str, Callable[[datetime], bool] | None]]
    if day_of_month == "LW":
        variants = [(f"{day}W", _last_day_is(day)) for day in _LAST_DAYS]
    else:
        variants = [(day_of_month, None)]
    sources = []
    for day, keep in variants:
        text = " ".join((minute, hour, day, month, day_of_week, year))
        try:
            cron = AwsCroniter(text)
        except ValueError as exc:  # its own errors are ValueErrors; so are its int() failures
            raise ValueError(f"{expression}: {_one_line(exc)}") from None
        sources.append(_Source(cron, keep))
    return sources


def _last_day_is(day: int) -> Callable[[datetime], bool]:
    """Whether ``day`` is the last day of the month of a ``{day}W`` match: then that match is
    the month's last weekday (the weekday nearest its last day)."""

    def keep(found: datetime) -> bool:
        next_month = found.replace(day=1) + timedelta(days=32)
        last = (next_month.replace(day=1) - timedelta(days=1)).day
        return last == day

    return keep


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:1].lower() + text[1:] if text else type(exc).__name__


@dataclass
class _Source:
    """One aws-croniter search, with a filter on what it finds."""

    cron: object
    keep: Callable[[datetime], bool] | None

    def walls(self, start: datetime) -> Iterator[datetime]:
        """Its matches strictly after ``start`` (naive wall-clock time), ascending."""
        cursor = start
        while True:
            found = self._next(cursor)
            if found is None:
                return
            cursor = found
            if self.keep is None or self.keep(found):
                yield found

    def _next(self, wall: datetime) -> datetime | None:
        cron: object = self.cron
        years: list[int] = sorted(getattr(cron, "years", []) or [])
        if not years:
            return None
        # Whole seconds: aws-croniter rounds to the millisecond before it takes the minute, so
        # 11:59:59.9999995 would start its search after 12:00 (its matches are whole minutes).
        cursor = wall.replace(microsecond=0, tzinfo=UTC)
        while cursor.year <= years[-1]:
            found = cron.occurrence(cursor).next()  # type: ignore[attr-defined]
            if found is not None:
                return found.replace(tzinfo=None)  # type: ignore[no-any-return]
            # aws-croniter gave up after ten steps, or there is nothing more this year: go on
            # from the next month (or the next year the expression names), one second before
            # it, as its search starts at the minute after the time it is given.
            searched = cursor + timedelta(seconds=1)
            month_start = searched.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            following = (month_start + timedelta(days=32)).replace(day=1)
            later = [year for year in years if year >= following.year]
            if not later:
                return None
            if later[0] > following.year:
                following = following.replace(year=later[0], month=1)
            cursor = following - timedelta(seconds=1)
        return None


def _cron_walls(sources: list[_Source], after_local: datetime) -> Iterator[datetime]:
    """The expression's wall-clock times after ``after_local``'s wall time, ascending, once
    each."""
    start = after_local.replace(tzinfo=None)
    previous: datetime | None = None
    for wall in heapq.merge(*(source.walls(start) for source in sources)):
        if wall != previous:
            yield wall
        previous = wall


def _placed(walls: Iterator[datetime], zone: ZoneInfo) -> Iterator[datetime]:
    """Each wall-clock time as the instant it is in ``zone``: one that does not exist (spring
    forward) is left out; one that happens twice (fall back) is its first instance (fold=0),
    before the shift, as EventBridge Scheduler fires it once."""
    for wall in walls:
        instant = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
        if instant.astimezone(zone).replace(tzinfo=None) != wall:
            continue  # in the gap: this wall-clock time is skipped that day
        yield instant
