"""Business-time arithmetic, checked against a brute-force minute-by-minute reference.

The reference and the hypothesis strategies are in business_time_helpers; the calendar's own
parsing and checks are tested in test_calendars.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helpdesk.services.business_time import (
    WEEKDAYS,
    Calendar,
    CalendarError,
    add_business_minutes,
    add_business_seconds,
    business_minutes_between,
    business_seconds_between,
)
from tests.unit.business_time_helpers import (
    BERLIN,
    LORD_HOWE,
    MINUTE,
    NEW_YORK,
    OFFICE,
    WINDOW_DAYS,
    fast,
    is_business_minute,
    local,
    reference_add,
    reference_flags,
    roomy_scenarios,
    scenarios,
)

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


# --- examples -----------------------------------------------------------------------------


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


# --- errors -------------------------------------------------------------------------------


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
