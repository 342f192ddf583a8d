"""Fire times of EventBridge Scheduler expressions (flowrelay.control.fire_times), each case
worked out by hand from a calendar: 1 January 2026 is a Thursday, so 1 February and 1 March 2026
are Sundays and 1 August 2026 a Saturday. Daylight saving time in 2026: Europe/Berlin springs
forward on 29 March (02:00 CET -> 03:00 CEST) and falls back on 25 October (03:00 CEST -> 02:00
CET); America/New_York springs forward on 8 March (02:00 EST -> 03:00 EDT) and falls back on 1
November (02:00 EDT -> 01:00 EST).

The last part pins what aws-croniter does that the module relies on, or corrects.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowrelay.control.fire_times import check_expression, fire_times, scheduled_time_text


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fires(expression: str, timezone: str = "UTC", **bounds: object) -> list[datetime]:
    bounds.setdefault("after", utc(2026, 1, 1))
    return fire_times(expression, timezone, **bounds)  # type: ignore[arg-type]


# --- day-of-month and day-of-week wildcards ----------------------------------------------------


def test_lw_is_the_last_weekday_of_each_month() -> None:
    # 31 Jan 2026 is a Saturday, 28 Feb a Saturday, 31 Mar a Tuesday, 30 Apr a Thursday, 31 May
    # a Sunday (so Friday 29).
    assert fires("cron(0 10 LW * ? *)", count=5) == [
        utc(2026, 1, 30, 10),
        utc(2026, 2, 27, 10),
        utc(2026, 3, 31, 10),
        utc(2026, 4, 30, 10),
        utc(2026, 5, 29, 10),
    ]


def test_lw_in_a_leap_february_is_its_29th_when_that_is_a_weekday() -> None:
    # 29 Feb 2028 is a Tuesday.
    assert fires("cron(0 10 LW 2 ? *)", after=utc(2027, 3, 1), count=1) == [utc(2028, 2, 29, 10)]


def test_15w_is_the_weekday_nearest_the_15th() -> None:
    # 15 Jan 2026: Thursday (itself); 15 Feb: Sunday -> Monday 16; 15 Aug: Saturday -> Friday 14.
    assert fires("cron(0 8 15W * ? *)", count=3) == [
        utc(2026, 1, 15, 8),
        utc(2026, 2, 16, 8),
        utc(2026, 3, 16, 8),
    ]
    assert fires("cron(0 8 15W 8 ? *)", count=1) == [utc(2026, 8, 14, 8)]


def test_1w_does_not_leave_its_month() -> None:
    # 1 Aug 2026 is a Saturday: the nearest weekday in August is Monday the 3rd, not Friday
    # 31 July.
    assert fires("cron(0 8 1W 8 ? *)", count=1) == [utc(2026, 8, 3, 8)]


def test_3_hash_2_is_the_second_tuesday_day_of_week_1_being_sunday() -> None:
    # Tuesdays of Jan 2026: 6, 13; of Feb: 3, 10; of Mar: 3, 10.
    expected = [utc(2026, 1, 13, 9), utc(2026, 2, 10, 9), utc(2026, 3, 10, 9)]
    assert fires("cron(0 9 ? * 3#2 *)", count=3) == expected
    assert fires("cron(0 9 ? * TUE#2 *)", count=3) == expected
    assert fires("cron(0 9 ? * tue#2 *)", count=3) == expected


def test_a_fifth_weekday_fires_only_in_months_that_have_one() -> None:
    # Fridays of 2026: January has five (2..30), February and March four, May five (1..29).
    assert fires("cron(0 9 ? * 6#5 *)", count=2) == [utc(2026, 1, 30, 9), utc(2026, 5, 29, 9)]


def test_6l_is_the_last_friday_of_the_month() -> None:
    assert fires("cron(0 9 ? * 6L *)", count=3) == [
        utc(2026, 1, 30, 9),
        utc(2026, 2, 27, 9),
        utc(2026, 3, 27, 9),
    ]


def test_l_alone_in_day_of_week_is_saturday() -> None:
    # "The L wildcard in the Day-of-month or Day-of-week fields specifies the last day of the
    # month or week"; 3 Jan 2026 is a Saturday.
    assert fires("cron(0 9 ? * L *)", count=2) == [utc(2026, 1, 3, 9), utc(2026, 1, 10, 9)]


def test_l_and_l_minus_n_in_day_of_month() -> None:
    assert fires("cron(0 9 L * ? *)", count=2) == [utc(2026, 1, 31, 9), utc(2026, 2, 28, 9)]
    assert fires("cron(0 9 L-2 * ? *)", count=2) == [utc(2026, 1, 29, 9), utc(2026, 2, 26, 9)]


def test_names_ranges_lists_and_increments() -> None:
    # Weekdays of the first week of Jan 2026: Thu 1, Fri 2, Mon 5.
    assert fires("cron(30 7 ? JAN-MAR MON-FRI *)", count=3) == [
        utc(2026, 1, 1, 7, 30),
        utc(2026, 1, 2, 7, 30),
        utc(2026, 1, 5, 7, 30),
    ]
    # "1/10 ... every tenth minute, starting from the first minute of the hour".
    assert fires("cron(1/10 9 * * ? *)", count=3) == [
        utc(2026, 1, 1, 9, 1),
        utc(2026, 1, 1, 9, 11),
        utc(2026, 1, 1, 9, 21),
    ]
    assert fires("cron(0 6,18 1 * ? *)", count=3) == [
        utc(2026, 1, 1, 6),
        utc(2026, 1, 1, 18),
        utc(2026, 2, 1, 6),
    ]


# --- years ------------------------------------------------------------------------------------


def test_the_user_guides_example_last_friday_in_2022_to_2023_fires_24_times() -> None:
    found = fires("cron(15 10 ? * 6L 2022-2023)", after=utc(2021, 6, 1), count=100)
    assert len(found) == 24
    # 1 Jan 2022 is a Saturday: its Fridays are 7, 14, 21, 28. 31 Dec 2023 is a Sunday.
    assert found[0] == utc(2022, 1, 28, 10, 15)
    assert found[-1] == utc(2023, 12, 29, 10, 15)


def test_year_lists_and_ranges_end() -> None:
    assert fires("cron(0 12 1 JAN ? 2027,2029-2030)", count=5) == [
        utc(2027, 1, 1, 12),
        utc(2029, 1, 1, 12),
        utc(2030, 1, 1, 12),
    ]
    assert fires("cron(0 12 * * ? 2020-2025)", count=1) == []


def test_a_date_years_away_is_found() -> None:
    # 2100 is no leap year: after 2096, the next 29 February is in 2104.
    assert fires("cron(0 0 29 2 ? 2097-2110)", count=2) == [utc(2104, 2, 29), utc(2108, 2, 29)]


def test_a_date_that_never_comes_gives_nothing_and_ends() -> None:
    assert fires("cron(0 0 30 2 ? *)", count=1) == []


# --- time zones and daylight saving time ------------------------------------------------------


def test_cron_is_wall_clock_time_in_its_time_zone() -> None:
    # 09:00 in Berlin: CET (UTC+1) until 29 March, CEST (UTC+2) after.
    assert fires("cron(0 9 ? * MON *)", "Europe/Berlin", after=utc(2026, 3, 20), count=2) == [
        utc(2026, 3, 23, 8),
        utc(2026, 3, 30, 7),
    ]


def test_berlin_spring_forward_skips_a_time_that_does_not_exist() -> None:
    assert fires("cron(30 2 * * ? *)", "Europe/Berlin", after=utc(2026, 3, 27, 12), count=3) == [
        utc(2026, 3, 28, 1, 30),  # 02:30 CET
        # 29 March: 02:30 does not exist (02:00 CET -> 03:00 CEST): no fire that day
        utc(2026, 3, 30, 0, 30),  # 02:30 CEST
        utc(2026, 3, 31, 0, 30),
    ]


def test_berlin_fall_back_fires_a_repeated_time_once_before_the_shift() -> None:
    assert fires("cron(30 2 * * ? *)", "Europe/Berlin", after=utc(2026, 10, 24, 12), count=2) == [
        utc(2026, 10, 25, 0, 30),  # 02:30 CEST, the first of the two 02:30s
        utc(2026, 10, 26, 1, 30),  # 02:30 CET
    ]


def test_new_york_spring_forward_has_no_fire_that_day() -> None:
    assert fires("cron(30 2 * * ? *)", "America/New_York", after=utc(2026, 3, 7), count=2) == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT; none on 8 March
    ]


def test_new_york_fall_back_fires_once() -> None:
    found = fires(
        "cron(30 1 * * ? *)",
        "America/New_York",
        after=utc(2026, 10, 31, 12),
        until=utc(2026, 11, 2, 12),
    )
    assert found == [
        utc(2026, 11, 1, 5, 30),  # 01:30 EDT; not again at 01:30 EST (06:30Z)
        utc(2026, 11, 2, 6, 30),  # 01:30 EST
    ]


def test_after_inside_the_repeated_hour_does_not_fire_its_repeat() -> None:
    # 06:10Z on 1 Nov is 01:10 EST, the second 01:10 of the day: 01:30 has fired (at 05:30Z).
    assert fires(
        "cron(30 1 * * ? *)", "America/New_York", after=utc(2026, 11, 1, 6, 10), count=1
    ) == [utc(2026, 11, 2, 6, 30)]


def test_every_quarter_hour_across_fall_back_skips_the_repeated_hour() -> None:
    found = fires(
        "cron(*/15 * * * ? *)",
        "America/New_York",
        after=utc(2026, 11, 1, 4, 50),  # 00:50 EDT
        until=utc(2026, 11, 1, 7, 15),  # 02:15 EST
    )
    assert found == [
        utc(2026, 11, 1, 5, 0),  # 01:00 EDT
        utc(2026, 11, 1, 5, 15),
        utc(2026, 11, 1, 5, 30),
        utc(2026, 11, 1, 5, 45),  # 01:45 EDT; 01:00..01:45 EST are repeats
        utc(2026, 11, 1, 7, 0),  # 02:00 EST
        utc(2026, 11, 1, 7, 15),
    ]


def test_an_hourly_cron_has_23_fires_on_the_spring_forward_day_and_24_on_fall_back() -> None:
    spring = fires(
        "cron(0 * * * ? *)",
        "America/New_York",
        after=utc(2026, 3, 8, 5) - timedelta(seconds=1),  # 00:00 EST
        until=utc(2026, 3, 9, 4) - timedelta(seconds=1),  # 23:59:59 EDT
    )
    assert len(spring) == 23
    fall = fires(
        "cron(0 * * * ? *)",
        "America/New_York",
        after=utc(2026, 11, 1, 4) - timedelta(seconds=1),  # 00:00 EDT
        until=utc(2026, 11, 2, 5) - timedelta(seconds=1),  # 23:59:59 EST
    )
    assert len(fall) == 24  # 25 hours, the repeated 01:00 once


def test_a_zone_without_daylight_saving_is_a_fixed_offset() -> None:
    assert fires("cron(0 9 * * ? *)", "Asia/Tokyo", after=utc(2026, 3, 7), count=2) == [
        utc(2026, 3, 8, 0),
        utc(2026, 3, 9, 0),
    ]


# --- start and end dates ----------------------------------------------------------------------


def test_cron_fires_on_or_after_start_date_and_on_or_before_end_date() -> None:
    found = fires(
        "cron(0 12 * * ? *)",
        start_date=utc(2026, 5, 2, 12),
        end_date=utc(2026, 5, 4, 12),
        count=10,
    )
    assert found == [utc(2026, 5, 2, 12), utc(2026, 5, 3, 12), utc(2026, 5, 4, 12)]


def test_after_is_strict_and_until_inclusive() -> None:
    assert fires("cron(0 12 * * ? *)", after=utc(2026, 5, 2, 12), until=utc(2026, 5, 3, 12)) == [
        utc(2026, 5, 3, 12)
    ]
    # A microsecond before a fire is before it (aws-croniter alone rounds it up to the fire).
    just_before = utc(2026, 5, 2, 11, 59, 59) + timedelta(microseconds=999_999)
    assert fires("cron(0 12 * * ? *)", after=just_before, count=1) == [utc(2026, 5, 2, 12)]


# --- rate -------------------------------------------------------------------------------------


def test_rate_5_minutes_from_its_start_date() -> None:
    start = utc(2026, 4, 1, 9, 2, 30)
    assert fires("rate(5 minutes)", start_date=start, after=utc(2026, 4, 1), count=3) == [
        start,  # StartDate "sets the first occurrence"
        utc(2026, 4, 1, 9, 7, 30),
        utc(2026, 4, 1, 9, 12, 30),
    ]
    assert fires("rate(5 minutes)", start_date=start, after=utc(2026, 4, 1, 9, 10), count=1) == [
        utc(2026, 4, 1, 9, 12, 30)
    ]


def test_rate_stops_at_its_end_date() -> None:
    found = fires(
        "rate(1 hour)",
        start_date=utc(2026, 4, 1, 0),
        end_date=utc(2026, 4, 1, 2),
        after=utc(2026, 3, 1),
        count=10,
    )
    assert found == [utc(2026, 4, 1, 0), utc(2026, 4, 1, 1), utc(2026, 4, 1, 2)]


def test_rate_without_a_start_is_anchored_at_after() -> None:
    assert fires("rate(10 minutes)", after=utc(2026, 4, 1, 9, 0, 15), count=2) == [
        utc(2026, 4, 1, 9, 10, 15),
        utc(2026, 4, 1, 9, 20, 15),
    ]


def test_rate_days_are_24_hours_whatever_daylight_saving_does() -> None:
    # 08:00Z on 28 March is 09:00 CET; a day later it is 10:00 CEST, still 24 hours on.
    found = fires(
        "rate(1 day)",
        "Europe/Berlin",
        start_date=utc(2026, 3, 28, 8),
        after=utc(2026, 3, 1),
        count=2,
    )
    assert found == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 8)]


def test_rate_units_singular_and_plural() -> None:
    start = utc(2026, 1, 1)
    for expression, step in [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(2 hours)", timedelta(hours=2)),
        ("rate(3 days)", timedelta(days=3)),
    ]:
        assert fires(expression, start_date=start, after=start, count=1) == [start + step]


def test_a_rate_start_date_with_a_fraction_of_a_second_is_kept_to_the_second() -> None:
    start = utc(2026, 1, 1, 9, 0, 0) + timedelta(microseconds=250_000)
    found = fires("rate(1 minute)", start_date=start, after=utc(2026, 1, 1), count=2)
    assert found == [utc(2026, 1, 1, 9, 0, 1), utc(2026, 1, 1, 9, 1, 1)]


# --- at ---------------------------------------------------------------------------------------


def test_at_fires_once_in_its_time_zone_ignoring_start_and_end() -> None:
    found = fires(
        "at(2026-07-01T09:00:00)",
        "Europe/Berlin",
        start_date=utc(2027, 1, 1),
        end_date=utc(2026, 1, 2),
        count=5,
    )
    assert found == [utc(2026, 7, 1, 7)]
    assert (
        fires("at(2026-07-01T09:00:00)", "Europe/Berlin", after=utc(2026, 7, 1, 7), count=1) == []
    )


def test_at_in_a_repeated_hour_is_its_first_instance_and_in_a_gap_is_skipped() -> None:
    assert fires("at(2026-11-01T01:30:00)", "America/New_York", count=2) == [
        utc(2026, 11, 1, 5, 30)
    ]
    assert fires("at(2026-03-08T02:30:00)", "America/New_York", count=2) == []


def test_at_keeps_its_seconds() -> None:
    assert fires("at(2026-02-03T04:05:06)", count=1) == [utc(2026, 2, 3, 4, 5, 6)]


# --- the scheduled time's text ----------------------------------------------------------------


def test_scheduled_time_is_utc_to_the_second_with_z() -> None:
    # "<aws.scheduler.scheduled-time> ... for example, 2022-03-22T18:59:43Z"
    when = datetime.fromisoformat("2026-03-29T04:30:15.5+02:00")
    assert scheduled_time_text(when) == "2026-03-29T02:30:15Z"


# --- what AWS refuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "says"),
    [
        ("cron(0 9 * * * *)", "exactly one of them must be ?"),
        ("cron(0 9 ? * ? *)", "exactly one of them must be ?"),
        ("cron(0 9 * * ?)", "6 fields"),
        ("cron(0 9 * * ? * *)", "6 fields"),
        ("cron(60 9 * * ? *)", "minute"),
        ("cron(0 24 * * ? *)", "hour"),
        ("cron(0 9 32 * ? *)", "day-of-month"),
        ("cron(0 9 0 * ? *)", "day-of-month"),
        ("cron(0 9 * 13 ? *)", "month"),
        ("cron(0 9 * FOO ? *)", "month"),
        ("cron(0 9 ? * 0 *)", "day-of-week"),
        ("cron(0 9 ? * 8 *)", "day-of-week"),
        ("cron(0 9 ? * 3#6 *)", "day-of-week"),
        ("cron(0 9 ? * 3#1,6#3 *)", "day-of-week"),
        ("cron(0 9 ? * L-2 *)", "nL"),
        ("cron(0 9 * * ? 1969)", "year"),
        ("cron(0 9 * * ? 2200)", "year"),
        ("cron(0 9 * * ? 20x6)", "year"),
        ("rate(0 minutes)", "1 or more"),
        ("rate(5 seconds)", "minute(s), hour(s) or day(s)"),
        ("rate(-1 minutes)", "rate(value unit)"),
        ("rate(1.5 hours)", "rate(value unit)"),
        ("rate(minutes)", "rate(value unit)"),
        ("at(2026-02-30T09:00:00)", "day is out of range"),
        ("at(2026-01-01 09:00:00)", "yyyy-mm-ddThh:mm:ss"),
        ("at(2026-01-01T09:00)", "yyyy-mm-ddThh:mm:ss"),
        ("every(5 minutes)", "cron(...), rate(...) or at(...)"),
        ("0 9 * * ? *", "cron(...), rate(...) or at(...)"),
    ],
)
def test_an_expression_aws_refuses_raises_one_line_naming_it(expression: str, says: str) -> None:
    with pytest.raises(ValueError, match=r".") as refused:
        fire_times(expression, after=utc(2026, 1, 1), count=1)
    message = str(refused.value)
    assert "\n" not in message
    assert says in message
    with pytest.raises(ValueError):
        check_expression(expression)


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        fire_times("rate(1 hour)", "Mars/Olympus", after=utc(2026, 1, 1), count=1)


def test_the_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="until or count"):
        fire_times("rate(1 hour)", after=utc(2026, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        fire_times("rate(1 hour)", after=datetime(2026, 1, 1), count=1)
    assert fire_times("rate(1 hour)", after=utc(2026, 1, 1), count=0) == []


def test_valid_expressions_pass_the_check() -> None:
    for expression in (
        "cron(0 10 LW * ? *)",
        "cron(15 10 ? * 6L 2022-2023)",
        "cron(0 9 ? * 3#2 *)",
        "rate(1 minute)",
        "at(2027-01-01T09:00:00)",
    ):
        check_expression(expression, "America/New_York")


# --- what aws-croniter does, relied on or corrected -------------------------------------------


def test_aws_croniter_reads_fields_in_utc_and_searches_strictly_after_to_the_minute() -> None:
    """fire_times asks it about wall-clock time written as UTC, and goes on from each match."""
    from aws_croniter import AwsCroniter  # type: ignore[import-untyped]

    cron = AwsCroniter("30 2 * * ? *")
    assert cron.occurrence(utc(2026, 3, 29, 2, 30)).next() == utc(2026, 3, 30, 2, 30)
    assert cron.occurrence(utc(2026, 3, 29, 2, 29, 59)).next() == utc(2026, 3, 29, 2, 30)
    assert cron.years == list(range(1970, 2200))


def test_aws_croniter_w_skips_months_without_that_day() -> None:
    """LW is asked as 28W..31W, each kept where its day is the month's last."""
    from aws_croniter import AwsCroniter

    found = AwsCroniter("0 0 31W * ? *").get_next(utc(2026, 1, 31, 12), 2)
    assert found == [utc(2026, 3, 31), utc(2026, 5, 29)]  # not February or April


def test_aws_croniter_cannot_read_lw_or_l_in_day_of_week() -> None:
    """Corrected in fire_times (LW, L -> 7); if aws-croniter learns them, this fails."""
    from aws_croniter import AwsCroniter

    with pytest.raises(ValueError):
        AwsCroniter("0 10 LW * ? *")
    assert AwsCroniter("0 9 ? * L *").get_next(utc(2026, 1, 1)) == [None]


def test_aws_croniter_gives_up_on_a_date_years_away() -> None:
    """Its search stops after ten steps; fire_times goes on from the next month."""
    from aws_croniter import AwsCroniter

    assert AwsCroniter("0 0 29 2 ? 2097-2110").get_next(utc(2026, 1, 1)) == [None]
