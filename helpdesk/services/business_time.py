"""Business-time arithmetic for SLA targets: add or measure time on a business calendar.

Why: SLA targets are counted in business minutes on a per-org calendar (time zone, weekly
opening hours, holidays). The counting has to agree with itself across DST changes and stay
fast for month-long targets, so it lives here as pure functions (no database, no Flask) that
the SLA engine calls.

Rules callers rely on:
- Opening hours are local wall-clock intervals, turned into UTC per local date with zoneinfo.
  A wall time that does not exist (spring-forward gap) moves forward to the first instant that
  exists; an ambiguous one (fall-back) means its first occurrence (fold=0). So 09:00-17:00 is
  8 h on ordinary days, and 00:00-24:00 is 23 h on a spring-forward day and 25 h on a
  fall-back day.
- Intervals are half-open: the instant an interval ends is not business time.
- Adding N > 0 from a moment outside hours starts counting at the next opening, and the result
  may be the exact end of an interval (8 h from Monday 09:00 is Monday 17:00, not Tuesday
  09:00). Adding 0 returns the start itself.
- Datetimes must be timezone-aware; results are UTC.
- Each local week (Monday to Sunday) is converted once and cached with its total, so the cost
  is O(local days spanned) the first time and whole weeks are skipped by their total after
  that. Five years without any business time raise CalendarError instead of looping.

Calendar itself, with its JSON parsing and checks, lives in calendars (re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from helpdesk.services.calendars import (
    MAX_HOLIDAYS,
    WEEKDAYS,
    Calendar,
    CalendarError,
    Interval,
)

__all__ = [
    "MAX_HOLIDAYS",
    "QUIET_LIMIT",
    "WEEKDAYS",
    "Calendar",
    "CalendarError",
    "Interval",
    "add_business_minutes",
    "add_business_seconds",
    "business_minutes_between",
    "business_seconds_between",
]

QUIET_LIMIT = timedelta(days=5 * 365 + 1)  # no business time this long: the calendar is unusable

_MIDNIGHT = time(0)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_ZERO = timedelta(0)
_OUT_OF_RANGE = "the result falls outside the years 1-9999; use a smaller amount or a nearer date"


def add_business_seconds(cal: Calendar, start: datetime, seconds: float) -> datetime:
    """Return the UTC instant `seconds` of business time after start."""
    return _add(cal, _aware(start, "start"), _amount(seconds, "seconds"))


def business_seconds_between(cal: Calendar, start: datetime, end: datetime) -> float:
    """Return the business seconds in [start, end), or 0 when end <= start."""
    first, last = _aware(start, "start"), _aware(end, "end")
    try:
        return _between(cal, first, last).total_seconds()
    except OverflowError as exc:
        raise ValueError(_OUT_OF_RANGE) from exc


def add_business_minutes(cal: Calendar, start: datetime, minutes: float) -> datetime:
    """Return the UTC instant `minutes` of business time after start."""
    return _add(cal, _aware(start, "start"), _amount(minutes, "minutes"))


def business_minutes_between(cal: Calendar, start: datetime, end: datetime) -> float:
    """Return the business minutes in [start, end), or 0 when end <= start."""
    return business_seconds_between(cal, start, end) / 60


# --- arithmetic ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Week:
    start: datetime  # UTC instant of the local Monday 00:00
    intervals: tuple[tuple[datetime, datetime], ...]  # UTC, sorted, non-overlapping
    total: timedelta


def _add(cal: Calendar, origin: datetime, amount: timedelta) -> datetime:
    try:
        return _walk(cal, origin, amount) if amount else origin
    except OverflowError as exc:
        raise ValueError(_OUT_OF_RANGE) from exc


def _walk(cal: Calendar, origin: datetime, amount: timedelta) -> datetime:
    """Return where `amount` (> 0) of business time after origin runs out."""
    if cal.is_always:
        return origin + amount
    remaining = amount
    monday = _monday_of(cal, origin)
    quiet_since = origin  # the last moment business time was seen
    while True:
        week = _week(cal, monday)
        available = week.total if week.start >= origin else _clipped(week, origin, None)
        if remaining <= available:
            return _locate(week, origin, remaining)
        if available:
            remaining -= available
            quiet_since = week.intervals[-1][1]
        elif week.start - quiet_since > QUIET_LIMIT:
            raise CalendarError(
                {
                    "hours": f"no business hours in the five years after {quiet_since:%Y-%m-%d}"
                    " (are all open days holidays?); open more hours or remove holidays"
                }
            )
        monday += _WEEK


def _between(cal: Calendar, start: datetime, end: datetime) -> timedelta:
    if end <= start:
        return _ZERO
    if cal.is_always:
        return end - start
    total = _ZERO
    monday = _monday_of(cal, start)
    while True:
        week = _week(cal, monday)
        if week.start >= end:
            return total
        whole = week.start >= start and (not week.intervals or week.intervals[-1][1] <= end)
        total += week.total if whole else _clipped(week, start, end)
        monday += _WEEK


def _clipped(week: _Week, start: datetime, end: datetime | None) -> timedelta:
    """Business time of the week inside [start, end) (end None: no upper bound)."""
    total = _ZERO
    for opens, closes in week.intervals:
        lo, hi = max(opens, start), closes if end is None else min(closes, end)
        if hi > lo:
            total += hi - lo
    return total


def _locate(week: _Week, origin: datetime, remaining: timedelta) -> datetime:
    """Return where `remaining` business time after origin runs out inside the week."""
    for opens, closes in week.intervals:
        if closes <= origin:
            continue
        opens = max(opens, origin)
        if remaining <= closes - opens:
            return opens + remaining
        remaining -= closes - opens
    raise AssertionError("the caller checked the week holds enough business time")


def _monday_of(cal: Calendar, instant: datetime) -> date:
    day = instant.astimezone(ZoneInfo(cal.timezone)).date()
    return day - timedelta(days=day.weekday())


@lru_cache(maxsize=4096)
def _week(cal: Calendar, monday: date) -> _Week:
    """Convert one local week of opening hours to UTC intervals."""
    tz = ZoneInfo(cal.timezone)
    intervals: list[tuple[datetime, datetime]] = []
    for offset, day_hours in enumerate(cal.hours):
        day = monday + timedelta(days=offset)
        if day in cal.holidays:
            continue
        for start, end in day_hours:
            opens = _to_utc(day, start, tz)
            closes = _to_utc(day + _DAY, _MIDNIGHT, tz) if end is None else _to_utc(day, end, tz)
            if closes > opens:
                intervals.append((opens, closes))
    total = sum((closes - opens for opens, closes in intervals), _ZERO)
    return _Week(_to_utc(monday, _MIDNIGHT, tz), tuple(intervals), total)


def _to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """Return the UTC instant of a local wall time (gap: next existing instant; fold=0)."""
    local = datetime.combine(day, wall, tzinfo=tz)
    instant = local.astimezone(UTC)
    if instant.astimezone(tz).replace(tzinfo=None) == local.replace(tzinfo=None):
        return instant
    # In a gap: the instant before the jump has the old offset, the one after the new; find
    # the transition itself (to the second) by bisection.
    ends = sorted(local.replace(fold=fold).astimezone(UTC) for fold in (0, 1))
    lo, hi = math.floor(ends[0].timestamp()), math.ceil(ends[1].timestamp())
    after = datetime.fromtimestamp(hi, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


# --- input checks -------------------------------------------------------------------------


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(
            f"{name} must be timezone-aware, got naive {value.isoformat()}; "
            "attach a zone, e.g. datetime.now(UTC)"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError(f"{name} {value.isoformat()} is outside the years 1-9999 in UTC") from exc


def _amount(value: object, unit: str) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{unit} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{unit} must be a finite number of zero or more, got {value}")
    try:
        return timedelta(seconds=value) if unit == "seconds" else timedelta(minutes=value)
    except OverflowError as exc:
        raise ValueError(f"{unit}={value} is too large; {_OUT_OF_RANGE}") from exc
