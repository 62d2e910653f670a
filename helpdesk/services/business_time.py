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
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdesk.services.errors import ValidationError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_HOLIDAYS = 500
QUIET_LIMIT = timedelta(days=5 * 365 + 1)  # no business time this long: the calendar is unusable

Interval = tuple[time, time | None]

_MIDNIGHT = time(0)
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
_ZERO = timedelta(0)
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXAMPLE_INTERVAL = "['09:00', '17:00']"
_OUT_OF_RANGE = "the result falls outside the years 1-9999; use a smaller amount or a nearer date"


class CalendarError(ValidationError, ValueError):
    """Bad calendar input; .errors is a dict field -> message a person can act on."""

    errors: dict[str, str]


@dataclass(frozen=True)
class Calendar:
    """A business calendar: IANA time zone, weekly local opening hours, holiday dates."""

    timezone: str
    hours: tuple[tuple[Interval, ...], ...]
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        errors = _problems(self.timezone, self.hours, self.holidays)
        if errors:
            raise CalendarError(errors)

    @classmethod
    def always(cls) -> Calendar:
        """Return the 24x7 calendar: UTC, open all day every day, no holidays."""
        return cls("UTC", (((_MIDNIGHT, None),),) * 7)

    @property
    def is_always(self) -> bool:
        """Whether every instant is business time (any time zone, open 00:00-24:00 daily)."""
        return not self.holidays and all(day == ((_MIDNIGHT, None),) for day in self.hours)

    @classmethod
    def from_json(
        cls, timezone: str, hours: dict[str, list[list[str]]], holidays: list[str]
    ) -> Calendar:
        """Build a calendar from its JSON form or raise CalendarError naming every problem.

        hours looks like {"mon": [["09:00", "12:00"], ["13:00", "17:30"]], ...}; a missing day
        is closed and "24:00" may end an interval. holidays are "YYYY-MM-DD" strings.
        """
        days, errors = _parse_hours(hours)
        dates, holiday_error = _parse_holidays(holidays)
        if holiday_error:
            errors["holidays"] = holiday_error
        merged = {**_problems(timezone, days, dates), **errors}
        if any(key.startswith("hours.") for key in errors):
            merged.pop("hours", None)  # "no hours at all" may only mean a day failed to parse
        if merged:
            raise CalendarError(merged)
        return cls(timezone, days, dates)

    def to_json(self) -> dict[str, object]:
        """Return the JSON form (all seven days, sorted holidays) that from_json reads back."""
        return {
            "timezone": self.timezone,
            "hours": {
                name: [[_clock(start), _clock(end)] for start, end in day]
                for name, day in zip(WEEKDAYS, self.hours, strict=True)
            },
            "holidays": sorted(day.isoformat() for day in self.holidays),
        }


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


def _problems(timezone: object, hours: object, holidays: object) -> dict[str, str]:
    """Return field -> message for everything wrong with already-parsed calendar values."""
    errors: dict[str, str] = {}
    if problem := _timezone_problem(timezone):
        errors["timezone"] = problem
    if not (isinstance(hours, tuple) and len(hours) == 7):
        errors["hours"] = "give opening hours for 7 days, Monday first"
    else:
        for name, day in zip(WEEKDAYS, hours, strict=True):
            if problem := _day_problem(day):
                errors[f"hours.{name}"] = problem
        if not errors.keys() - {"timezone"} and not any(hours):
            errors["hours"] = "the week has no business hours; open at least one day"
    if not (isinstance(holidays, frozenset) and all(type(day) is date for day in holidays)):
        errors["holidays"] = "give holidays as a frozenset of dates"
    elif len(holidays) > MAX_HOLIDAYS:
        errors["holidays"] = _too_many(len(holidays))
    return errors


def _too_many(count: int) -> str:
    return f"keep to {MAX_HOLIDAYS} holidays or fewer (got {count}); remove past years"


def _timezone_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name.strip():
        return "choose a time zone by its IANA name, e.g. 'Europe/Berlin'"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return f"unknown timezone {name!r}; use an IANA name such as 'Europe/Berlin'"
    return None


def _day_problem(day: object) -> str | None:
    if not isinstance(day, tuple):
        return "give the day's intervals as a tuple of (start, end) pairs"
    previous = (-1, -1, "")  # start minute, end minute and label of the interval before
    for interval in day:
        if not (
            isinstance(interval, tuple)
            and len(interval) == 2
            and _is_wall(interval[0])
            and (interval[1] is None or _is_wall(interval[1]))
        ):
            return (
                f"{interval!r} is not a (start, end) pair of whole-minute local times "
                "(end None for midnight)"
            )
        start, end = _minute(interval[0]), _minute(interval[1])
        label = f"{_clock(interval[0])}-{_clock(interval[1])}"
        if start >= end:
            return f"interval {label} must start before it ends (write midnight as '24:00')"
        if start < previous[0]:
            return "list the intervals in order of start time"
        if start < previous[1]:
            return f"intervals {previous[2]} and {label} overlap; merge them into one"
        previous = (start, end, label)
    return None


def _is_wall(value: object) -> bool:
    return isinstance(value, time) and not (value.tzinfo or value.second or value.microsecond)


def _minute(value: time | None) -> int:
    return 24 * 60 if value is None else value.hour * 60 + value.minute


def _clock(value: time | None) -> str:
    return "24:00" if value is None else f"{value.hour:02d}:{value.minute:02d}"


# --- JSON parsing -------------------------------------------------------------------------


def _parse_hours(hours: object) -> tuple[tuple[tuple[Interval, ...], ...], dict[str, str]]:
    """Return the seven days' sorted intervals and field -> message for what did not parse."""
    days: list[tuple[Interval, ...]] = [()] * 7
    if not isinstance(hours, Mapping):
        message = f"map weekdays (mon ... sun) to lists of intervals like {_EXAMPLE_INTERVAL}"
        return tuple(days), {"hours": message}
    errors: dict[str, str] = {}
    seen: set[int] = set()
    for key, value in hours.items():
        name = key.strip().lower() if isinstance(key, str) else ""
        if name not in WEEKDAYS:
            errors[f"hours.{key}"] = (
                f"unknown weekday {key!r}; use mon, tue, wed, thu, fri, sat or sun"
            )
            continue
        index = WEEKDAYS.index(name)
        if index in seen:
            errors[f"hours.{key}"] = f"{name} is given twice; list each day once"
            continue
        seen.add(index)
        try:
            days[index] = _parse_day(value)
        except ValueError as exc:
            errors[f"hours.{name}"] = str(exc)
    return tuple(days), errors


def _parse_day(value: object) -> tuple[Interval, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError(f"give a list of [start, end] intervals, e.g. [{_EXAMPLE_INTERVAL}]")
    intervals: list[Interval] = []
    for item in value:
        if not (isinstance(item, list | tuple) and len(item) == 2):
            raise ValueError(f"{item!r} is not a [start, end] interval like {_EXAMPLE_INTERVAL}")
        start, end = _parse_clock(item[0]), _parse_clock(item[1])
        if start is None:
            raise ValueError("'24:00' can only end an interval; start the day at '00:00'")
        intervals.append((start, end))
    return tuple(sorted(intervals, key=lambda interval: interval[0]))


def _parse_clock(text: object) -> time | None:
    """Return the wall time for "HH:MM" (None for "24:00") or raise ValueError."""
    if not isinstance(text, str) or not _CLOCK.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not a time; write 24-hour HH:MM, e.g. '09:00' or '17:30'")
    hour, minute = (int(part) for part in text.strip().split(":"))
    return None if hour == 24 else time(hour, minute)


def _parse_holidays(holidays: object) -> tuple[frozenset[date], str | None]:
    """Return the holiday dates and a message for what did not parse."""
    if not isinstance(holidays, list | tuple):
        return frozenset(), "give holidays as a list of dates written YYYY-MM-DD"
    if len(holidays) > MAX_HOLIDAYS:
        return frozenset(), _too_many(len(holidays))
    dates: set[date] = set()
    bad: list[str] = []
    for item in holidays:
        try:
            if not (isinstance(item, str) and _ISO_DATE.fullmatch(item.strip())):
                raise ValueError
            dates.add(date.fromisoformat(item.strip()))
        except ValueError:
            bad.append(repr(item))
    if not bad:
        return frozenset(dates), None
    listed = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    return frozenset(dates), f"not a date: {listed}; write dates as YYYY-MM-DD, e.g. '2025-12-25'"
