"""Bulk changes: one call changes many tickets, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Membership, Ticket, TicketEvent
from helpdesk.services.errors import ValidationError
from helpdesk.services.permissions import can_view_ticket, require_staff
from helpdesk.services.tickets import apply_changes, validate_changes
from helpdesk.services.validation import MAX_TAGS, parse_tags, positive_int

BULK_MAX = 100
FIELD_CHANGES = ("status", "priority", "assignee_email")
TAG_CHANGES = ("add_tags", "remove_tags")
TAG_RULE = "tags are words of a-z, 0-9, - and _ (max 40 characters)"


@dataclass
class BulkResult:
    tickets: list[Ticket]
    events: list[TicketEvent]


def parse_numbers(raw: object) -> list[int]:
    """Ticket numbers from a list of ints or digit strings (1 to BULK_MAX, no duplicates)."""
    items = raw if isinstance(raw, list) else []
    numbers = [positive_int(item) for item in items]
    if not items or None in numbers:
        raise ValidationError({"tickets": "select at least one ticket (ticket numbers only)"})
    unique = sorted({n for n in numbers if n is not None})
    if len(unique) > BULK_MAX:
        raise ValidationError({"tickets": f"change at most {BULK_MAX} tickets at a time"})
    return unique


def _tag_changes(changes: dict[str, Any]) -> tuple[list[str], list[str]]:
    errors: dict[str, str] = {}
    parsed: dict[str, list[str]] = {}
    for key in TAG_CHANGES:
        tags = parse_tags(changes.get(key, []))
        if tags is None:
            errors[key] = TAG_RULE
        parsed[key] = tags or []
    if errors:
        raise ValidationError(errors)
    return parsed["add_tags"], parsed["remove_tags"]


def bulk_update(
    session: Session, actor: Membership, numbers: object, changes: dict[str, Any]
) -> BulkResult:
    """Apply the same changes to every listed ticket, or to none of them."""
    require_staff(actor, "change tickets in bulk")
    wanted = parse_numbers(numbers)
    unknown = set(changes) - set(FIELD_CHANGES) - set(TAG_CHANGES)
    if unknown:
        raise ValidationError({k: "this field cannot be changed in bulk" for k in sorted(unknown)})
    if not changes:
        raise ValidationError({"changes": "choose at least one change to apply"})
    values = validate_changes(session, {k: changes[k] for k in FIELD_CHANGES if k in changes})
    add, remove = _tag_changes(changes)
    stmt = select(Ticket).where(Ticket.number.in_(wanted)).order_by(Ticket.number)
    tickets = [t for t in session.scalars(stmt.with_for_update(of=Ticket)).unique()
               if can_view_ticket(actor, t)]  # fmt: skip
    missing = sorted(set(wanted) - {t.number for t in tickets})
    if missing:
        listed = ", ".join(f"#{n}" for n in missing)
        raise ValidationError({"tickets": f"not found in this organization: {listed}"})
    planned = [(ticket, _plan(ticket, values, add, remove)) for ticket in tickets]
    events: list[TicketEvent] = []  # everything was checked above: nothing fails from here
    for ticket, per_ticket in planned:
        events += apply_changes(session, actor, ticket, per_ticket)
    session.commit()
    return BulkResult(tickets, events)


def _plan(
    ticket: Ticket, values: dict[str, Any], add: list[str], remove: list[str]
) -> dict[str, Any]:
    """The values one ticket gets; tag edits are relative to its own tags."""
    planned = dict(values)
    if add or remove:
        kept = [t for t in ticket.tags if t not in remove]
        planned["tags"] = kept + [t for t in add if t not in kept and t not in remove]
        if len(planned["tags"]) > MAX_TAGS:
            message = f"#{ticket.number} would have more than {MAX_TAGS} tags"
            raise ValidationError({"add_tags": message})
    return planned
