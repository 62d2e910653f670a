"""Read side of tickets: the filtered, keyset-paginated list and a ticket's thread."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from helpdesk.models import Comment, Membership, Priority, Status, Ticket, TicketEvent
from helpdesk.services import orgs
from helpdesk.services.errors import ValidationError
from helpdesk.services.permissions import can_see_internal
from helpdesk.services.validation import choice, choices_text, positive_int

ASSIGNEE_SPECIAL = {"me", "unassigned"}


@dataclass
class TicketFilter:
    """Allow-listed list filters (never raw request args)."""

    status: str | None = None
    priority: str | None = None
    assignee: str | None = None  # "me", "unassigned", or an agent's email / user id


@dataclass
class Page:
    items: list[Ticket]
    next_cursor: str | None
    filters: TicketFilter = field(default_factory=TicketFilter)


def parse_filter(args: dict[str, str]) -> TicketFilter:
    """Build a TicketFilter from query args, rejecting unknown values with field messages."""
    errors: dict[str, str] = {}
    result = TicketFilter()
    if args.get("status"):
        result.status = choice(args["status"], Status)
        if result.status is None:
            errors["status"] = f"choose one of: {choices_text(Status)}"
    if args.get("priority"):
        result.priority = choice(args["priority"], Priority)
        if result.priority is None:
            errors["priority"] = f"choose one of: {choices_text(Priority)}"
    if args.get("assignee"):
        result.assignee = args["assignee"].strip().lower()
    if errors:
        raise ValidationError(errors)
    return result


def encode_cursor(ticket: Ticket) -> str:
    raw = json.dumps([ticket.updated_at.isoformat(), ticket.number]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Parse an opaque cursor; a tampered one is a 422, not a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        stamp, number = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not isinstance(number, int):
            raise ValueError("bad cursor")
        return when, number
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError):
        message = "this page link is invalid; start from the first page"
        raise ValidationError({"cursor": message}) from None


def _assignee_clause(session: Session, actor: Membership, value: str) -> object:
    if value == "me":
        return Ticket.assignee_id == actor.user_id
    if value == "unassigned":
        return Ticket.assignee_id.is_(None)
    user_id = positive_int(value)
    if user_id is not None:
        return Ticket.assignee_id == user_id
    member = orgs.staff_member_by_email(session, value)
    if member is None:
        raise ValidationError({"assignee": "no agent with that email in this organization"})
    return Ticket.assignee_id == member.user_id


def list_tickets(
    session: Session,
    actor: Membership,
    filters: TicketFilter,
    cursor: str | None = None,
    limit: int = 25,
) -> Page:
    """Return one page of tickets the actor may see, newest activity first."""
    stmt: Select[Ticket] = select(Ticket)
    if not actor.is_staff:
        stmt = stmt.where(Ticket.requester_id == actor.user_id)
    if filters.status:
        stmt = stmt.where(Ticket.status == filters.status)
    if filters.priority:
        stmt = stmt.where(Ticket.priority == filters.priority)
    if filters.assignee:
        stmt = stmt.where(_assignee_clause(session, actor, filters.assignee))  # type: ignore[arg-type]
    if cursor:
        when, number = decode_cursor(cursor)
        stmt = stmt.where(tuple_(Ticket.updated_at, Ticket.number) < tuple_(when, number))
    stmt = stmt.order_by(Ticket.updated_at.desc(), Ticket.number.desc()).limit(limit + 1)
    rows = list(session.scalars(stmt).unique())
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items, encode_cursor(items[-1]) if more and items else None, filters)


def conversation(session: Session, actor: Membership, ticket: Ticket) -> list[Comment]:
    """The ticket's comments in order; internal notes only for staff."""
    stmt = select(Comment).where(Comment.ticket_id == ticket.id)
    if not can_see_internal(actor):
        stmt = stmt.where(Comment.internal.is_(False))
    return list(session.scalars(stmt.order_by(Comment.created_at, Comment.id)).unique())


def history(session: Session, ticket: Ticket) -> list[TicketEvent]:
    """Field changes on the ticket, oldest first."""
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    return list(session.scalars(stmt.order_by(TicketEvent.created_at, TicketEvent.id)).unique())
