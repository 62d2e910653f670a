"""Business-time arithmetic, checked against a brute-force minute-by-minute reference.

The reference walks UTC minutes and asks whether each one is business time in local time. A
second pass through a repeated (fall-back) wall-clock hour counts only when business hours run
straight through the end of the repetition: that is the instant-level meaning of "an
ambiguous wall time means its first occurrence", which the module uses for interval ends.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from helpdesk.services.business_time import (
    MAX_HOLIDAYS,
    WEEKDAYS,
    Calendar,
    CalendarError,
    add_business_minutes,
    add_business_seconds,
    business_minutes_between,
    business_seconds_between,
)
from helpdesk.services.errors import ValidationError

ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Asia/Kolkata",  # +05:30, no DST
    "UTC",
    "America/Santiago",  # DST changes at local midnight
)
MINUTE = timedelta(minutes=1)
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
OFFICE = {day: [["09:00", "17:00"]] for day in WEEKDAYS[:5]}
WINDOW_DAYS = 7

fast = settings(max_examples=150, deadline=None, database=None)


# --- brute-force reference ----------------------------------------------------------------


def _day_mask(intervals: tuple[tuple[time, time | None], ...]) -> bytearray:
    mask = bytearray(24 * 60)
    for start, end in intervals:
        first = start.hour * 60 + start.minute
        last = 24 * 60 if end is None else end.hour * 60 + end.minute
        mask[first:last] = b"\x01" * (last - first)
    return mask


def _open_at(cal: Calendar, masks: list[bytearray], wall: datetime) -> bool:
    """Whether the local wall-clock minute starting at `wall` is inside business hours."""
    return wall.date() not in cal.holidays and bool(
        masks[wall.weekday()][wall.hour * 60 + wall.minute]
    )


def is_business_minute(
    cal: Calendar, instant: datetime, masks: list[bytearray] | None = None
) -> bool:
    """Whether the UTC minute starting at `instant` is business time, judged in local time."""
    tz = ZoneInfo(cal.timezone)
    masks = masks or [_day_mask(day) for day in cal.hours]
    local = instant.astimezone(tz)
    if not local.fold:
        return _open_at(cal, masks, local.replace(tzinfo=None))
    later = instant
    while later.astimezone(tz).fold:  # find where the repeated wall-clock range ends
        later += MINUTE
    return _open_at(cal, masks, later.astimezone(tz).replace(tzinfo=None) - MINUTE)


def reference_flags(cal: Calendar, start: datetime, minutes: int) -> list[bool]:
    masks = [_day_mask(day) for day in cal.hours]
    return [is_business_minute(cal, start + MINUTE * i, masks) for i in range(minutes)]


def reference_add(start: datetime, flags: list[bool], amount: int) -> datetime:
    if amount == 0:
        return start
    counted = 0
    for index, flag in enumerate(flags):
        counted += flag
        if counted == amount:
            return start + MINUTE * (index + 1)
    raise AssertionError("the window is too short for this amount")


# --- strategies ---------------------------------------------------------------------------


@cache
def transitions(zone: str) -> tuple[datetime, ...]:
    """UTC hours in 2024-2025 right after the zone's offset changes (Jan/Jul 1 if none)."""
    tz = ZoneInfo(zone)
    hour = datetime(2024, 1, 1, tzinfo=UTC)
    found = []
    while hour.year < 2026:
        following = hour + timedelta(hours=1)
        if following.astimezone(tz).utcoffset() != hour.astimezone(tz).utcoffset():
            found.append(following)
        hour = following
    return tuple(found) or (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 7, 1, tzinfo=UTC))


# Quarter hours of the day (96 = 24:00), drawn more often where DST changes happen: the small
# hours (gaps and repeats in Europe, America, Lord Howe) and around midnight (Santiago).
QUARTERS = st.one_of(st.integers(0, 96), st.integers(0, 14), st.integers(88, 96))


def _quarter(point: int) -> time | None:
    return None if point == 96 else time(point // 4, point % 4 * 15)


@st.composite
def week_hours(draw: st.DrawFn) -> tuple[tuple[tuple[time, time | None], ...], ...]:
    days: list[tuple[tuple[time, time | None], ...]] = []
    for _ in range(7):
        points = sorted(draw(st.lists(QUARTERS, unique=True, max_size=6)))
        days.append(
            tuple(
                (time(points[i] // 4, points[i] % 4 * 15), _quarter(points[i + 1]))
                for i in range(0, len(points) - 1, 2)  # a start is below 96, so never 24:00
            )
        )
    assume(any(days))
    return tuple(days)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Calendar, datetime]:
    """A random calendar and a minute-aligned UTC start within a few days of a DST change."""
    zone = draw(st.sampled_from(ZONES))
    anchor = draw(st.sampled_from(transitions(zone)))
    start = anchor + MINUTE * draw(st.integers(-5 * 1440, 180))
    offsets = draw(st.lists(st.integers(-1, WINDOW_DAYS + 1), max_size=3))
    holidays = frozenset(start.date() + timedelta(days=offset) for offset in offsets)
    return Calendar(zone, draw(week_hours()), holidays), start


@st.composite
def roomy_scenarios(draw: st.DrawFn) -> tuple[Calendar, datetime, float]:
    """A random calendar, any microsecond start in 2024-2025, and up to ~10 weeks of seconds."""
    zone = draw(st.sampled_from(ZONES))
    start = draw(st.datetimes(datetime(2024, 1, 1), datetime(2025, 12, 31), timezones=st.just(UTC)))
    holidays = draw(st.frozensets(st.dates(date(2024, 1, 1), date(2026, 6, 30)), max_size=20))
    hours = draw(week_hours())
    weekly = sum(
        ((end.hour * 60 + end.minute) if end else 1440) - (begin.hour * 60 + begin.minute)
        for day in hours
        for begin, end in day
    )
    seconds = draw(st.floats(0, weekly * 60 * 10, allow_nan=False))
    return Calendar(zone, hours, holidays), start, seconds


# --- properties ---------------------------------------------------------------------------


@fast
@given(scenarios(), st.data())
def test_add_and_between_match_the_brute_force_reference(
    scenario: tuple[Calendar, datetime], data: st.DataObject
) -> None:
    cal, start = scenario
    flags = reference_flags(cal, start, WINDOW_DAYS * 1440)
    amount = data.draw(st.integers(0, sum(flags)), label="minutes")
    span = data.draw(st.integers(0, len(flags)), label="span")

    result = add_business_minutes(cal, start, amount)
    assert result == reference_add(start, flags, amount)
    assert result.tzinfo is UTC
    assert business_minutes_between(cal, start, start + MINUTE * span) == sum(flags[:span])


@fast
@given(roomy_scenarios())
def test_add_then_between_gives_back_the_amount(scenario: tuple[Calendar, datetime, float]) -> None:
    cal, start, seconds = scenario
    end = add_business_seconds(cal, start, seconds)
    assert business_seconds_between(cal, start, end) == pytest.approx(seconds, abs=1e-6)


@fast
@given(roomy_scenarios(), st.integers(0, 60 * 24 * 90))
def test_add_lands_inside_or_at_the_end_of_business_time(
    scenario: tuple[Calendar, datetime, float], minutes: int
) -> None:
    cal, start, _ = scenario
    start = start.replace(second=0, microsecond=0)
    weekly = business_minutes_between(cal, start, start + timedelta(days=7))
    assume(minutes <= max(weekly, 1) * 10)
    end = add_business_minutes(cal, start, minutes)
    if minutes:
        assert is_business_minute(cal, end - MINUTE)
    else:
        assert end == start


@fast
@given(roomy_scenarios(), st.lists(st.integers(0, 60 * 24 * 21), min_size=3, max_size=3))
def test_between_is_additive_over_a_split_point(
    scenario: tuple[Calendar, datetime, float], offsets: list[int]
) -> None:
    cal, start, _ = scenario
    first, middle, last = (start + timedelta(minutes=offset) for offset in sorted(offsets))
    whole = business_seconds_between(cal, first, last)
    parts = business_seconds_between(cal, first, middle) + business_seconds_between(
        cal, middle, last
    )
    assert whole == pytest.approx(parts, abs=1e-6)
    assert business_seconds_between(cal, last, first) == 0


@fast
@given(roomy_scenarios(), st.floats(0, 1), st.integers(0, 60 * 24 * 7))
def test_add_is_monotonic_in_amount_and_start(
    scenario: tuple[Calendar, datetime, float], fraction: float, shift: int
) -> None:
    cal, start, seconds = scenario
    later = start + timedelta(minutes=shift)
    assert add_business_seconds(cal, start, seconds * fraction) <= add_business_seconds(
        cal, start, seconds
    )
    assert add_business_seconds(cal, start, seconds) <= add_business_seconds(cal, later, seconds)
    end = add_business_seconds(cal, start, seconds)
    assert business_seconds_between(cal, start, end - timedelta(minutes=shift)) <= (
        business_seconds_between(cal, start, end)
    )


@fast
@given(roomy_scenarios(), st.integers(0, 100_000), st.integers(0, 100_000))
def test_adding_twice_equals_adding_the_sum(
    scenario: tuple[Calendar, datetime, float], first: int, second: int
) -> None:
    cal, start, _ = scenario
    weekly = business_seconds_between(cal, start, start + timedelta(days=7))
    assume(first + second <= max(weekly, 1) * 10)
    stepped = add_business_seconds(cal, add_business_seconds(cal, start, first), second)
    assert stepped == add_business_seconds(cal, start, first + second)


@fast
@given(st.sampled_from(ZONES), week_hours(), st.frozensets(st.dates(), max_size=30))
def test_json_round_trips(
    zone: str, hours: tuple[tuple[tuple[time, time | None], ...], ...], holidays: frozenset[date]
) -> None:
    cal = Calendar(zone, hours, holidays)
    assert Calendar.from_json(**cal.to_json()) == cal  # type: ignore[arg-type]


# --- examples -----------------------------------------------------------------------------


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)


def test_friday_afternoon_rolls_over_the_weekend_to_monday() -> None:
    cal = Calendar.from_json("Europe/Berlin", OFFICE, [])
    due = add_business_minutes(cal, local(BERLIN, 2025, 3, 28, 16), 120)
    assert due == local(BERLIN, 2025, 3, 31, 10)  # across the spring-forward weekend
    assert due.tzinfo is UTC and due.hour == 8
    assert business_minutes_between(cal, local(BERLIN, 2025, 3, 28, 16), due) == 120


def test_holidays_are_skipped() -> None:
    cal = Calendar.from_json("Europe/Berlin", OFFICE, ["2025-05-01"])
    due = add_business_minutes(cal, local(BERLIN, 2025, 4, 30, 16), 120)
    assert due == local(BERLIN, 2025, 5, 2, 10)
    assert (
        business_minutes_between(cal, local(BERLIN, 2025, 4, 30), local(BERLIN, 2025, 5, 3)) == 960
    )


def test_a_month_long_target_skips_whole_weeks() -> None:
    cal = Calendar.from_json("Europe/Berlin", OFFICE, [])
    due = add_business_minutes(cal, local(BERLIN, 2025, 3, 3, 9), 30 * 8 * 60)
    assert due == local(BERLIN, 2025, 4, 11, 17)
    again = add_business_minutes(cal, local(BERLIN, 2025, 3, 3, 9), 30 * 8 * 60)
    assert again == due  # second run is served from the cached weeks


def test_an_amount_that_ends_exactly_at_closing_stays_on_that_day() -> None:
    cal = Calendar.from_json("Europe/Berlin", OFFICE, [])
    assert add_business_minutes(cal, local(BERLIN, 2025, 6, 2, 9), 480) == local(
        BERLIN, 2025, 6, 2, 17
    )


def test_zero_returns_the_start_even_outside_hours_and_more_starts_at_the_next_opening() -> None:
    cal = Calendar.from_json("Europe/Berlin", OFFICE, [])
    saturday = local(BERLIN, 2025, 6, 7, 12)
    assert add_business_seconds(cal, saturday, 0) == saturday
    assert add_business_seconds(cal, saturday, 0).tzinfo is UTC
    assert add_business_minutes(cal, saturday, 1) == local(BERLIN, 2025, 6, 9, 9, 1)


@pytest.mark.parametrize(
    ("day", "hours"),
    [(date(2025, 3, 23), 24), (date(2025, 3, 30), 23), (date(2025, 10, 26), 25)],
)
def test_a_whole_day_follows_the_dst_change(day: date, hours: int) -> None:
    cal = Calendar.from_json("Europe/Berlin", {"sun": [["00:00", "24:00"]]}, [])
    start = datetime.combine(day, time(0), tzinfo=BERLIN)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=BERLIN)
    assert business_seconds_between(cal, start, end) == hours * 3600
    assert add_business_seconds(cal, start, hours * 3600) == end


def test_gap_hours_move_forward_and_vanish_when_wholly_inside_the_gap() -> None:
    gap = Calendar.from_json("Europe/Berlin", {"sun": [["02:00", "03:00"]]}, [])
    assert (
        business_minutes_between(gap, local(BERLIN, 2025, 3, 30), local(BERLIN, 2025, 3, 31)) == 0
    )
    assert (
        business_minutes_between(gap, local(BERLIN, 2025, 3, 23), local(BERLIN, 2025, 3, 24)) == 60
    )
    straddle = Calendar.from_json("Europe/Berlin", {"sun": [["02:30", "04:00"]]}, [])
    day = local(BERLIN, 2025, 3, 30)
    assert business_minutes_between(straddle, day, local(BERLIN, 2025, 3, 31)) == 60
    assert add_business_minutes(straddle, day, 1) == datetime(2025, 3, 30, 1, 1, tzinfo=UTC)


def test_an_ambiguous_wall_time_means_its_first_occurrence() -> None:
    cal = Calendar.from_json("America/New_York", {"sun": [["01:00", "01:30"]]}, [])
    day = local(NEW_YORK, 2024, 11, 3)
    assert business_minutes_between(cal, day, local(NEW_YORK, 2024, 11, 4)) == 30
    assert add_business_minutes(cal, day, 30) == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    whole = Calendar.from_json("America/New_York", {"sun": [["00:00", "24:00"]]}, [])
    assert business_minutes_between(whole, day, local(NEW_YORK, 2024, 11, 4)) == 25 * 60


@pytest.mark.parametrize(
    ("day", "minutes"), [(date(2024, 4, 7), 24.5 * 60), (date(2024, 10, 6), 23.5 * 60)]
)
def test_lord_howe_shifts_by_half_an_hour(day: date, minutes: float) -> None:
    cal = Calendar.from_json("Australia/Lord_Howe", {"sun": [["00:00", "24:00"]]}, [])
    start = datetime.combine(day, time(0), tzinfo=LORD_HOWE)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=LORD_HOWE)
    assert business_minutes_between(cal, start, end) == minutes


def test_always_is_plain_timedelta_arithmetic() -> None:
    cal = Calendar.always()
    assert cal.is_always and cal.timezone == "UTC" and not cal.holidays
    start = local(BERLIN, 2025, 3, 30, 1)  # the night Berlin springs forward
    utc_start = start.astimezone(UTC)  # elapsed time, not wall-clock arithmetic
    assert add_business_minutes(cal, start, 90) == utc_start + timedelta(minutes=90)
    assert add_business_minutes(cal, start, 90).tzinfo is UTC
    assert business_minutes_between(cal, start, utc_start + timedelta(days=2)) == 2 * 1440
    assert business_minutes_between(cal, start, local(BERLIN, 2025, 3, 31, 1)) == 23 * 60
    assert business_minutes_between(cal, start, utc_start - timedelta(days=2)) == 0
    assert Calendar.from_json(
        "Europe/Berlin", {d: [["00:00", "24:00"]] for d in WEEKDAYS}, []
    ).is_always
    assert not Calendar.from_json("UTC", OFFICE, []).is_always


def test_to_json_lists_every_day_and_sorted_holidays() -> None:
    cal = Calendar.from_json(
        "Europe/Berlin",
        {"Mon": [["13:00", "24:00"], ["09:00", "12:00"]]},
        [
            "2025-12-26",
            "2025-12-25",
            "2025-12-25",
        ],
    )
    assert cal.to_json() == {
        "timezone": "Europe/Berlin",
        "hours": {"mon": [["09:00", "12:00"], ["13:00", "24:00"]]} | {d: [] for d in WEEKDAYS[1:]},
        "holidays": ["2025-12-25", "2025-12-26"],
    }


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "hours", "holidays", "field", "message"),
    [
        ("Mars/Base", OFFICE, [], "timezone", "unknown timezone 'Mars/Base'"),
        ("../etc/passwd", OFFICE, [], "timezone", "use an IANA name such as 'Europe/Berlin'"),
        ("", OFFICE, [], "timezone", "choose a time zone by its IANA name"),
        (
            "UTC",
            {"funday": [["09:00", "17:00"]], "mon": [["09:00", "17:00"]]},
            [],
            "hours.funday",
            "unknown weekday 'funday'; use mon, tue, wed, thu, fri, sat or sun",
        ),
        (
            "UTC",
            {"mon": [["9am", "17:00"]]},
            [],
            "hours.mon",
            "'9am' is not a time; write 24-hour HH:MM",
        ),
        ("UTC", {"mon": [["09:00", "25:00"]]}, [], "hours.mon", "'25:00' is not a time"),
        ("UTC", {"mon": [["24:00", "24:00"]]}, [], "hours.mon", "'24:00' can only end an interval"),
        (
            "UTC",
            {"mon": [["17:00", "09:00"]]},
            [],
            "hours.mon",
            "interval 17:00-09:00 must start before it ends",
        ),
        (
            "UTC",
            {"mon": [["09:00", "09:00"]]},
            [],
            "hours.mon",
            "interval 09:00-09:00 must start before it ends",
        ),
        (
            "UTC",
            {"mon": [["13:00", "17:00"], ["09:00", "13:30"]]},
            [],
            "hours.mon",
            "intervals 09:00-13:30 and 13:00-17:00 overlap; merge them into one",
        ),
        ("UTC", {"mon": [["09:00"]]}, [], "hours.mon", "['09:00'] is not a [start, end] interval"),
        ("UTC", {"mon": "09:00-17:00"}, [], "hours.mon", "give a list of [start, end] intervals"),
        ("UTC", {"mon": [["09:00", "17:00"]], "Mon": []}, [], "hours.Mon", "mon is given twice"),
        ("UTC", {}, [], "hours", "the week has no business hours; open at least one day"),
        ("UTC", {"sat": []}, [], "hours", "the week has no business hours"),
        (
            "UTC",
            [["09:00", "17:00"]],
            [],
            "hours",
            "map weekdays (mon ... sun) to lists of intervals",
        ),
        (
            "UTC",
            OFFICE,
            ["2025-13-01"],
            "holidays",
            "not a date: '2025-13-01'; write dates as YYYY-MM-DD",
        ),
        (
            "UTC",
            OFFICE,
            ["25/12/2025", 7, "x", "y"],
            "holidays",
            "not a date: '25/12/2025', 7, 'x' and 1 more",
        ),
        (
            "UTC",
            OFFICE,
            "2025-12-25",
            "holidays",
            "give holidays as a list of dates written YYYY-MM-DD",
        ),
        (
            "UTC",
            OFFICE,
            ["2025-01-01"] * (MAX_HOLIDAYS + 1),
            "holidays",
            f"keep to {MAX_HOLIDAYS} holidays or fewer (got {MAX_HOLIDAYS + 1})",
        ),
    ],
)
def test_from_json_rejects_bad_input_with_a_message_per_field(
    timezone: str, hours: object, holidays: object, field: str, message: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        Calendar.from_json(timezone, hours, holidays)  # type: ignore[arg-type]
    assert message in caught.value.errors[field]
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, ValidationError)


def test_from_json_reports_every_problem_at_once_without_a_misleading_empty_week() -> None:
    with pytest.raises(CalendarError) as caught:
        Calendar.from_json("Mars/Base", {"mon": [["9", "17:00"]]}, ["soon"])
    assert set(caught.value.errors) == {"timezone", "hours.mon", "holidays"}


@pytest.mark.parametrize(
    ("hours", "holidays", "field", "message"),
    [
        ((((time(9), time(17)),),) * 6, frozenset(), "hours", "give opening hours for 7 days"),
        (
            ((((time(13), time(17)), (time(9), time(12))),) + ((),) * 6),
            frozenset(),
            "hours.mon",
            "list the intervals in order of start time",
        ),
        (
            (((time(9, 0, 30), time(17)),),) * 7,
            frozenset(),
            "hours.mon",
            "whole-minute local times",
        ),
        (
            ([(time(9), time(17))],) * 7,
            frozenset(),
            "hours.mon",
            "as a tuple of (start, end) pairs",
        ),
        ((((time(9), time(17)),),) * 7, {date(2025, 1, 1)}, "holidays", "as a frozenset of dates"),
        (
            (((time(9), time(17)),),) * 7,
            frozenset({datetime(2025, 1, 1)}),
            "holidays",
            "frozenset of dates",
        ),
        (
            (((time(9), time(17)),),) * 7,
            frozenset(date(2025, 1, 1) + timedelta(days=n) for n in range(501)),
            "holidays",
            "keep to 500 holidays or fewer (got 501)",
        ),
    ],
)
def test_the_constructor_checks_its_fields_too(
    hours: object, holidays: object, field: str, message: str
) -> None:
    with pytest.raises(CalendarError) as caught:
        Calendar("UTC", hours, holidays)  # type: ignore[arg-type]
    assert message in caught.value.errors[field]


def test_five_years_without_business_time_raise_instead_of_looping() -> None:
    mondays = [(date(2025, 1, 6) + timedelta(weeks=n)).isoformat() for n in range(300)]
    cal = Calendar.from_json("UTC", {"mon": [["09:00", "17:00"]]}, mondays)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(CalendarError) as caught:
        add_business_minutes(cal, start, 1)
    assert "no business hours in the five years after 2025-01-01" in caught.value.errors["hours"]
    assert business_minutes_between(cal, start, start + timedelta(days=5 * 365)) == 0


def test_naive_datetimes_are_rejected() -> None:
    cal = Calendar.always()
    naive = datetime(2025, 1, 1, 9)
    with pytest.raises(
        ValueError, match="start must be timezone-aware, got naive 2025-01-01T09:00:00"
    ):
        add_business_minutes(cal, naive, 5)
    with pytest.raises(ValueError, match="end must be timezone-aware"):
        business_seconds_between(cal, naive.replace(tzinfo=UTC), naive)
    with pytest.raises(TypeError, match="start must be a datetime, not date"):
        add_business_minutes(cal, date(2025, 1, 1), 5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "error", "message"),
    [
        (-1, ValueError, "minutes must be a finite number of zero or more, got -1"),
        (math.nan, ValueError, "minutes must be a finite number of zero or more, got nan"),
        (math.inf, ValueError, "got inf"),
        (True, TypeError, "minutes must be a number, not bool"),
        ("5", TypeError, "minutes must be a number, not str"),
        (1e13, ValueError, "is too large"),
    ],
)
def test_bad_amounts_are_rejected(amount: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        add_business_minutes(Calendar.always(), datetime(2025, 1, 1, tzinfo=UTC), amount)  # type: ignore[arg-type]


@pytest.mark.parametrize("cal", [Calendar.always(), Calendar.from_json("UTC", OFFICE, [])])
def test_results_past_year_9999_are_rejected(cal: Calendar) -> None:
    with pytest.raises(ValueError, match="the result falls outside the years 1-9999"):
        add_business_minutes(cal, datetime(9999, 6, 1, tzinfo=UTC), 1e6)
