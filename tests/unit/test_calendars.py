"""Business calendars: the JSON form round-trips, and bad input gets a message per field."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.services.calendars import MAX_HOLIDAYS, WEEKDAYS, Calendar, CalendarError
from helpdesk.services.errors import ValidationError
from tests.unit.business_time_helpers import OFFICE, ZONES, fast, week_hours


@fast
@given(st.sampled_from(ZONES), week_hours(), st.frozensets(st.dates(), max_size=30))
def test_json_round_trips(
    zone: str, hours: tuple[tuple[tuple[time, time | None], ...], ...], holidays: frozenset[date]
) -> None:
    cal = Calendar(zone, hours, holidays)
    assert Calendar.from_json(**cal.to_json()) == cal  # type: ignore[arg-type]


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
