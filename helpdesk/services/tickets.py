"""Ticket operations: open, reply, change fields, list."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import (
    BODY_MAX,
    SUBJECT_MAX,
    Channel,
    Comment,
    EventKind,
    Membership,
    Organization,
    Priority,
    Role,
    Status,
    Ticket,
    TicketEvent,
    User,
)
from helpdesk.rendering import render_markdown
from helpdesk.services import attachments, audit, orgs, outbox, search, sla
from helpdesk.services.errors import Conflict, ValidationError
from helpdesk.services.permissions import can_see_internal, load_ticket, require_staff
from helpdesk.services.validation import (
    choice,
    choices_text,
    normalize_email,
    one_line,
    parse_tags,
)


@dataclass
class NewTicket:
    subject: str
    body: str
    priority: str = Priority.NORMAL.value
    requester_email: str = ""
    requester_name: str = ""


def clean_subject(value: object) -> str:
    """Return a one-line subject or raise ValidationError."""
    text = one_line(value)
    if not text:
        raise ValidationError({"subject": "enter a subject"})
    if len(text) > SUBJECT_MAX:
        raise ValidationError({"subject": f"keep the subject under {SUBJECT_MAX} characters"})
    return text


def clean_body(value: object, field: str = "body") -> str:
    """Return a non-empty message body or raise ValidationError."""
    text = value.replace("\r\n", "\n").replace("\x00", "") if isinstance(value, str) else ""
    if not text.strip():
        raise ValidationError({field: "write a message"})
    if len(text) > BODY_MAX:
        raise ValidationError({field: f"keep the message under {BODY_MAX:,} characters"})
    return text


def _next_number(session: Session, org_id: int) -> int:
    """Allocate the next per-org ticket number (the org row lock serializes writers)."""
    number = session.scalar(
        update(Organization)
        .where(Organization.id == org_id)
        .values(ticket_seq=Organization.ticket_seq + 1)
        .returning(Organization.ticket_seq)
    )
    assert number is not None
    return number


def open_ticket(
    session: Session,
    org: Organization,
    actor: Membership,
    data: NewTicket,
    channel: Channel,
    uploads: Sequence[attachments.Prepared] = (),
) -> Ticket:
    """Create a ticket with its first message; staff open it for any requester email.

    `uploads` (from `attachments.check_uploads`) are stored with the first message, in the
    same transaction: if storing them fails, nothing of the ticket is saved either.
    """
    errors: dict[str, str] = {}
    subject = body = priority = ""
    try:
        subject = clean_subject(data.subject)
    except ValidationError as exc:
        errors.update(exc.errors)
    try:
        body = clean_body(data.body)
    except ValidationError as exc:
        errors.update(exc.errors)
    if actor.is_staff:
        priority = choice(data.priority or Priority.NORMAL.value, Priority) or ""
        if not priority:
            errors["priority"] = f"choose one of: {choices_text(Priority)}"
        if normalize_email(data.requester_email) is None:
            errors["requester_email"] = "enter the requester's email address"
        if len(one_line(data.requester_name)) > orgs.NAME_MAX:
            errors["requester_name"] = f"keep the name under {orgs.NAME_MAX} characters"
    if errors:
        raise ValidationError(errors)
    if actor.is_staff:
        requester = orgs.ensure_user(session, data.requester_email, data.requester_name)
        orgs.ensure_member(session, org, requester, Role.REQUESTER, actor_id=actor.user_id)
    else:
        requester, priority = actor.user, Priority.NORMAL.value
    now = utcnow()
    ticket = Ticket(
        org_id=org.id,
        number=_next_number(session, org.id),
        subject=subject,
        priority=priority,
        status=Status.NEW.value,
        requester_id=requester.id,
        created_at=now,
        updated_at=now,
    )
    search.index_new_ticket(ticket, subject, body)
    session.add(ticket)
    session.flush()
    first = _comment(ticket, actor, body, internal=False, channel=channel)
    session.add(first)
    attachments.attach_to_message(session, actor, ticket, first, uploads)
    sla.ticket_opened(session, ticket, now)
    outbox.emit(session, org.id, EventKind.TICKET_CREATED, ticket=ticket, actor_id=actor.user_id)
    audit.record(session, org.id, "ticket.created", actor_id=actor.user_id, target_type="ticket",
                 target_id=ticket.id, data={"number": ticket.number, "priority": priority,
                 "channel": channel.value, "requester_id": requester.id})  # fmt: skip
    session.commit()
    return ticket


def _comment(
    ticket: Ticket, actor: Membership, body: str, internal: bool, channel: Channel
) -> Comment:
    return Comment(
        org_id=ticket.org_id,
        ticket_id=ticket.id,
        author_id=actor.user_id,
        body_md=body,
        body_html=str(render_markdown(body)),
        internal=internal,
        channel=channel.value,
    )


def _event(ticket: Ticket, actor: Membership, field: str, old: Any, new: Any) -> TicketEvent:
    return TicketEvent(
        org_id=ticket.org_id,
        ticket_id=ticket.id,
        actor_id=actor.user_id,
        field=field,
        old_value=None if old is None else str(old),
        new_value=None if new is None else str(new),
    )


def ticket_of(session: Session, comment: Comment) -> Ticket | None:
    """The comment's ticket; no SQL when this session loaded it (as add_comment does)."""
    found: Ticket | None = session.get(Ticket, comment.ticket_id)
    return found


def add_comment(
    session: Session,
    actor: Membership,
    number: int,
    body: object,
    internal: bool = False,
    channel: Channel = Channel.WEB,
    set_status: str | None = None,
    seen_up_to: int | None = None,
    uploads: Sequence[attachments.Prepared] = (),
) -> Comment:
    """Add a public reply or an internal note; replies may move the ticket's status.

    `uploads` are stored with the comment in the same transaction (all or nothing).

    `seen_up_to` is the newest comment id the writer had on screen: if someone else wrote
    since, nothing is saved and Conflict says so (the writer reads, then sends again).
    """
    ticket = load_ticket(session, actor, number)
    text = clean_body(body)
    if seen_up_to is not None:
        _refuse_if_overtaken(session, actor, ticket, seen_up_to)
    if internal and not can_see_internal(actor):
        raise ValidationError({"internal": "only agents can write internal notes"})
    new_status = _status_after_reply(ticket, actor, internal, set_status)
    comment = _comment(ticket, actor, text, internal, channel)
    session.add(comment)
    session.flush()
    attachments.attach_to_message(session, actor, ticket, comment, uploads)
    search.index_comment(ticket, text, internal)
    now = utcnow()
    sla.comment_added(session, ticket, comment, actor, now)
    outbox.emit(
        session,
        ticket.org_id,
        EventKind.COMMENT_CREATED,
        ticket=ticket,
        actor_id=actor.user_id,
        payload={"comment_id": comment.id, "internal": internal},
    )
    where = {"ticket_id": ticket.id, "number": ticket.number, "internal": internal,
             "channel": channel.value}  # fmt: skip
    audit.record(session, ticket.org_id, "comment.created", actor_id=actor.user_id,
                 target_type="comment", target_id=comment.id, data=where)  # fmt: skip
    if new_status and new_status != ticket.status:
        session.add(_event(ticket, actor, "status", ticket.status, new_status))
        _announce_changes(session, actor, ticket, {"status": (ticket.status, new_status)}, now)
        ticket.status = new_status
    ticket.updated_at = now
    session.commit()
    return comment


def _refuse_if_overtaken(
    session: Session, actor: Membership, ticket: Ticket, seen_up_to: int
) -> None:
    stmt = select(Comment.id).where(
        Comment.ticket_id == ticket.id,
        Comment.id > seen_up_to,
        Comment.author_id != actor.user_id,
    )
    if not can_see_internal(actor):
        stmt = stmt.where(Comment.internal.is_(False))
    if session.scalar(stmt.limit(1)) is not None:
        raise Conflict(
            "Someone else wrote on this ticket while you were typing. Your text is kept "
            "below: read the new message, then send again."
        )


def _status_after_reply(
    ticket: Ticket, actor: Membership, internal: bool, set_status: str | None
) -> str | None:
    if set_status:
        require_staff(actor, "set the status")
        status = choice(set_status, Status)
        if status is None:
            raise ValidationError({"status": f"choose one of: {choices_text(Status)}"})
        return status
    if internal:
        return None
    if actor.is_staff and ticket.status == Status.NEW:
        return Status.OPEN.value
    if not actor.is_staff and ticket.status in (Status.PENDING, Status.SOLVED):
        return Status.OPEN.value
    return None


def update_fields(
    session: Session, actor: Membership, number: int, changes: dict[str, Any]
) -> list[TicketEvent]:
    """Change status/priority/assignee/tags; one TicketEvent per field that changed."""
    ticket = load_ticket(session, actor, number)  # invisible tickets are 404 for everyone
    require_staff(actor, "change ticket fields")
    events = apply_changes(session, actor, ticket, validate_changes(session, changes))
    session.commit()
    return events


def apply_changes(
    session: Session, actor: Membership, ticket: Ticket, values: dict[str, Any]
) -> list[TicketEvent]:
    """Set validated field values; one TicketEvent per field that really changed."""
    events: list[TicketEvent] = []
    changes: dict[str, tuple[Any, Any]] = {}
    for field, new in values.items():
        old = getattr(ticket, field)
        if old != new:
            name = "assignee" if field == "assignee_id" else field
            old_text, new_text = _describe(session, field, old), _describe(session, field, new)
            events.append(_event(ticket, actor, name, old_text, new_text))
            changes[field] = (old, new)
    if events:
        now = utcnow()
        _announce_changes(session, actor, ticket, changes, now)
        for field, (_old, new) in changes.items():
            setattr(ticket, field, new)
        ticket.updated_at = now
        session.add_all(events)
    return events


def _announce_changes(
    session: Session,
    actor: Membership,
    ticket: Ticket,
    changes: dict[str, tuple[Any, Any]],
    now: datetime,
) -> None:
    """Tell the SLA engine, the outbox and the audit log about field changes (before they apply).

    The SLA engine sees old and new values while the ticket still holds the old ones.
    """
    sla.fields_changed(session, ticket, changes, now)
    outbox.emit(
        session,
        ticket.org_id,
        EventKind.TICKET_UPDATED,
        ticket=ticket,
        actor_id=actor.user_id,
        payload={"changes": {field: [old, new] for field, (old, new) in changes.items()}},
    )
    audit.record(session, ticket.org_id, "ticket.updated", actor_id=actor.user_id,
                 target_type="ticket", target_id=ticket.id,
                 data=audit.changes(changes))  # fmt: skip


def _describe(session: Session, field: str, value: Any) -> str | None:
    """Human-readable value for the history pane."""
    if value is None:
        return None
    if field == "assignee_id":
        user = session.get(User, value)
        return user.email if user else None
    if field == "tags":
        return ", ".join(value)
    return str(value)


ALLOWED_CHANGES = {"status", "priority", "assignee_email", "tags"}


def validate_changes(session: Session, changes: dict[str, Any]) -> dict[str, Any]:
    """Check status/priority/assignee_email/tags; return column values or raise (all errors)."""
    unknown = set(changes) - ALLOWED_CHANGES
    if unknown:
        raise ValidationError({k: "this field cannot be changed" for k in sorted(unknown)})
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for field, allowed in (("status", Status), ("priority", Priority)):
        if field in changes:
            value = choice(changes[field], allowed)
            if value is None:
                errors[field] = f"choose one of: {choices_text(allowed)}"
            values[field] = value
    if "assignee_email" in changes:
        raw = changes["assignee_email"]
        if raw in (None, ""):
            values["assignee_id"] = None
        else:
            member = orgs.staff_member_by_email(session, raw) if isinstance(raw, str) else None
            if member is None:
                errors["assignee_email"] = "no agent with that email in this organization"
            else:
                values["assignee_id"] = member.user_id
    if "tags" in changes:
        tags = parse_tags(changes["tags"])
        if tags is None:
            errors["tags"] = "tags are up to 20 words of a-z, 0-9, - and _ (max 40 characters)"
        values["tags"] = tags
    if errors:
        raise ValidationError(errors)
    return values
