"""Schedules, with the names of Prefect 1.x's ``prefect.schedules``: ``Schedule(clocks=[...])``,
``IntervalSchedule`` and ``CronSchedule``. Set one on a flow (``Flow(..., schedule=...)`` or
``flow.schedule = ...``); registering the flow makes one EventBridge Scheduler schedule per clock
(``to_spec``), each putting a "Flow Run Requested" on the bus when it fires.

>>> from datetime import timedelta
>>> from flowrelay.sdk.schedules import clocks
>>> schedule = Schedule(clocks=[
...     clocks.CronClock("0 9 * * 1-5", parameter_defaults={"region": "eu"}),
...     clocks.IntervalClock(timedelta(hours=6), labels=["night"]),
... ])
>>> [(clock.name, clock.expression) for clock in schedule.to_spec().clocks]
[('clock-1', 'cron(0 9 ? * 2-6 *)'), ('clock-2', 'rate(6 hours)')]

Prefect's ``filters``, ``or_filters``, ``not_filters`` and ``adjustments`` are functions run on
each candidate time; AWS fires whenever an expression says, so a schedule with any of them is
refused with the reason (write the condition into a cron expression instead).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from flowrelay.core.schedules import ScheduleError, ScheduleSpec
from flowrelay.sdk.schedules.clocks import Clock, CronClock, IntervalClock

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule"]


class Schedule:
    """One or more clocks; the flow runs whenever any of them fires, each run with its clock's
    parameters and labels (Prefect 1.x's ``Schedule``).

    Args:
        clocks: ``IntervalClock``, ``CronClock`` and ``DatesClock`` objects
            (``flowrelay.schedules.clocks``), at least one.
        filters, or_filters, not_filters, adjustments: Prefect's; refused when given (AWS
            cannot run them), accepted when None or empty.
    """

    def __init__(
        self,
        clocks: Iterable[Clock],
        filters: Iterable[Callable[[datetime], bool]] | None = None,
        or_filters: Iterable[Callable[[datetime], bool]] | None = None,
        not_filters: Iterable[Callable[[datetime], bool]] | None = None,
        adjustments: Iterable[Callable[[datetime], datetime]] | None = None,
    ) -> None:
        for argument, given in (
            ("filters", filters),
            ("or_filters", or_filters),
            ("not_filters", not_filters),
            ("adjustments", adjustments),
        ):
            if given:
                raise ScheduleError(
                    f"Schedule({argument}=...): EventBridge Scheduler fires whenever a clock's "
                    f"expression says and cannot call Python functions on each time, so "
                    f"{argument} cannot run; write the condition into a CronClock instead (e.g. "
                    f"weekdays at 9: CronClock('0 9 * * 1-5'))"
                )
        self.clocks: list[Clock] = _clocks(clocks)
        self.filters: list[Callable[[datetime], bool]] = []
        self.or_filters: list[Callable[[datetime], bool]] = []
        self.not_filters: list[Callable[[datetime], bool]] = []
        self.adjustments: list[Callable[[datetime], datetime]] = []
        self._spec = _spec_of(self.clocks)

    @property
    def start_date(self) -> datetime | None:
        """The earliest of the clocks' start dates (as in Prefect)."""
        return min((c.start_date for c in self.clocks if c.start_date), default=None)

    @property
    def end_date(self) -> datetime | None:
        """The latest of the clocks' end dates (as in Prefect)."""
        return max((c.end_date for c in self.clocks if c.end_date), default=None)

    def to_spec(self) -> ScheduleSpec:
        """The schedule as registered: one ``ClockSpec`` per EventBridge Scheduler schedule
        (a ``DatesClock`` gives one per date), named ``clock-<n>`` by position unless the clock
        has a name."""
        return self._spec

    def __repr__(self) -> str:
        shown = ", ".join(spec.expression for spec in self._spec.clocks[:3])
        more = f", ... ({len(self._spec.clocks)} in all)" if len(self._spec.clocks) > 3 else ""
        return f"<Schedule: {shown}{more}>"


# Prefect's names: functions that return a Schedule.
def IntervalSchedule(
    start_date: datetime | None = None,
    interval: timedelta | None = None,
    end_date: datetime | None = None,
) -> Schedule:
    """A schedule of one ``IntervalClock`` (Prefect 1.x's argument order: start_date first).

    >>> IntervalSchedule(interval=timedelta(minutes=5)).to_spec().clocks[0].expression
    'rate(5 minutes)'
    """
    if interval is None:
        raise ScheduleError("IntervalSchedule needs an interval (interval=timedelta(minutes=5))")
    return Schedule(clocks=[IntervalClock(interval, start_date=start_date, end_date=end_date)])


def CronSchedule(
    cron: str,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    day_or: bool = True,
) -> Schedule:
    """A schedule of one ``CronClock``: a classic 5-field cron (translated) or an AWS expression.

    >>> CronSchedule("0 9 * * 1-5").to_spec().clocks[0].expression
    'cron(0 9 ? * 2-6 *)'
    """
    return Schedule(
        clocks=[CronClock(cron, start_date=start_date, end_date=end_date, day_or=day_or)]
    )


def _clocks(clocks: Any) -> list[Clock]:
    if isinstance(clocks, Clock):
        raise ScheduleError("Schedule's clocks is a list: Schedule(clocks=[clock])")
    if isinstance(clocks, str) or not isinstance(clocks, Iterable):
        raise ScheduleError(f"Schedule's clocks is a list of clocks, got {type(clocks).__name__}")
    given = list(clocks)
    if not given:
        raise ScheduleError("a Schedule needs at least one clock")
    for clock in given:
        if isinstance(clock, Schedule):
            raise ScheduleError(
                "Schedule's clocks are clocks, not schedules: use a schedule's own clocks "
                "(Schedule(clocks=[*schedule.clocks, ...]))"
            )
        if not isinstance(clock, Clock):
            raise ScheduleError(
                f"Schedule's clocks are IntervalClock, CronClock or DatesClock objects "
                f"(flowrelay.schedules.clocks), got {type(clock).__name__}"
            )
    return given


def _spec_of(clocks: list[Clock]) -> ScheduleSpec:
    try:
        specs = [
            spec
            for number, clock in enumerate(clocks, 1)
            for spec in clock.specs(clock.name or f"clock-{number}")
        ]
        repeated = sorted(
            name for name, count in Counter(s.name for s in specs).items() if count > 1
        )
        if repeated:
            raise ScheduleError(
                f"two clocks of the schedule are named {repeated[0]!r}: give each its own name"
            )
        return ScheduleSpec(clocks=specs)
    except ValidationError as exc:  # each clock was checked when made; this is a safety net
        raise ScheduleError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
