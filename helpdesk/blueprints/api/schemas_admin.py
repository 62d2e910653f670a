"""JSON Schemas of the admin API (SLA policies, calendars, webhooks, deliveries).

Merged into the OpenAPI components by `schemas.py`. Request bodies are checked against
`POLICY_PUT`, `NEW_CALENDAR`, `CALENDAR_PATCH`, `NEW_WEBHOOK` and `WEBHOOK_PATCH` (field
names and JSON types) before a service sees them; value rules stay in the services.
"""

from __future__ import annotations

from typing import Any

from helpdesk.models import DeliveryStatus, EventKind, Priority
from helpdesk.services.sla_admin import (
    ALWAYS,
    BEFORE_MAX,
    MINUTES_MAX,
    NAME_MAX,
    WARNINGS_MAX,
)
from helpdesk.services.webhooks import ALL_EVENTS, DESCRIPTION_MAX

Schema = dict[str, Any]

_DATE_TIME: Schema = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}
_MINUTES: Schema = {"type": "integer", "minimum": 1, "maximum": MINUTES_MAX}
_CALENDAR_CHOICE: Schema = {
    "type": ["string", "integer"],
    "description": f'"{ALWAYS}" (every minute counts) or the id of one of the org\'s calendars.',
}
_PERCENTS: Schema = {
    "type": "array",
    "maxItems": WARNINGS_MAX,
    "uniqueItems": True,
    "items": {"type": "integer", "minimum": 1, "maximum": 99},
    "description": "Warn when this share of a target's business time has passed.",
}
_BEFORES: Schema = {
    "type": "array",
    "maxItems": WARNINGS_MAX,
    "uniqueItems": True,
    "items": {"type": "integer", "minimum": 1, "maximum": BEFORE_MAX},
    "description": "Warn this many business minutes before a due time (each less than the "
    "first response target).",
}
_INTERVAL: Schema = {
    "type": "array",
    "minItems": 2,
    "maxItems": 2,
    "items": {"type": "string", "pattern": r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$"},
    "description": 'Local wall-clock ["HH:MM", "HH:MM"]; "24:00" may end an interval.',
}
_HOURS: Schema = {
    "type": "object",
    "description": "Opening hours per weekday; a missing or empty day is closed.",
    "properties": {
        day: {"type": "array", "items": _INTERVAL}
        for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    },
    "additionalProperties": False,
}
_HOLIDAYS: Schema = {
    "type": "array",
    "items": {"type": "string", "format": "date"},
    "description": "Local dates (YYYY-MM-DD) without business time.",
}
_EVENTS: Schema = {
    "type": "array",
    "minItems": 1,
    # The names sit in anyOf, not in a top-level enum: the request check then leaves them
    # to the service, whose 422 names each unknown event.
    "items": {"type": "string", "anyOf": [{"enum": [ALL_EVENTS, *(k.value for k in EventKind)]}]},
    "description": f'Event names, or ["{ALL_EVENTS}"] for every event (also future ones).',
}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _list(item: str) -> Schema:
    return {"type": "object", "required": ["items"],
            "properties": {"items": {"type": "array", "items": _ref(item)}}}  # fmt: skip


SLA_POLICY: Schema = {
    "type": "object",
    "required": ["priority", "first_response_minutes", "resolution_minutes", "calendar",
                 "calendar_name", "warn_at_percent", "warn_before_minutes", "updated_at"],
    "properties": {
        "priority": {"type": "string", "enum": [p.value for p in Priority]},
        "first_response_minutes": _MINUTES,
        "resolution_minutes": _MINUTES,
        "calendar": _CALENDAR_CHOICE,
        "calendar_name": {"type": "string"},
        "warn_at_percent": _PERCENTS,
        "warn_before_minutes": _BEFORES,
        "updated_at": _DATE_TIME,
    },
    "additionalProperties": False,
}  # fmt: skip

POLICY_PUT: Schema = {
    "type": "object",
    "description": (
        "The whole policy for one priority (replaces what was there). Targets are business "
        "minutes; resolution must be at least first response. Tickets already open keep "
        "their due times; new tickets and priority changes use the new targets."
    ),
    "required": ["first_response_minutes", "resolution_minutes", "calendar", "warn_at_percent"],
    "properties": {
        "first_response_minutes": _MINUTES,
        "resolution_minutes": _MINUTES,
        "calendar": _CALENDAR_CHOICE,
        "warn_at_percent": _PERCENTS,
        "warn_before_minutes": {**_BEFORES, "default": []},
    },
    "additionalProperties": False,
}

CALENDAR: Schema = {
    "type": "object",
    "required": ["id", "name", "timezone", "hours", "holidays", "used_by", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "timezone": {"type": "string", "description": "IANA time zone name."},
        "hours": _HOURS,
        "holidays": _HOLIDAYS,
        "used_by": {
            "type": "array",
            "items": {"type": "string", "enum": [p.value for p in Priority]},
            "description": "Priorities whose policy uses this calendar (it cannot be deleted "
            "while any does).",
        },
        "created_at": _DATE_TIME,
    },
    "additionalProperties": False,
}

_CALENDAR_FIELDS: Schema = {
    "name": {"type": "string", "minLength": 1, "maxLength": NAME_MAX},
    "timezone": {"type": "string", "description": "IANA name, e.g. Europe/Berlin."},
    "hours": _HOURS,
    "holidays": _HOLIDAYS,
}

NEW_CALENDAR: Schema = {
    "type": "object",
    "required": ["name", "timezone", "hours"],
    "properties": _CALENDAR_FIELDS,
    "additionalProperties": False,
}

CALENDAR_PATCH: Schema = {
    "type": "object",
    "description": "Any subset of the fields; `hours` and `holidays` replace the old lists.",
    "properties": _CALENDAR_FIELDS,
    "additionalProperties": False,
}

WEBHOOK: Schema = {
    "type": "object",
    "description": "An endpoint. The signing secret is never shown here.",
    "required": ["id", "url", "description", "events", "active", "disabled_reason",
                 "previous_secret_expires_at", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "url": {"type": "string", "format": "uri"},
        "description": {"type": "string"},
        "events": _EVENTS,
        "active": {"type": "boolean"},
        "disabled_reason": {"type": ["string", "null"],
                            "description": "Why it was switched off after failing."},
        "previous_secret_expires_at": {
            **_DATE_TIME, "type": ["string", "null"],
            "description": "During a rotation, the previous secret also signs until then.",
        },
        "created_at": _DATE_TIME,
        "updated_at": _DATE_TIME,
    },
    "additionalProperties": False,
}  # fmt: skip

WEBHOOK_WITH_SECRET: Schema = {
    **WEBHOOK,
    "description": "The endpoint with its new signing secret: shown in this response only.",
    "required": [*WEBHOOK["required"], "secret"],
    "properties": {
        **WEBHOOK["properties"],
        "secret": {"type": "string", "pattern": "^whsec_",
                   "description": "Standard Webhooks signing secret; store it now."},
    },
}  # fmt: skip

NEW_WEBHOOK: Schema = {
    "type": "object",
    "description": "The URL must be a public http(s) address (private and loopback "
    "addresses are refused).",
    "required": ["url", "events"],
    "properties": {
        "url": {"type": "string", "format": "uri", "maxLength": 2000},
        "events": _EVENTS,
        "description": {"type": "string", "maxLength": DESCRIPTION_MAX},
    },
    "additionalProperties": False,
}

WEBHOOK_PATCH: Schema = {
    "type": "object",
    "description": "Any subset of the fields. `active: true` re-enables an endpoint that was "
    "disabled after failures.",
    "properties": {**NEW_WEBHOOK["properties"], "active": {"type": "boolean"}},
    "additionalProperties": False,
}

DELIVERY: Schema = {
    "type": "object",
    "required": ["id", "event", "ticket", "status", "attempts", "response_status",
                 "last_error", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "event": {"type": "string", "enum": [k.value for k in EventKind]},
        "ticket": {"type": ["integer", "null"], "description": "The ticket's number."},
        "status": {"type": "string", "enum": [s.value for s in DeliveryStatus]},
        "attempts": {"type": "integer"},
        "response_status": {"type": ["integer", "null"]},
        "last_error": {"type": ["string", "null"]},
        "created_at": _DATE_TIME,
        "updated_at": _DATE_TIME,
    },
    "additionalProperties": False,
}  # fmt: skip

DELIVERY_LIST: Schema = {
    "type": "object",
    "required": ["items", "next_before"],
    "properties": {
        "items": {"type": "array", "items": _ref("Delivery")},
        "next_before": {"type": ["integer", "null"],
                        "description": "Pass as `before` for older deliveries; null at the end."},
    },
}  # fmt: skip

ADMIN_COMPONENTS: dict[str, Schema] = {
    "SlaPolicy": SLA_POLICY,
    "SlaPolicyList": _list("SlaPolicy"),
    "SlaPolicyPut": POLICY_PUT,
    "Calendar": CALENDAR,
    "CalendarList": _list("Calendar"),
    "NewCalendar": NEW_CALENDAR,
    "CalendarPatch": CALENDAR_PATCH,
    "Webhook": WEBHOOK,
    "WebhookWithSecret": WEBHOOK_WITH_SECRET,
    "WebhookList": _list("Webhook"),
    "NewWebhook": NEW_WEBHOOK,
    "WebhookPatch": WEBHOOK_PATCH,
    "Delivery": DELIVERY,
    "DeliveryList": DELIVERY_LIST,
}
