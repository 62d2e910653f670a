"""Shared pieces of the business-time tests: a brute-force reference, strategies, constants.

The reference walks UTC minutes and asks whether each one is business time in local time. A
second pass through a repeated (fall-back) wall-clock hour counts only when business hours run
straight through the end of the repetition: that is the instant-level meaning of "an
ambiguous wall time means its first occurrence", which the module uses for interval ends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from hypothesis import assume, settings
from hypothesis import strategies as st

from helpdesk.services.calendars import WEEKDAYS, Calendar

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


def local(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=tz)
