"""The schedule API flow authors write (Prefect 1.x's names, flowrelay.schedules): clocks and
schedules checked when they are made, what AWS cannot express refused with the reason, time
zones from the start date, each clock's parameters and labels carried into its ClockSpec, and a
flow's schedule set, checked and registered."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from flowrelay import Flow, Parameter, task
from flowrelay.core.registration import ParameterError
from flowrelay.core.schedules import ClockSpec, ScheduleError, ScheduleSpec
from flowrelay.core.storage import Module
from flowrelay.schedules import CronSchedule, IntervalSchedule, Schedule, clocks
from flowrelay.schedules.clocks import CronClock, DatesClock, IntervalClock
from flowrelay.sdk.flow import registration_for

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


class NamedZone(tzinfo):
    """A time zone known by ``name`` only (as pendulum 2's are), or by ``zone`` (pytz's)."""

    def __init__(self, name: str, attribute: str = "name") -> None:
        self._zone = ZoneInfo(name)
        setattr(self, attribute, name)

    def utcoffset(self, moment: datetime | None) -> timedelta | None:
        return self._zone.utcoffset(moment)

    def dst(self, moment: datetime | None) -> timedelta | None:
        return self._zone.dst(moment)

    def tzname(self, moment: datetime | None) -> str | None:
        return self._zone.tzname(moment)


# --- CronClock --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "expression"),
    [
        ("0 9 * * 1-5", "cron(0 9 ? * 2-6 *)"),
        ("*/15 * * * *", "cron(*/15 * * * ? *)"),
        ("0 0 1 * *", "cron(0 0 1 * ? *)"),
        ("0 12 * * 0", "cron(0 12 ? * 1 *)"),
        ("0 12 * * 7", "cron(0 12 ? * 1 *)"),
        ("0 12 * * SUN", "cron(0 12 ? * 1 *)"),
        ("@hourly", "cron(0 * * * ? *)"),
        ("cron(0 10 * * ? *)", "cron(0 10 * * ? *)"),
        ("cron(0 18 ? * mon-fri *)", "cron(0 18 ? * MON-FRI *)"),
        ("rate(5 minutes)", "rate(5 minutes)"),
        ("at(2027-01-01T09:00:00)", "at(2027-01-01T09:00:00)"),
    ],
)
def test_a_cron_clock_takes_classic_and_aws_expressions(cron: str, expression: str) -> None:
    clock = CronClock(cron)
    assert (clock.expression, clock.timezone, clock.cron) == (expression, "UTC", cron)


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("0 9 1 * 1", "CronClock: '0 9 1 * 1': restricts both day-of-month (1) and day-of-week"),
        ("0 9 1 * 1", "use two clocks, CronClock('0 9 1 * *') and CronClock('0 9 * * 1')"),
        ("0 0 9 * * *", "reads a sixth field as seconds"),
        ("cron(0 9 * * MON *)", "exactly one of day-of-month and day-of-week must be ?"),
        ("rate(1 minutes)", "singular unit"),
        ("not cron", "has 2"),
    ],
)
def test_a_cron_clock_refuses_what_aws_cannot_express(cron: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        CronClock(cron)
    assert reason in str(refused.value)


def test_day_or_false_is_refused_too_when_both_day_fields_are_set() -> None:
    with pytest.raises(ScheduleError, match="with day_or=False runs on days that match both"):
        CronClock("0 9 1-7 * 5", day_or=False)
    assert CronClock("0 9 * * 5", day_or=False).expression == "cron(0 9 ? * 6 *)"


def test_a_cron_clock_is_text() -> None:
    with pytest.raises(ScheduleError, match="cron is text"):
        CronClock(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "zone"),
    [
        (None, "UTC"),
        (datetime(2027, 1, 1, 9), "UTC"),  # naive: UTC, as in Prefect
        (datetime(2027, 1, 1, 9, tzinfo=UTC), "UTC"),
        (datetime(2027, 1, 1, 9, tzinfo=timezone(timedelta(0))), "UTC"),
        (datetime(2027, 1, 1, 9, tzinfo=BERLIN), "Europe/Berlin"),
        (datetime(2027, 1, 1, 9, tzinfo=NEW_YORK), "America/New_York"),
        (datetime(2027, 1, 1, 9, tzinfo=NamedZone("Asia/Tokyo")), "Asia/Tokyo"),  # pendulum 2
        (datetime(2027, 1, 1, 9, tzinfo=NamedZone("Europe/Paris", "zone")), "Europe/Paris"),
    ],
)
def test_a_cron_clock_runs_in_its_start_dates_time_zone(start: datetime | None, zone: str) -> None:
    clock = CronClock("0 9 * * *", start_date=start)
    assert clock.timezone == zone
    assert clock.specs("clock-1")[0].timezone == zone


def test_a_cron_clock_refuses_a_fixed_offset() -> None:
    plus_two = datetime(2027, 1, 1, 9, tzinfo=timezone(timedelta(hours=2)))
    with pytest.raises(ScheduleError, match=r"fixed UTC offset .UTC.02:00., not a time zone"):
        CronClock("0 9 * * *", start_date=plus_two)
    named_offset = datetime(2027, 1, 1, 9, tzinfo=NamedZone("Europe/Berlin", "unused"))
    with pytest.raises(ScheduleError, match="IANA zone"):
        CronClock("0 9 * * *", start_date=named_offset)


def test_a_cron_clocks_dates_parameters_and_labels_go_into_its_spec() -> None:
    start = datetime(2027, 1, 4, 9, tzinfo=BERLIN)
    clock = CronClock(
        "0 9 * * 1-5",
        start_date=start,
        end_date=datetime(2027, 12, 31, tzinfo=BERLIN),
        parameter_defaults={"region": "eu", "rows": 10},
        labels=["eu", "gpu"],
    )
    assert clock.specs("weekdays") == [
        ClockSpec(
            name="weekdays",
            expression="cron(0 9 ? * 2-6 *)",
            timezone="Europe/Berlin",
            start_date=datetime(2027, 1, 4, 8, tzinfo=UTC),
            end_date=datetime(2027, 12, 30, 23, tzinfo=UTC),
            parameters={"region": "eu", "rows": 10},
            labels=["eu", "gpu"],
        )
    ]


# --- what every clock checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ({"start_date": "2027-01-01"}, "CronClock's start_date is a datetime, got str"),
        ({"end_date": 5}, "CronClock's end_date is a datetime"),
        (
            {"start_date": datetime(2027, 2, 1), "end_date": datetime(2027, 1, 1)},
            "end_date 2027-01-01T00:00:00 is not after start_date",
        ),
        ({"parameter_defaults": ["rows"]}, "parameter_defaults is a dict"),
        ({"parameter_defaults": {"when": object()}}, "parameter_defaults must be JSON"),
        ({"parameter_defaults": {"ratio": float("inf")}}, "parameter_defaults must be JSON"),
        ({"parameter_defaults": {1: "a"}}, "parameter_defaults is a dict of parameter names"),
        ({"labels": "gpu"}, "labels is a list of labels"),
        ({"labels": ["gpu", ""]}, "each label must be a non-empty string"),
        ({"labels": ["a,b"]}, "contains a comma"),
        ({"name": "my clock"}, "a clock's name is 1-64 letters"),
    ],
)
def test_a_clock_refuses_bad_arguments_when_made(arguments: dict[str, Any], reason: str) -> None:
    with pytest.raises(ScheduleError) as refused:
        CronClock("0 9 * * *", **arguments)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


# --- IntervalClock ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interval", "expression"),
    [
        (timedelta(minutes=1), "rate(1 minute)"),
        (timedelta(minutes=15), "rate(15 minutes)"),
        (timedelta(hours=1), "rate(1 hour)"),
        (timedelta(hours=6), "rate(6 hours)"),
        (timedelta(days=1), "rate(1 day)"),
        (timedelta(days=7), "rate(7 days)"),
        (timedelta(minutes=90), "rate(90 minutes)"),
    ],
)
def test_an_interval_clock_is_a_rate(interval: timedelta, expression: str) -> None:
    clock = IntervalClock(interval)
    assert (clock.expression, clock.timezone, clock.interval) == (expression, "UTC", interval)


@pytest.mark.parametrize(
    ("interval", "reason"),
    [
        (timedelta(seconds=30), "IntervalClock: an interval of 0:00:30 is under one minute"),
        (timedelta(seconds=90), "not a whole number of minutes"),
        (timedelta(0), "must be positive"),
        (300, "an interval is a timedelta"),
    ],
)
def test_an_interval_clock_refuses_what_is_no_rate(interval: Any, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        IntervalClock(interval)


def test_an_interval_clock_keeps_its_start_and_a_fixed_offset_is_one_instant() -> None:
    plus_two = datetime(2027, 1, 1, 9, tzinfo=timezone(timedelta(hours=2)))
    spec = IntervalClock(timedelta(hours=2), start_date=plus_two).specs("c")[0]
    assert (spec.expression, spec.timezone) == ("rate(2 hours)", "UTC")
    assert spec.start_date == datetime(2027, 1, 1, 7, tzinfo=UTC)


def test_a_daily_or_weekly_interval_keeps_its_local_time_across_daylight_saving() -> None:
    """Prefect kept intervals of a day or more at the same local time; a rate counts elapsed
    time, so in a zone with daylight saving they become the cron expression that does that."""
    monday = datetime(2027, 1, 4, 9, 30, tzinfo=BERLIN)
    daily = IntervalClock(timedelta(days=1), start_date=monday)
    weekly = IntervalClock(timedelta(days=7), start_date=monday)
    assert (daily.expression, daily.timezone) == ("cron(30 9 * * ? *)", "Europe/Berlin")
    assert weekly.expression == "cron(30 9 ? * 2 *)"
    sunday = IntervalClock(timedelta(weeks=1), start_date=datetime(2027, 1, 3, 6, tzinfo=NEW_YORK))
    assert sunday.expression == "cron(0 6 ? * 1 *)"
    # Under a day, in UTC or in a zone without daylight saving: a rate is the same thing.
    assert IntervalClock(timedelta(hours=12), start_date=monday).expression == "rate(12 hours)"
    utc = datetime(2027, 1, 4, 9, 30, tzinfo=UTC)
    assert IntervalClock(timedelta(days=1), start_date=utc).expression == "rate(1 day)"
    tokyo = datetime(2027, 1, 4, 9, 30, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert IntervalClock(timedelta(days=1), start_date=tokyo).expression == "rate(1 day)"
    assert IntervalClock(timedelta(days=2), start_date=monday).expression == "rate(2 days)"


# --- DatesClock -------------------------------------------------------------------------------


def test_a_dates_clock_is_one_at_schedule_per_date_in_utc() -> None:
    clock = DatesClock(
        [
            datetime(2027, 3, 28, 2, 30, tzinfo=BERLIN),  # a time the spring change skips
            datetime(2027, 1, 1, 9),
            datetime(2027, 1, 1, 9, tzinfo=UTC),  # the same instant again
            datetime(2027, 6, 1, 12, 0, 30, 500, tzinfo=NEW_YORK),
        ],
        parameter_defaults={"run": "once"},
        labels=["adhoc"],
    )
    specs = clock.specs("clock-2")
    assert [(spec.name, spec.expression, spec.timezone) for spec in specs] == [
        ("clock-2-1", "at(2027-01-01T09:00:00)", "UTC"),
        ("clock-2-2", "at(2027-03-28T01:30:00)", "UTC"),
        ("clock-2-3", "at(2027-06-01T16:00:30)", "UTC"),
    ]
    assert all(spec.parameters == {"run": "once"} and spec.labels == ["adhoc"] for spec in specs)
    assert all(spec.start_date is None and spec.end_date is None for spec in specs)
    assert clock.start_date == datetime(2027, 1, 1, 9, tzinfo=UTC)
    assert clock.end_date == datetime(2027, 6, 1, 16, 0, 30, tzinfo=UTC)
    assert len(clock.dates) == 4


@pytest.mark.parametrize(
    ("dates", "reason"),
    [
        ([], "dates is empty"),
        (datetime(2027, 1, 1), "dates is a list of datetimes, got datetime"),
        ("2027-01-01", "dates is a list of datetimes, got str"),
        ([datetime(2027, 1, 1), "2027-01-02"], "each of DatesClock's dates is a datetime"),
        (None, "dates is a list of datetimes"),
    ],
)
def test_a_dates_clock_refuses_what_is_no_list_of_dates(dates: Any, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        DatesClock(dates)


# --- Schedule ---------------------------------------------------------------------------------


def test_a_schedule_names_its_clocks_by_position_and_carries_each_clocks_runs() -> None:
    schedule = Schedule(
        clocks=[
            clocks.CronClock("0 9 * * 1-5", parameter_defaults={"region": "eu"}, labels=["eu"]),
            clocks.IntervalClock(timedelta(hours=6), parameter_defaults={"region": "us"}),
            clocks.DatesClock([datetime(2027, 1, 1), datetime(2027, 2, 1)]),
            clocks.CronClock("rate(1 day)", name="daily"),
        ]
    )
    spec = schedule.to_spec()
    assert isinstance(spec, ScheduleSpec)
    assert [(c.name, c.expression, c.parameters, c.labels) for c in spec.clocks] == [
        ("clock-1", "cron(0 9 ? * 2-6 *)", {"region": "eu"}, ["eu"]),
        ("clock-2", "rate(6 hours)", {"region": "us"}, []),
        ("clock-3-1", "at(2027-01-01T00:00:00)", {}, []),
        ("clock-3-2", "at(2027-02-01T00:00:00)", {}, []),
        ("daily", "rate(1 day)", {}, []),
    ]
    assert schedule.to_spec() == spec
    assert "cron(0 9 ? * 2-6 *)" in repr(schedule)
    assert schedule.start_date == datetime(2027, 1, 1, tzinfo=UTC)
    assert schedule.end_date == datetime(2027, 2, 1, tzinfo=UTC)


@pytest.mark.parametrize("argument", ["filters", "or_filters", "not_filters", "adjustments"])
def test_filters_and_adjustments_are_refused_with_the_reason(argument: str) -> None:
    def is_weekday(moment: datetime) -> bool:
        return moment.weekday() < 5

    given: dict[str, Any] = {argument: [is_weekday]}
    with pytest.raises(ScheduleError) as refused:
        Schedule(clocks=[IntervalClock(timedelta(hours=1))], **given)
    message = str(refused.value)
    assert f"Schedule({argument}=...)" in message
    assert "cannot call Python functions" in message
    assert "CronClock('0 9 * * 1-5')" in message
    # None or empty, as Prefect's defaults are, is fine.
    Schedule(clocks=[IntervalClock(timedelta(hours=1))], **{argument: []})


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ([], "a Schedule needs at least one clock"),
        (IntervalClock(timedelta(hours=1)), "clocks is a list: Schedule.clocks=.clock.."),
        (["0 9 * * *"], "IntervalClock, CronClock or DatesClock objects .* got str"),
        ([CronSchedule("0 9 * * *")], "clocks, not schedules"),
        ("0 9 * * *", "a list of clocks, got str"),
        (
            [CronClock("0 9 * * *", name="a"), IntervalClock(timedelta(hours=1), name="a")],
            "two clocks of the schedule are named 'a'",
        ),
        (
            [CronClock("0 9 * * *"), IntervalClock(timedelta(hours=1), name="clock-1")],
            "named 'clock-1'",
        ),
    ],
)
def test_a_schedule_refuses_what_is_not_its_clocks(given: Any, reason: str) -> None:
    with pytest.raises(ScheduleError, match=reason):
        Schedule(clocks=given)


def test_interval_and_cron_schedules_have_prefects_arguments() -> None:
    start = datetime(2027, 1, 1, 9, tzinfo=BERLIN)
    interval = IntervalSchedule(start, timedelta(minutes=30), datetime(2028, 1, 1))
    (clock,) = interval.to_spec().clocks
    assert (clock.expression, clock.timezone) == ("rate(30 minutes)", "Europe/Berlin")
    assert clock.end_date == datetime(2028, 1, 1, tzinfo=UTC)
    assert len(interval.clocks) == 1
    with pytest.raises(ScheduleError, match="needs an interval"):
        IntervalSchedule(start_date=start)
    cron = CronSchedule("0 9 * * 1-5", start_date=start)
    assert cron.to_spec().clocks[0].expression == "cron(0 9 ? * 2-6 *)"
    assert cron.to_spec().clocks[0].timezone == "Europe/Berlin"
    with pytest.raises(ScheduleError, match="day_or=False"):
        CronSchedule("0 9 1 * 1", day_or=False)


# --- flows ------------------------------------------------------------------------------------


@task
def load(rows: int, region: str) -> int:
    return rows


def etl(**flow_arguments: Any) -> Flow:
    with Flow("nightly", storage=Module("nightly:flow"), **flow_arguments) as flow:
        load(Parameter("rows", default=10), Parameter("region", default="us"))
    return flow


def test_a_flow_registers_its_schedules_clocks() -> None:
    schedule = Schedule(
        clocks=[
            CronClock("0 9 * * 1-5", parameter_defaults={"region": "eu"}, labels=["eu"]),
            IntervalClock(timedelta(hours=1), parameter_defaults={"rows": 1}),
        ]
    )
    flow = etl(schedule=schedule)
    assert flow.schedule is schedule
    registration = registration_for(flow)
    assert registration.schedule == schedule.to_spec()
    assert registration.content_hash


@pytest.mark.parametrize(
    ("expression", "canonical"),
    [
        ("cron(0 10 * * ? *)", "cron(0 10 * * ? *)"),
        ("rate(5 minutes)", "rate(5 minutes)"),
        ("at(2027-01-01T09:00:00)", "at(2027-01-01T09:00:00)"),
        ("cron(0 9 ? * mon-fri *)", "cron(0 9 ? * MON-FRI *)"),
    ],
)
def test_a_flows_schedule_may_be_an_aws_expression(expression: str, canonical: str) -> None:
    flow = etl(schedule=expression)
    assert flow.schedule == canonical
    registered = registration_for(flow).schedule
    assert registered == ScheduleSpec.of_expression(canonical)


def test_a_flows_schedule_is_checked_when_set() -> None:
    with pytest.raises(
        ScheduleError, match=r"Flow 'nightly': schedule 'rate.1 minutes.': AWS wants"
    ):
        etl(schedule="rate(1 minutes)")
    flow = etl()
    assert flow.schedule is None
    assert registration_for(flow).schedule is None
    with pytest.raises(ScheduleError, match="classic 5-field cron expression: give it to Cron"):
        flow.schedule = "0 9 * * *"
    with pytest.raises(TypeError, match=r"wrap a clock in Schedule.clocks=.clock.."):
        flow.schedule = CronClock("0 9 * * *")  # type: ignore[assignment]
    with pytest.raises(TypeError, match="got timedelta"):
        flow.schedule = timedelta(hours=1)  # type: ignore[assignment]
    assert flow.schedule is None
    flow.schedule = CronSchedule("0 9 * * *")
    assert registration_for(flow).schedule is not None
    flow.schedule = None
    assert registration_for(flow).schedule is None


def test_a_clock_must_fit_the_flows_parameters() -> None:
    unknown = etl(schedule=Schedule(clocks=[CronClock("0 9 * * *", parameter_defaults={"x": 1})]))
    with pytest.raises(
        ParameterError, match=r"clock 'clock-1' of the schedule: .* no parameter 'x'"
    ):
        registration_for(unknown)

    with Flow("needs-day", storage=Module("m:flow")) as flow:
        load(Parameter("day", required=True), "eu")
    flow.schedule = Schedule(
        clocks=[
            CronClock("0 9 * * *", parameter_defaults={"day": "today"}),
            IntervalClock(timedelta(hours=1)),
        ]
    )
    with pytest.raises(ParameterError, match=r"clock 'clock-2' .* required parameter 'day'"):
        registration_for(flow)


def test_a_schedule_survives_the_store(store: Any) -> None:
    flow = etl(
        schedule=Schedule(
            clocks=[
                CronClock(
                    "0 9 * * 1-5",
                    start_date=datetime(2027, 1, 4, 9, tzinfo=BERLIN),
                    parameter_defaults={"region": "eu"},
                    labels=["eu"],
                ),
                DatesClock([datetime(2027, 1, 1)]),
            ]
        )
    )
    stored, created = store.flows.register(registration_for(flow))
    assert created
    loaded = store.flows.get("nightly")
    assert loaded == stored
    assert isinstance(flow.schedule, Schedule)
    assert loaded.schedule == flow.schedule.to_spec()
    again, created = store.flows.register(registration_for(flow))
    assert (again.version, created) == (stored.version, False)


def test_a_version_stored_before_schedules_existed_is_still_read(store: Any) -> None:
    """Older versions stored ``str(flow.schedule)``: an expression is read as one clock, anything
    else as no schedule, and the version stays runnable."""
    stored, _ = store.flows.register(registration_for(etl()))
    client, table = store.table.client, store.table.table_name
    for text, wanted in (
        ("rate(5 minutes)", ScheduleSpec.of_expression("rate(5 minutes)")),
        ("<Schedule: 1 clocks>", None),
    ):
        body = stored.model_dump(mode="json") | {"schedule": text}
        client.update_item(
            TableName=table,
            Key={"pk": {"S": "FLOW#nightly"}, "sk": {"S": "LATEST"}},
            UpdateExpression="SET registration = :body",
            ExpressionAttributeValues={":body": {"S": json.dumps(body)}},
        )
        assert store.flows.get("nightly").schedule == wanted
