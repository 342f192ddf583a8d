"""Clocks (public path): ``from flowrelay.schedules.clocks import CronClock``, as Prefect 1.x's
``prefect.schedules.clocks``.

Defined in ``flowrelay.sdk.schedules.clocks``; see there and docs/schedules.md.
"""

from flowrelay.sdk.schedules.clocks import Clock, CronClock, DatesClock, IntervalClock

__all__ = ["Clock", "CronClock", "DatesClock", "IntervalClock"]
