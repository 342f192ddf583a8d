"""Schedules (public path): ``from flowrelay.schedules import CronSchedule, Schedule``, as
Prefect 1.x's ``prefect.schedules``; the clocks are in ``flowrelay.schedules.clocks``.

Defined in ``flowrelay.sdk.schedules``; see there and docs/schedules.md.
"""

from flowrelay.schedules import clocks
from flowrelay.sdk.schedules import CronSchedule, IntervalSchedule, Schedule

__all__ = ["CronSchedule", "IntervalSchedule", "Schedule", "clocks"]
