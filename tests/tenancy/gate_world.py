"""Shared data for the ORM gate tests: two orgs with overlapping ticket numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import (
    Session,
)

from helpdesk.db import utcnow
from helpdesk.models import (
    ApiToken,
    Comment,
    Membership,
    Ticket,
    TicketEvent,
)
from helpdesk.tenancy import (
    unscoped,
)

SCOPED_MODELS: list[type[Any]] = [Ticket, Comment, Membership, ApiToken, TicketEvent]


@dataclass
class Data:
    alpha: int
    beta: int
    alpha_agent_user: int
    alpha_requester_user: int
    alpha_ticket_ids: list[int]
    beta_ticket_ids: list[int]


def truth(s: Session, model: type[Any]) -> dict[int, set[int]]:
    """Row ids of `model` per org id, read deliberately across orgs."""
    s.expire_all()
    with unscoped(s):
        rows = s.execute(select(model.id, model.org_id)).all()
    found: dict[int, set[int]] = {}
    for row_id, org_id in rows:
        found.setdefault(org_id, set()).add(row_id)
    return found


def ticket_fields(s: Session) -> dict[int, tuple[int, str, str, str]]:
    """(org, number, subject, priority) of every ticket, by id, across orgs."""
    s.expire_all()
    with unscoped(s):
        rows = s.execute(
            select(Ticket.id, Ticket.org_id, Ticket.number, Ticket.subject, Ticket.priority)
        ).all()
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def counts(s: Session) -> dict[str, int]:
    s.expire_all()
    with unscoped(s):
        return {
            m.__name__: s.scalar(select(func.count()).select_from(m)) or 0 for m in SCOPED_MODELS
        }


def new_ticket(org_id: int | None, number: int, requester_id: int) -> Ticket:
    now = utcnow()
    return Ticket(
        org_id=org_id,
        number=number,
        subject="gate probe",
        requester_id=requester_id,
        created_at=now,
        updated_at=now,
    )


def new_comment(org_id: int | None, ticket_id: int, author_id: int) -> Comment:
    return Comment(
        org_id=org_id, ticket_id=ticket_id, author_id=author_id, body_md="x", body_html="x"
    )
