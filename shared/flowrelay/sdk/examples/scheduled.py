"""A flow on a schedule of two clocks, each with its own parameters and labels: every hour at
minute 0 for Europe (any target), and at minute 30 for the US (on a ``gpu``-labelled target).
Registered through a stack (``flowrelay register``), each clock becomes one EventBridge
Scheduler schedule; each fire becomes one run (docs/schedules.md).
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from flowrelay import Flow, Parameter, task
from flowrelay.run_configs import UniversalRun
from flowrelay.schedules import Schedule
from flowrelay.schedules.clocks import CronClock


@task
def report(region: str) -> str:
    line = f"hourly report for {region}"
    print(line, flush=True)
    return line


schedule = Schedule(
    clocks=[
        CronClock(
            "0 * * * *",
            start_date=datetime(2026, 1, 1, tzinfo=ZoneInfo("Europe/Berlin")),
            parameter_defaults={"region": "eu"},
        ),
        CronClock(
            "30 * * * *",
            start_date=datetime(2026, 1, 1, tzinfo=ZoneInfo("America/New_York")),
            parameter_defaults={"region": "us"},
            labels=["gpu"],
        ),
    ]
)

with Flow("scheduled", schedule=schedule, run_config=UniversalRun()) as flow:
    report(Parameter("region", default="eu"))
