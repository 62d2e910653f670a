"""Canned replies: agents and admins keep them for the org and insert them into replies.

Placeholders are a fixed allow-list (`{requester_name}`, `{ticket_number}`, …) replaced
as plain text; the reply body is never a template, so `{{ … }}` or `{% … %}` typed by
anyone stays literal. The filled text goes into the reply box and is rendered through
`render_markdown` only when sent, like anything typed there.
"""

from __future__ import annotations

import re

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from helpdesk.models import CannedReply, Membership, Role, Ticket
from helpdesk.services import audit
from helpdesk.services.errors import Forbidden, NotFound, ValidationError
from helpdesk.services.permissions import require_staff
from helpdesk.services.validation import one_line

TITLE_MAX = 80
BODY_MAX = 10_000
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
PLACEHOLDERS = ("requester_name", "requester_email", "ticket_number", "ticket_subject",
                "agent_name", "org_name")  # fmt: skip


def list_canned(session: Session, actor: Membership) -> list[CannedReply]:
    """The org's canned replies by title (staff only; requesters get none)."""
    if not actor.is_staff:
        return []
    return list(session.scalars(select(CannedReply).order_by(CannedReply.title_key)))


def canned_titles(session: Session, actor: Membership) -> list[Row[tuple[int, str]]]:
    """(id, title) of the org's canned replies by title, for a picker (staff only)."""
    if not actor.is_staff:
        return []
    stmt = select(CannedReply.id, CannedReply.title).order_by(CannedReply.title_key)
    return list(session.execute(stmt))


def create_canned(session: Session, actor: Membership, title: object, body: object) -> CannedReply:
    """Add a canned reply for the whole org (agents and admins)."""
    require_staff(actor, "add canned replies")
    label = one_line(title)
    text = body.replace("\r\n", "\n").replace("\x00", "") if isinstance(body, str) else ""
    errors: dict[str, str] = {}
    if not label or len(label) > TITLE_MAX:
        errors["title"] = f"give a title of 1-{TITLE_MAX} characters"
    if not text.strip() or len(text) > BODY_MAX:
        errors["body"] = f"write the reply (up to {BODY_MAX:,} characters)"
    unknown = sorted(set(PLACEHOLDER.findall(text)) - set(PLACEHOLDERS))
    if unknown:
        errors["body"] = f"unknown placeholder {{{unknown[0]}}}; use: " + ", ".join(
            f"{{{p}}}" for p in PLACEHOLDERS
        )
    if not errors and session.scalar(
        select(CannedReply.id).where(CannedReply.title_key == label.lower())
    ):
        errors["title"] = f"there is already a canned reply called {label!r}"
    if errors:
        raise ValidationError(errors)
    reply = CannedReply(title=label, title_key=label.lower(), body=text,
                        created_by_id=actor.user_id)  # fmt: skip
    session.add(reply)
    session.commit()
    return reply


def delete_canned(session: Session, actor: Membership, canned_id: int) -> None:
    """Remove a canned reply (its author, or an admin)."""
    reply = session.get(CannedReply, canned_id) if actor.is_staff else None
    if reply is None:
        raise NotFound("canned reply not found")
    if reply.created_by_id != actor.user_id and actor.role != Role.ADMIN:
        raise Forbidden("delete canned replies written by others (admins only)")
    audit.record(session, reply.org_id, "canned_reply.deleted", actor_id=actor.user_id,
                 target_type="canned_reply", target_id=reply.id,
                 data={"created_by_id": reply.created_by_id})  # fmt: skip
    session.delete(reply)
    session.commit()


def fill(session: Session, actor: Membership, canned_id: int, ticket: Ticket) -> str:
    """The canned reply's text with its placeholders filled for this ticket."""
    require_staff(actor, "use canned replies")
    reply = session.get(CannedReply, canned_id)
    if reply is None:
        raise NotFound("canned reply not found")
    values = {
        "requester_name": ticket.requester.display_name,
        "requester_email": ticket.requester.email,
        "ticket_number": str(ticket.number),
        "ticket_subject": ticket.subject,
        "agent_name": actor.user.display_name,
        "org_name": actor.org.name,
    }
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), reply.body)
