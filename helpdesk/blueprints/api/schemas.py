"""JSON Schemas of the API's bodies: the OpenAPI components and the input allow-lists.

Request bodies are checked against `NEW_TICKET`, `TICKET_PATCH` and `NEW_COMMENT` (field
names and JSON types) before a service sees them, so the documented shapes are the
enforced ones. Value rules (lengths, choices, emails) stay in the services.
"""

from __future__ import annotations

from typing import Any

from helpdesk.blueprints.api.schemas_admin import ADMIN_COMPONENTS
from helpdesk.models import BODY_MAX, SUBJECT_MAX, Channel, Priority, Status
from helpdesk.services.queries import FILTER_KEYS

Schema = dict[str, Any]

STATUSES = [s.value for s in Status]
PRIORITIES = [p.value for p in Priority]
DATE_TIME: Schema = {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


PERSON: Schema = {
    "type": "object",
    "required": ["email", "name"],
    "properties": {
        "email": {"type": "string", "format": "email"},
        "name": {"type": "string", "description": "May be empty."},
    },
    "additionalProperties": False,
}

TICKET: Schema = {
    "type": "object",
    "required": [
        "number", "subject", "status", "priority", "requester", "assignee", "tags",
        "created_at", "updated_at", "url", "sla",
    ],
    "properties": {
        "number": {"type": "integer", "minimum": 1, "description": "Per-organization number."},
        "subject": {"type": "string", "maxLength": SUBJECT_MAX},
        "status": {"type": "string", "enum": STATUSES},
        "priority": {"type": "string", "enum": PRIORITIES},
        "requester": ref("Person"),
        "assignee": {"anyOf": [ref("Person"), {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "created_at": DATE_TIME,
        "updated_at": DATE_TIME,
        "url": {"type": "string", "format": "uri", "description": "This ticket in the API."},
        "sla": ref("TicketSla"),
    },
    "additionalProperties": False,
}  # fmt: skip

_MAYBE_TIME: Schema = {"anyOf": [DATE_TIME, {"type": "null"}]}
TICKET_SLA: Schema = {
    "type": "object",
    "description": "SLA due times (business time of the org's policy for the priority); "
    "`state` is null when no policy applies. Due times are null once met or without a policy.",
    "required": ["state", "first_response_due_at", "resolution_due_at", "first_responded_at",
                 "solved_at", "paused"],
    "properties": {
        "state": {"type": ["string", "null"], "enum": ["ok", "warning", "breached", None]},
        "first_response_due_at": _MAYBE_TIME,
        "resolution_due_at": _MAYBE_TIME,
        "first_responded_at": _MAYBE_TIME,
        "solved_at": _MAYBE_TIME,
        "paused": {"type": "boolean", "description": "pending/on hold: the clock stands still"},
    },
    "additionalProperties": False,
}  # fmt: skip

COMMENT: Schema = {
    "type": "object",
    "required": ["id", "author", "body", "body_html", "internal", "channel", "created_at"],
    "properties": {
        "id": {"type": "integer"},
        "author": ref("Person"),
        "body": {"type": "string", "description": "Markdown source."},
        "body_html": {
            "type": "string",
            "description": "Sanitized HTML rendering of `body` (safe to embed).",
        },
        "internal": {"type": "boolean", "description": "Internal note; staff only."},
        "channel": {"type": "string", "enum": [c.value for c in Channel]},
        "created_at": DATE_TIME,
    },
    "additionalProperties": False,
}

TICKET_LIST: Schema = {
    "type": "object",
    "required": ["items", "next_cursor"],
    "properties": {
        "items": {"type": "array", "items": ref("Ticket")},
        "next_cursor": {
            "type": ["string", "null"],
            "description": "Pass as `cursor` for the next page; null on the last page.",
        },
    },
    "additionalProperties": False,
}

COMMENT_LIST: Schema = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("Comment")}},
    "additionalProperties": False,
}

NEW_TICKET: Schema = {
    "type": "object",
    "description": (
        "Agents and admins open tickets for any requester and must give `requester_email`. "
        "Requesters open tickets for themselves: for them `requester_email`, "
        "`requester_name` and `priority` are refused with 422."
    ),
    "required": ["subject", "body"],
    "properties": {
        "subject": {"type": "string", "minLength": 1, "maxLength": SUBJECT_MAX},
        "body": {"type": "string", "minLength": 1, "maxLength": BODY_MAX},
        "priority": {"type": "string", "enum": PRIORITIES, "default": "normal"},
        "requester_email": {"type": "string", "format": "email"},
        "requester_name": {
            "type": "string",
            "description": "Used when the requester is new; cut to 120 characters.",
        },
    },
    "additionalProperties": False,
}

TICKET_PATCH: Schema = {
    "type": "object",
    "description": "Any subset of the fields; agents and admins only.",
    "properties": {
        "status": {"type": "string", "enum": STATUSES},
        "priority": {"type": "string", "enum": PRIORITIES},
        "assignee_email": {
            "type": ["string", "null"],
            "description": "An agent or admin of this organization; null or empty unassigns.",
        },
        "tags": {
            "type": "array",
            "maxItems": 20,
            "items": {"type": "string", "minLength": 1, "maxLength": 40},
            "description": (
                "Replaces the tag list. Tags are lower-cased; each is a-z, 0-9, '-' and '_', "
                "starting with a letter or digit."
            ),
        },
    },
    "additionalProperties": False,
}

NEW_COMMENT: Schema = {
    "type": "object",
    "required": ["body"],
    "properties": {
        "body": {"type": "string", "minLength": 1, "maxLength": BODY_MAX},
        "internal": {
            "type": "boolean",
            "default": False,
            "description": "An internal note, hidden from requesters (agents and admins only).",
        },
        "status": {
            "type": "string",
            "enum": STATUSES,
            "description": "Set the ticket's status with the reply (agents and admins only).",
        },
    },
    "additionalProperties": False,
}

PROBLEM: Schema = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong and what to do."},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "On 422 when specific fields are at fault: field name -> message.",
        },
    },
}

_TAG_LIST: Schema = {
    "type": "array",
    "maxItems": 20,
    "items": {"type": "string", "minLength": 1, "maxLength": 40},
}

BULK_UPDATE: Schema = {
    "type": "object",
    "description": (
        "Apply the same changes to up to 100 tickets: all of them change, or none do (an "
        "unknown number or a bad value changes nothing). Agents and admins only."
    ),
    "required": ["numbers"],
    "properties": {
        "numbers": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {"type": "integer", "minimum": 1},
            "description": "Ticket numbers in this organization.",
        },
        "status": {"type": "string", "enum": STATUSES},
        "priority": {"type": "string", "enum": PRIORITIES},
        "assignee_email": {
            "type": ["string", "null"],
            "description": "An agent or admin of this organization; null unassigns.",
        },
        "add_tags": {**_TAG_LIST, "description": "Tags to add to each ticket."},
        "remove_tags": {**_TAG_LIST, "description": "Tags to remove from each ticket."},
    },
    "additionalProperties": False,
}

BULK_RESULT: Schema = {
    "type": "object",
    "required": ["items", "changes"],
    "properties": {
        "items": {"type": "array", "items": ref("Ticket")},
        "changes": {"type": "integer", "description": "Field changes recorded in history."},
    },
}

_FILTERS: Schema = {
    "type": "object",
    "description": "List filters, as the list's query parameters of the same names.",
    "properties": {k: {"type": "string"} for k in FILTER_KEYS},
    "additionalProperties": False,
}

VIEW: Schema = {
    "type": "object",
    "required": ["id", "name", "shared", "filters"],
    "properties": {
        "id": {"type": ["integer", "null"], "description": "null for built-in views"},
        "name": {"type": "string"},
        "shared": {"type": "boolean", "description": "Visible to every agent of the org."},
        "filters": _FILTERS,
    },
}

VIEW_LIST: Schema = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("View")}},
}

NEW_VIEW: Schema = {
    "type": "object",
    "description": "Save filters under a name; `shared` views (admins only) show for everyone.",
    "required": ["name", "filters"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 60},
        "filters": _FILTERS,
        "shared": {"type": "boolean"},
    },
    "additionalProperties": False,
}

CANNED: Schema = {
    "type": "object",
    "required": ["id", "title", "body"],
    "properties": {
        "id": {"type": "integer"},
        "title": {"type": "string"},
        "body": {"type": "string", "description": "Markdown with {placeholders}."},
    },
}

CANNED_LIST: Schema = {
    "type": "object",
    "required": ["items"],
    "properties": {"items": {"type": "array", "items": ref("CannedReply")}},
}

NEW_CANNED: Schema = {
    "type": "object",
    "description": (
        "Placeholders filled when inserted: {requester_name}, {requester_email}, "
        "{ticket_number}, {ticket_subject}, {agent_name}, {org_name}."
    ),
    "required": ["title", "body"],
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 80},
        "body": {"type": "string", "minLength": 1, "maxLength": 10000},
    },
    "additionalProperties": False,
}

FILLED: Schema = {
    "type": "object",
    "required": ["body"],
    "properties": {"body": {"type": "string", "description": "Ready to send as a reply."}},
}

REVOKED_LINKS: Schema = {
    "type": "object",
    "required": ["revoked"],
    "properties": {
        "revoked": {
            "type": "integer",
            "minimum": 0,
            "description": "Links revoked now (links revoked earlier are not counted again).",
        }
    },
    "additionalProperties": False,
}

COMPONENTS: dict[str, Schema] = {
    "Person": PERSON,
    "Ticket": TICKET,
    "TicketSla": TICKET_SLA,
    "Comment": COMMENT,
    "TicketList": TICKET_LIST,
    "CommentList": COMMENT_LIST,
    "NewTicket": NEW_TICKET,
    "TicketPatch": TICKET_PATCH,
    "NewComment": NEW_COMMENT,
    "BulkUpdate": BULK_UPDATE,
    "BulkResult": BULK_RESULT,
    "View": VIEW,
    "ViewList": VIEW_LIST,
    "NewView": NEW_VIEW,
    "CannedReply": CANNED,
    "CannedReplyList": CANNED_LIST,
    "NewCannedReply": NEW_CANNED,
    "FilledReply": FILLED,
    "RevokedLinks": REVOKED_LINKS,
    **ADMIN_COMPONENTS,
    "Problem": PROBLEM,
}
