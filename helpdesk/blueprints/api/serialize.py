"""Tickets and comments as JSON: the shapes documented in `schemas.py`.

Row ids of tickets stay private; the per-org number is a ticket's public id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import url_for

from helpdesk.models import Comment, Ticket, User
from helpdesk.services.thread_rows import CommentRow
from helpdesk.services.ticket_rows import Person, TicketRow


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def person(user: User | Person | None) -> dict[str, str | None] | None:
    if user is None:
        return None
    return {"email": user.email, "name": user.name}


def ticket_url(org_slug: str, number: int) -> str:
    return url_for("api.get_ticket", org_slug=org_slug, number=str(number), _external=True)


def ticket(item: Ticket | TicketRow, org_slug: str) -> dict[str, Any]:
    """A ticket as the API shows it."""
    return {
        "number": item.number,
        "subject": item.subject,
        "status": item.status,
        "priority": item.priority,
        "requester": person(item.requester),
        "assignee": person(item.assignee),
        "tags": list(item.tags or []),
        "created_at": timestamp(item.created_at),
        "updated_at": timestamp(item.updated_at),
        "url": ticket_url(org_slug, item.number),
        "sla": sla(item),
    }


def _maybe(value: datetime | None) -> str | None:
    return timestamp(value) if value is not None else None


def sla(item: Ticket | TicketRow) -> dict[str, Any]:
    """The ticket's SLA state and due times."""
    return {
        "state": item.sla_state,
        "first_response_due_at": _maybe(item.first_response_due_at),
        "resolution_due_at": _maybe(item.resolution_due_at),
        "first_responded_at": _maybe(item.first_responded_at),
        "solved_at": _maybe(item.solved_at),
        "paused": item.sla_paused_at is not None,
    }


def comment(item: Comment | CommentRow) -> dict[str, Any]:
    """A comment as the API shows it (`body_html` was sanitized when it was written)."""
    return {
        "id": item.id,
        "author": person(item.author),
        "body": item.body_md,
        "body_html": item.body_html,
        "internal": item.internal,
        "channel": item.channel,
        "created_at": timestamp(item.created_at),
    }
