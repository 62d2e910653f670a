"""Admin forms: the text people type, turned into the JSON-shaped input the services check.

Opening hours are typed per weekday as "09:00-12:00, 13:00-17:30" (empty = closed), holidays
one date per line, warning lists as "75, 90". A piece that cannot even be read as an
interval is reported on its day's field; everything else is judged by the services, the
same way as for the API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from werkzeug.datastructures import MultiDict

from helpdesk.models import BusinessCalendar, SlaPolicy, WebhookEndpoint
from helpdesk.services.business_time import WEEKDAYS
from helpdesk.services.sla_admin import ALWAYS, CalendarInput, PolicyInput
from helpdesk.services.webhooks import WebhookInput

DAY_NAMES = dict(zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
                                "Saturday", "Sunday"), strict=True))  # fmt: skip
_INTERVAL = re.compile(r"^(\d{1,2}):(\d{2})\s*[-\u2013]\s*(\d{1,2}):(\d{2})$")
_SEPARATORS = re.compile(r"[\s,;]+")


# --- calendars -------------------------------------------------------------------------------


def calendar_input(form: Mapping[str, str]) -> CalendarInput:
    """Read the calendar form (name, timezone, hours_mon … hours_sun, holidays)."""
    hours: dict[str, list[list[str]]] = {}
    problems: dict[str, str] = {}
    for day in WEEKDAYS:
        try:
            hours[day] = day_intervals(form.get(f"hours_{day}", ""))
        except ValueError as exc:
            problems[f"hours.{day}"] = str(exc)
    holidays = [d for d in _SEPARATORS.split(form.get("holidays", "")) if d]
    return CalendarInput(name=form.get("name", ""), timezone=form.get("timezone", ""),
                         hours=hours, holidays=holidays, problems=problems)  # fmt: skip


def day_intervals(text: str) -> list[list[str]]:
    """ "09:00-12:00, 13:00-17:30" -> [["09:00", "12:00"], ["13:00", "17:30"]]; "" -> []."""
    pieces = [p.strip() for p in text.split(",") if p.strip()]
    if [p.lower() for p in pieces] == ["closed"]:
        return []
    intervals = []
    for piece in pieces:
        match = _INTERVAL.match(piece)
        if match is None:
            raise ValueError(
                f"{piece!r} is not an interval; write times like 09:00-12:00, 13:00-17:30 "
                "(24-hour clock, commas between intervals, empty for closed)"
            )
        start_h, start_m, end_h, end_m = match.groups()
        intervals.append([f"{int(start_h):02d}:{start_m}", f"{int(end_h):02d}:{end_m}"])
    return intervals


def calendar_values(calendar: BusinessCalendar | None) -> dict[str, str]:
    """The calendar form's field values for an existing calendar (or a new one)."""
    if calendar is None:
        weekday = "09:00-17:00"
        values = {"name": "", "timezone": "UTC", "holidays": ""}
        values.update({f"hours_{d}": weekday if d not in ("sat", "sun") else "" for d in WEEKDAYS})
        return values
    values = {"name": calendar.name, "timezone": calendar.timezone,
              "holidays": "\n".join(calendar.holidays)}  # fmt: skip
    for day in WEEKDAYS:
        values[f"hours_{day}"] = ", ".join(f"{a}-{b}" for a, b in calendar.hours.get(day, []))
    return values


# --- policies --------------------------------------------------------------------------------


def policy_input(form: Mapping[str, str]) -> PolicyInput:
    """Read one row of the policy table."""
    return PolicyInput(
        first_response_minutes=form.get("first_response_minutes", ""),
        resolution_minutes=form.get("resolution_minutes", ""),
        calendar=form.get("calendar", ""),
        warn_at_percent=[p for p in _SEPARATORS.split(form.get("warn_at_percent", "")) if p],
        warn_before_minutes=[
            p for p in _SEPARATORS.split(form.get("warn_before_minutes", "")) if p
        ],
    )


def policy_values(policy: SlaPolicy | None) -> dict[str, str]:
    """A policy row's field values (suggestions for a priority without a policy)."""
    if policy is None:
        return {"first_response_minutes": "", "resolution_minutes": "", "calendar": ALWAYS,
                "warn_at_percent": "75, 90", "warn_before_minutes": ""}  # fmt: skip
    return {
        "first_response_minutes": str(policy.first_response_minutes),
        "resolution_minutes": str(policy.resolution_minutes),
        "calendar": ALWAYS if policy.calendar_id is None else str(policy.calendar_id),
        "warn_at_percent": ", ".join(str(p) for p in policy.warn_at_percent),
        "warn_before_minutes": ", ".join(str(m) for m in policy.warn_before_minutes),
    }


def policy_form_values(form: Mapping[str, str]) -> dict[str, str]:
    """The submitted row, echoed back as typed."""
    return {key: form.get(key, "") for key in policy_values(None)}


# --- webhooks --------------------------------------------------------------------------------


def webhook_input(form: MultiDict[str, str], with_active: bool) -> WebhookInput:
    """Read the webhook form (url, description, events checkboxes, active on edit)."""
    return WebhookInput(
        url=form.get("url", ""),
        description=form.get("description", ""),
        events=form.getlist("events"),
        active=("active" in form) if with_active else None,
    )


def webhook_values(endpoint: WebhookEndpoint | None) -> dict[str, object]:
    """The webhook form's field values."""
    if endpoint is None:
        return {"url": "", "description": "", "events": ["*"], "active": True}
    return {"url": endpoint.url, "description": endpoint.description,
            "events": list(endpoint.events), "active": endpoint.active}  # fmt: skip


def webhook_form_values(form: MultiDict[str, str]) -> dict[str, object]:
    """The submitted webhook form, echoed back as typed."""
    return {"url": form.get("url", ""), "description": form.get("description", ""),
            "events": form.getlist("events"), "active": "active" in form}  # fmt: skip
