"""Clocks, with the names and arguments of Prefect 1.x's ``prefect.schedules.clocks``: each says
when a flow runs, with the parameters and labels of its runs, and becomes EventBridge Scheduler
schedules when the flow is registered (``ClockSpec``, ``flowrelay.core.schedules``).

Everything is checked when the clock is made: what AWS cannot express is refused with the reason.

>>> from datetime import timedelta
>>> IntervalClock(timedelta(hours=1)).expression
'rate(1 hour)'
>>> CronClock("0 9 * * 1-5", parameter_defaults={"region": "eu"}).expression
'cron(0 9 ? * 2-6 *)'
>>> [spec.expression for spec in DatesClock([datetime(2027, 1, 1, 9)]).specs("clock-1")]
['at(2027-01-01T09:00:00)']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from flowrelay.core.labels import check_label
from flowrelay.core.schedules import (
    KINDS,
    ClockSpec,
    ScheduleError,
    as_utc,
    check_clock_name,
    check_clock_parameters,
    check_timezone,
    classic_cron_to_aws,
    interval_to_rate,
    parse_expression,
)


class Clock:
    """What every clock has (Prefect 1.x's ``Clock``).

    Args:
        start_date: no run before it; its time zone is the clock's (see ``CronClock``).
        end_date: no run after it.
        parameter_defaults: the parameter values of every run this clock starts.
        labels: the labels of every run this clock starts.
        name: the clock's name within its schedule (default ``clock-<n>``, by position); it
            names the clock's EventBridge Scheduler schedule and ``flowrelay schedules pause``
            takes it. Not in Prefect.
    """

    def __init__(
        self,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        parameter_defaults: Mapping[str, Any] | None = None,
        labels: Iterable[str] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        kind = type(self).__name__
        self.start_date = _moment(start_date, f"{kind}'s start_date")
        self.end_date = _moment(end_date, f"{kind}'s end_date")
        if (
            start_date is not None
            and end_date is not None
            and as_utc(end_date) <= as_utc(start_date)
        ):
            raise ScheduleError(
                f"{kind}: end_date {end_date.isoformat()} is not after start_date "
                f"{start_date.isoformat()}"
            )
        self.parameter_defaults: dict[str, Any] = _parameters(parameter_defaults, kind)
        self.labels: list[str] = _labels(labels, kind)
        self.name = None if name is None else _clock_name(name, kind)

    def specs(self, name: str) -> list[ClockSpec]:
        """This clock as registered: its EventBridge Scheduler schedules, named from ``name``."""
        raise NotImplementedError


class IntervalClock(Clock):
    """Runs every ``interval`` from ``start_date`` (Prefect 1.x's ``IntervalClock``): an AWS
    ``rate(...)``, so the interval is whole minutes, at least one.

    Without a ``start_date``, AWS counts from when the schedule is created (Prefect counted from
    2019-01-01 UTC). A rate counts elapsed time, as Prefect's intervals under a day do; Prefect
    kept intervals of a day or more at the same local time across daylight-saving changes, so a
    1-day or 7-day interval whose ``start_date`` is in a zone with daylight saving becomes the
    cron expression that does that (the start's time, every day or on its weekday). Other
    intervals of days move by an hour of local time when the clocks change.

    >>> from zoneinfo import ZoneInfo
    >>> IntervalClock(timedelta(minutes=15)).expression
    'rate(15 minutes)'
    >>> berlin = datetime(2027, 1, 4, 9, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    >>> clock = IntervalClock(timedelta(days=7), start_date=berlin)
    >>> clock.expression, clock.timezone
    ('cron(30 9 ? * 2 *)', 'Europe/Berlin')
    """

    def __init__(
        self,
        interval: timedelta,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        parameter_defaults: Mapping[str, Any] | None = None,
        labels: Iterable[str] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(start_date, end_date, parameter_defaults, labels, name=name)
        try:
            rate = interval_to_rate(interval)
        except ScheduleError as exc:
            raise ScheduleError(f"IntervalClock: {exc}") from None
        self.interval = interval
        # A rate is elapsed time, the same in every zone: a start without an IANA zone (a fixed
        # offset) is still one instant, so its clock is UTC rather than refused.
        self.timezone = _zone_name(start_date) or "UTC"
        self.expression = _wall_clock_cron(interval, start_date, self.timezone) or rate

    def specs(self, name: str) -> list[ClockSpec]:
        return [_one_spec(self, name)]


class CronClock(Clock):
    """Runs when a cron expression matches (Prefect 1.x's ``CronClock``).

    ``cron`` is a classic 5-field expression (minute hour day-of-month month day-of-week, as
    croniter reads it), translated to AWS's form, or already AWS's ``cron(...)``, ``rate(...)``
    or ``at(...)``. It is evaluated in the time zone of ``start_date`` (an IANA zone: zoneinfo,
    pendulum or pytz), else UTC; a start with a fixed UTC offset is refused, since AWS evaluates
    cron in a named zone (daylight saving included). ``day_or`` is croniter's: whether a classic
    expression that restricts both day fields runs when either matches (True) or both; AWS can
    express neither, so such an expression is refused with the reason.

    >>> CronClock("*/15 * * * *").expression
    'cron(*/15 * * * ? *)'
    >>> CronClock("cron(0 10 * * ? *)").expression
    'cron(0 10 * * ? *)'
    """

    def __init__(
        self,
        cron: str,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        parameter_defaults: Mapping[str, Any] | None = None,
        labels: Iterable[str] | None = None,
        day_or: bool = True,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(start_date, end_date, parameter_defaults, labels, name=name)
        if not isinstance(cron, str):
            raise ScheduleError(
                f"CronClock: cron is text such as '0 9 * * 1-5', got {type(cron).__name__}"
            )
        try:
            if cron.strip().startswith(tuple(f"{kind}(" for kind in KINDS)):
                self.expression = parse_expression(cron)
            else:
                self.expression = classic_cron_to_aws(cron, day_or=day_or)
        except ScheduleError as exc:
            raise ScheduleError(f"CronClock: {exc}") from None
        self.cron = cron
        self.day_or = day_or
        zone = _zone_name(start_date)
        if zone is None:
            assert start_date is not None
            raise ScheduleError(
                f"CronClock: start_date {start_date.isoformat()} has a fixed UTC offset "
                f"({start_date.tzname()}), not a time zone, and AWS evaluates the expression in "
                f"an IANA zone: give it one (ZoneInfo('Europe/Berlin'), pendulum's "
                f"tz='Europe/Berlin') or UTC"
            )
        self.timezone = zone

    def specs(self, name: str) -> list[ClockSpec]:
        return [_one_spec(self, name)]


class DatesClock(Clock):
    """Runs once at each of ``dates`` (Prefect 1.x's ``DatesClock``): one AWS ``at(...)``
    schedule per date, named ``<name>-1``, ``<name>-2``, ... in date order.

    Each date is an instant (a naive one is UTC); its ``at(...)`` is in UTC, so a date in a
    daylight-saving change is not ambiguous. AWS fires on whole minutes: seconds are kept,
    fractions of a second dropped.

    >>> clock = DatesClock([datetime(2027, 3, 1, 8), datetime(2027, 1, 1, 8)])
    >>> [(spec.name, spec.expression) for spec in clock.specs("launch")]
    [('launch-1', 'at(2027-01-01T08:00:00)'), ('launch-2', 'at(2027-03-01T08:00:00)')]
    """

    def __init__(
        self,
        dates: Iterable[datetime],
        parameter_defaults: Mapping[str, Any] | None = None,
        labels: Iterable[str] | None = None,
        *,
        name: str | None = None,
    ) -> None:
        if isinstance(dates, datetime | str) or not isinstance(dates, Iterable):
            raise ScheduleError(
                f"DatesClock: dates is a list of datetimes, got {type(dates).__name__}"
            )
        given = list(dates)
        for date in given:
            _moment(date, "each of DatesClock's dates")
        if not given:
            raise ScheduleError("DatesClock: dates is empty; give at least one datetime")
        self.dates = given
        instants = sorted({as_utc(date).replace(microsecond=0) for date in given})
        super().__init__(None, None, parameter_defaults, labels, name=name)
        # Prefect's: the first and last date (one date is both).
        self.start_date, self.end_date = instants[0], instants[-1]
        self._instants = instants

    def specs(self, name: str) -> list[ClockSpec]:
        return [
            ClockSpec(
                name=f"{name}-{number}",
                expression=f"at({instant:%Y-%m-%dT%H:%M:%S})",
                timezone="UTC",
                parameters=self.parameter_defaults,
                labels=self.labels,
            )
            for number, instant in enumerate(self._instants, 1)
        ]


def _moment(value: Any, what: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    raise ScheduleError(f"{what} is a datetime, got {type(value).__name__}")


def _parameters(parameters: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    if parameters is None:
        return {}
    if not isinstance(parameters, Mapping):
        raise ScheduleError(
            f"{kind}: parameter_defaults is a dict of parameter names to values, got "
            f"{type(parameters).__name__}"
        )
    try:
        return check_clock_parameters(dict(parameters))
    except ScheduleError as exc:
        raise ScheduleError(f"{kind}: {exc}") from None


def _labels(labels: Iterable[str] | None, kind: str) -> list[str]:
    if labels is None:
        return []
    if isinstance(labels, str) or not isinstance(labels, Iterable):
        raise ScheduleError(f"{kind}: labels is a list of labels, got {labels!r}"[:200])
    try:
        return sorted({check_label(label) for label in labels})
    except ValueError as exc:
        raise ScheduleError(f"{kind}: {exc}") from None


def _clock_name(name: str, kind: str) -> str:
    try:
        return check_clock_name(name)
    except ScheduleError as exc:
        raise ScheduleError(f"{kind}: {exc}") from None


def _zone_name(moment: datetime | None) -> str | None:
    """The IANA name of ``moment``'s time zone: "UTC" when it has none (naive: UTC, as in
    Prefect) or is UTC; None when it has no IANA name (a fixed offset)."""
    if moment is None or moment.tzinfo is None:
        return "UTC"
    zone: tzinfo = moment.tzinfo
    # zoneinfo and pendulum 3 call it key; pytz zone; pendulum 2 name.
    for attribute in ("key", "zone", "name"):
        name = getattr(zone, attribute, None)
        if isinstance(name, str) and name:
            try:
                return check_timezone(name)
            except ScheduleError:
                continue
    if zone is UTC or (isinstance(zone, timezone) and zone.utcoffset(None) == timedelta(0)):
        return "UTC"
    return None


def _wall_clock_cron(interval: timedelta, start: datetime | None, zone: str) -> str | None:
    """The cron expression that keeps a 1-day or 7-day interval at its start's local time in a
    zone with daylight saving (Prefect's rule for intervals of a day or more); None otherwise."""
    if start is None or interval not in (timedelta(days=1), timedelta(days=7)):
        return None
    if zone == "UTC" or not _observes_daylight_saving(start):
        return None
    if interval == timedelta(days=1):
        return f"cron({start.minute} {start.hour} * * ? *)"
    # Python counts weekdays from Monday (0); AWS from Sunday (1).
    return f"cron({start.minute} {start.hour} ? * {(start.weekday() + 1) % 7 + 1} *)"


def _observes_daylight_saving(moment: datetime) -> bool:
    zone = moment.tzinfo
    assert zone is not None
    days = (datetime(moment.year, month, 1, 12) for month in (1, 7))
    # pytz zones give a time its offset through localize(); others through tzinfo=.
    localize = getattr(zone, "localize", None)
    winter, summer = (localize(day) if localize else day.replace(tzinfo=zone) for day in days)
    return bool(winter.utcoffset() != summer.utcoffset())


def _one_spec(clock: IntervalClock | CronClock, name: str) -> ClockSpec:
    """The one clock of an expression clock, as registered."""
    return ClockSpec(
        name=name,
        expression=clock.expression,
        timezone=clock.timezone,
        start_date=clock.start_date,
        end_date=clock.end_date,
        parameters=clock.parameter_defaults,
        labels=clock.labels,
    )
