"""SLA policies and business calendars: what an org admin may store, checked one way.

Why a module apart from services/sla.py: that one computes due times on tickets; this one
decides what an admin may save. Forms and the API hand the same JSON-shaped values to the
same checks, every problem is reported at once (field -> message), and nothing is saved
unless everything is valid. Calendars are validated by `business_time.Calendar.from_json`,
the parser the SLA engine itself uses, so a saved calendar is always one the engine can read.

Changing a policy or a calendar does not move the due times of tickets that are already
open: they keep what was computed when they opened (or last changed priority). New tickets
and priority changes use the new targets. Alerts already promised stay put, and one click
never rewrites every open ticket.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.models import BusinessCalendar, Membership, Priority, Role, SlaPolicy
from helpdesk.services import audit
from helpdesk.services.business_time import Calendar, CalendarError
from helpdesk.services.errors import Conflict, Forbidden, NotFound, ValidationError
from helpdesk.services.validation import one_line

ALWAYS = "24x7"
PRIORITIES = tuple(p.value for p in Priority)
NAME_MAX = 80
MINUTES_MAX = 525_600  # 365 days
BEFORE_MAX = 32_767  # warn_before_minutes is a smallint column
WARNINGS_MAX = 5
ID_MAX = 2**31 - 1

MINUTES_HELP = f"enter whole minutes from 1 to {MINUTES_MAX:,} (365 days), e.g. 60"


def require_admin(actor: Membership, what: str) -> None:
    """Raise Forbidden unless the actor is an admin of the org."""
    if actor.role != Role.ADMIN:
        raise Forbidden(f"only admins may {what}")


# --- calendars -------------------------------------------------------------------------------


@dataclass
class CalendarInput:
    """A calendar as sent; None means "not given" (required on create, kept on update)."""

    name: object = None
    timezone: object = None
    hours: object = None  # {"mon": [["09:00", "17:00"]], ...}
    holidays: object = None  # ["2025-12-25", ...]
    problems: dict[str, str] = field(default_factory=dict)  # found while reading form text


def list_calendars(session: Session, actor: Membership) -> list[BusinessCalendar]:
    """The org's calendars by name."""
    require_admin(actor, "manage business calendars")
    return list(session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.name)))


def calendar_usage(session: Session, actor: Membership) -> dict[int, list[str]]:
    """Calendar id -> the priorities whose policy uses it."""
    require_admin(actor, "manage business calendars")
    rows = session.execute(
        select(SlaPolicy.calendar_id, SlaPolicy.priority).where(SlaPolicy.calendar_id.is_not(None))
    )
    usage: dict[int, list[str]] = {}
    for calendar_id, priority in rows:
        if calendar_id is not None:
            usage.setdefault(calendar_id, []).append(priority)
    return {cid: sorted(names, key=PRIORITIES.index) for cid, names in usage.items()}


def get_calendar(session: Session, actor: Membership, calendar_id: int) -> BusinessCalendar:
    """Return one of the org's calendars, or NotFound."""
    require_admin(actor, "manage business calendars")
    calendar = session.get(BusinessCalendar, calendar_id) if 0 < calendar_id <= ID_MAX else None
    if calendar is None:
        raise NotFound(f"business calendar {calendar_id} not found in this organization")
    return calendar


def create_calendar(session: Session, actor: Membership, data: CalendarInput) -> BusinessCalendar:
    """Add a business calendar (name, IANA time zone, weekly hours, holidays)."""
    require_admin(actor, "manage business calendars")
    name, parsed = _checked_calendar(session, data, None)
    calendar = BusinessCalendar(name=name)
    _store(calendar, parsed)
    session.add(calendar)
    _commit_named(session, actor, "calendar.created", calendar)
    return calendar


def update_calendar(
    session: Session, actor: Membership, calendar_id: int, data: CalendarInput
) -> BusinessCalendar:
    """Change a calendar; fields not given keep their values."""
    calendar = get_calendar(session, actor, calendar_id)
    name, parsed = _checked_calendar(session, data, calendar)
    calendar.name = name
    _store(calendar, parsed)
    _commit_named(session, actor, "calendar.updated", calendar)
    return calendar


def delete_calendar(session: Session, actor: Membership, calendar_id: int) -> None:
    """Remove a calendar no policy uses (Conflict names the policies that still do)."""
    calendar = get_calendar(session, actor, calendar_id)
    users = calendar_usage(session, actor).get(calendar.id, [])
    if users:
        raise Conflict(
            f"the calendar {calendar.name!r} is used by the SLA policy for "
            f"{', '.join(users)} priority; give {'it' if len(users) == 1 else 'them'} "
            "another calendar (or 24x7) first, then delete it"
        )
    _audit_calendar(session, actor, "calendar.deleted", calendar)
    session.delete(calendar)
    try:
        session.commit()
    except IntegrityError:  # a policy started using it at the same moment
        session.rollback()
        raise Conflict(
            f"the calendar {calendar.name!r} was just chosen for an SLA policy; "
            "reload the page and try again"
        ) from None


def _checked_calendar(
    session: Session, data: CalendarInput, current: BusinessCalendar | None
) -> tuple[str, Calendar]:
    errors = dict(data.problems)
    name = one_line(data.name if data.name is not None or current is None else current.name)
    if not name or len(name) > NAME_MAX:
        errors["name"] = f"give the calendar a name of 1-{NAME_MAX} characters, e.g. 'Office hours'"
    elif _name_taken(session, name, current):
        errors["name"] = f"there is already a calendar called {name!r}; choose another name"
    timezone: object = data.timezone
    hours: object = data.hours
    holidays: object = data.holidays
    if current is not None:
        timezone = current.timezone if timezone is None else timezone
        hours = current.hours if hours is None else hours
        holidays = current.holidays if holidays is None else holidays
    if isinstance(timezone, str):
        timezone = timezone.strip()
    parsed: Calendar | None = None
    try:
        parsed = Calendar.from_json(
            cast(Any, timezone), cast(Any, hours), cast(Any, [] if holidays is None else holidays)
        )
    except CalendarError as exc:
        for key, message in exc.errors.items():
            errors.setdefault(key, message)
    if any(key.startswith("hours.") for key in data.problems):
        errors.pop("hours", None)  # "no hours at all" only because a day failed to parse
    if errors or parsed is None:
        raise ValidationError(errors)
    return name, parsed


def _name_taken(session: Session, name: str, current: BusinessCalendar | None) -> bool:
    stmt = select(BusinessCalendar.id).where(func.lower(BusinessCalendar.name) == name.lower())
    if current is not None:
        stmt = stmt.where(BusinessCalendar.id != current.id)
    return session.scalar(stmt) is not None


def _audit_calendar(
    session: Session, actor: Membership, action: str, calendar: BusinessCalendar
) -> None:
    session.flush()  # a new calendar gets its id (and a taken name fails here)
    audit.record(session, actor.org_id, action, actor_id=actor.user_id, target_type="calendar",
                 target_id=calendar.id, data={"name": calendar.name, "timezone": calendar.timezone,
                 "hours": calendar.hours, "holidays": calendar.holidays})  # fmt: skip


def _store(calendar: BusinessCalendar, parsed: Calendar) -> None:
    data = parsed.to_json()
    calendar.timezone = str(data["timezone"])
    calendar.hours = cast(dict[str, Any], data["hours"])
    calendar.holidays = cast(list[str], data["holidays"])


def _commit_named(
    session: Session, actor: Membership, action: str, calendar: BusinessCalendar
) -> None:
    name = calendar.name
    try:
        _audit_calendar(session, actor, action, calendar)
        session.commit()
    except IntegrityError:  # the same name saved at the same moment by someone else
        session.rollback()
        raise ValidationError(
            {"name": f"there is already a calendar called {name!r}; choose another name"}
        ) from None


# --- policies --------------------------------------------------------------------------------


@dataclass
class PolicyInput:
    """A policy as sent: whole numbers as int or digit strings, lists as lists."""

    first_response_minutes: object = None
    resolution_minutes: object = None
    calendar: object = None  # "24x7" or a calendar id
    warn_at_percent: object = None  # e.g. [75, 90]
    warn_before_minutes: object = field(default_factory=list)  # e.g. [30]; optional
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Checked:
    first: int
    resolution: int
    calendar_id: int | None
    percents: list[int]
    befores: list[int]


def list_policies(session: Session, actor: Membership) -> dict[str, SlaPolicy | None]:
    """Every priority (low to urgent) with its policy, or None when it has no SLA."""
    require_admin(actor, "manage SLA policies")
    found = {p.priority: p for p in session.scalars(select(SlaPolicy)).unique()}
    return {priority: found.get(priority) for priority in PRIORITIES}


def get_policy(session: Session, actor: Membership, priority: str) -> SlaPolicy:
    """Return the policy for a priority, or NotFound."""
    require_admin(actor, "manage SLA policies")
    policy = _policy(session, _priority(priority))
    if policy is None:
        raise NotFound(f"there is no SLA policy for {priority} priority")
    return policy


def save_policy(
    session: Session, actor: Membership, priority: str, data: PolicyInput, now: datetime
) -> tuple[SlaPolicy, bool]:
    """Create or replace the policy for a priority; returns (policy, created)."""
    require_admin(actor, "manage SLA policies")
    key = _priority(priority)
    checked = _checked_policy(session, data)
    policy = _policy(session, key)
    created = policy is None
    if policy is None:
        policy = SlaPolicy(priority=key)
        session.add(policy)
    policy.first_response_minutes = checked.first
    policy.resolution_minutes = checked.resolution
    policy.calendar_id = checked.calendar_id
    policy.warn_at_percent = checked.percents
    policy.warn_before_minutes = checked.befores
    policy.updated_at = now
    audit.record(session, actor.org_id, f"sla_policy.{'created' if created else 'updated'}",
                 actor_id=actor.user_id, target_type="sla_policy", target_id=key,
                 data=asdict(checked))  # fmt: skip
    try:
        session.commit()
    except IntegrityError:  # another admin created it at the same moment
        session.rollback()
        raise Conflict(
            f"the {key} policy was saved by someone else at the same moment; send yours again"
        ) from None
    session.refresh(policy)  # load the calendar relationship for display
    return policy, created


def delete_policy(session: Session, actor: Membership, priority: str) -> None:
    """Remove the policy: tickets of that priority opened from now on have no SLA."""
    policy = get_policy(session, actor, priority)
    audit.record(session, actor.org_id, "sla_policy.deleted", actor_id=actor.user_id,
                 target_type="sla_policy", target_id=policy.priority)  # fmt: skip
    session.delete(policy)
    session.commit()


def _priority(value: str) -> str:
    if value not in PRIORITIES:
        raise NotFound(f"unknown priority {value!r}; use one of: {', '.join(PRIORITIES)}")
    return value


def _policy(session: Session, priority: str) -> SlaPolicy | None:
    return session.scalar(select(SlaPolicy).where(SlaPolicy.priority == priority))


def _checked_policy(session: Session, data: PolicyInput) -> _Checked:
    errors = dict(data.problems)
    first = _whole(data.first_response_minutes)
    if first is None or not 0 < first <= MINUTES_MAX:
        errors.setdefault("first_response_minutes", MINUTES_HELP)
        first = None
    resolution = _whole(data.resolution_minutes)
    if resolution is None or not 0 < resolution <= MINUTES_MAX:
        errors.setdefault("resolution_minutes", MINUTES_HELP)
    elif first is not None and resolution < first:
        errors.setdefault(
            "resolution_minutes",
            f"must be at least the first response target ({first} minutes): "
            "a ticket cannot be resolved before it is answered",
        )
    calendar_id, problem = _calendar_choice(session, data.calendar)
    if problem:
        errors.setdefault("calendar", problem)
    percents, problem = _percents(data.warn_at_percent)
    if problem:
        errors.setdefault("warn_at_percent", problem)
    befores, problem = _befores(data.warn_before_minutes, first)
    if problem:
        errors.setdefault("warn_before_minutes", problem)
    if errors:
        raise ValidationError(errors)
    return _Checked(cast(int, first), cast(int, resolution), calendar_id, percents, befores)


def _whole(value: object) -> int | None:
    """An int, or a string of digits; None for anything else (bools included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isascii() and text.isdigit() and len(text) <= 9:
            return int(text)
    return None


def _calendar_choice(session: Session, value: object) -> tuple[int | None, str | None]:
    if isinstance(value, str) and value.strip().lower() == ALWAYS:
        return None, None
    if value is None or value == "":
        return None, f'choose "{ALWAYS}" (around the clock) or one of your calendars'
    number = _whole(value)
    if number is None:
        return None, f'{value!r} is not a calendar; use "{ALWAYS}" or a calendar id'
    found = session.get(BusinessCalendar, number) if 0 < number <= ID_MAX else None
    if found is None:
        return None, (
            f'there is no calendar with id {number} in this organization; use "{ALWAYS}" '
            "or the id of one of your calendars"
        )
    return found.id, None


def _numbers(value: object, what: str) -> tuple[list[int], str | None]:
    """Parse a list of whole numbers (at most WARNINGS_MAX, no repeats)."""
    if not isinstance(value, list | tuple):
        return [], f"give {what} as a list of whole numbers (an empty list for none)"
    numbers: list[int] = []
    for item in value:
        number = _whole(item)
        if number is None:
            return [], f"{item!r} is not a whole number; list {what} like 75, 90"
        if number in numbers:
            return [], f"{number} is listed twice; give each value once"
        numbers.append(number)
    if len(numbers) > WARNINGS_MAX:
        return [], f"give at most {WARNINGS_MAX} values (got {len(numbers)})"
    return sorted(numbers), None


def _percents(value: object) -> tuple[list[int], str | None]:
    if value is None:
        return [], "give the warning percentages, e.g. [75, 90] (or [] for none)"
    numbers, problem = _numbers(value, "percentages")
    bad = [n for n in numbers if not 1 <= n <= 99]
    if problem is None and bad:
        problem = f"{bad[0]} is not a percentage from 1 to 99 (warn when that much time has passed)"
    return numbers, problem


def _befores(value: object, first: int | None) -> tuple[list[int], str | None]:
    numbers, problem = _numbers([] if value is None else value, "minutes")
    if problem:
        return numbers, problem
    for number in numbers:
        if number < 1 or number > BEFORE_MAX:
            return numbers, f"{number} is out of range; use whole minutes from 1 to {BEFORE_MAX:,}"
        if first is not None and number >= first:
            return numbers, (
                f"{number} minutes before is not less than the first response target "
                f"({first} minutes): the warning would fire as soon as a ticket opens"
            )
    return numbers, None
