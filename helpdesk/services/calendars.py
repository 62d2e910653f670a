"""Business calendars for SLA targets: time zone, weekly opening hours, holidays.

Why: admins type calendars into a form or the API, so every check names the field it is about
and says how to fix it (CalendarError.errors), and a Calendar that exists is always valid: the
constructor checks parsed values and from_json parses and checks the JSON form, reporting every
problem at once. Hours are local wall-clock intervals per weekday, Monday first; an interval
ending at midnight has the end None ("24:00" in JSON).

business_time does the arithmetic on these calendars (and re-exports the names here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdesk.services.errors import ValidationError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_HOLIDAYS = 500

Interval = tuple[time, time | None]

_MIDNIGHT = time(0)
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)|24:00")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXAMPLE_INTERVAL = "['09:00', '17:00']"


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


# --- input checks -------------------------------------------------------------------------


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
