"""Whole-database snapshots: a refused request must write nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import Base
from helpdesk.models import ApiToken, Comment, Membership, Organization, Ticket, TicketEvent
from helpdesk.tenancy import unscoped
from tests.tenancy.matrix import VOLATILE_COLUMNS, Matrix

# --- state before and after ----------------------------------------------------------------


def snapshot(session: Session) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (minus volatile columns), read across orgs."""
    session.rollback()
    found: dict[str, list[tuple[Any, ...]]] = {}
    with unscoped(session):
        for table in Base.metadata.sorted_tables:
            cols = [c for c in table.c if (table.name, c.name) not in VOLATILE_COLUMNS]
            order = list(table.primary_key.columns)
            rows = session.execute(select(*cols).order_by(*order))
            found[table.name] = [tuple(map(hashable, r)) for r in rows]
    session.rollback()
    return found


def hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return tuple(hashable(v) for v in value) if isinstance(value, list) else value


def org_summary(session: Session, org_id: int) -> dict[str, Any]:
    """One org at a glance: row counts, ticket fields, token states and its ticket counter."""
    session.rollback()
    with unscoped(session):

        def count(model: Any) -> int:
            stmt = select(func.count()).select_from(model).where(model.org_id == org_id)
            return session.scalar(stmt) or 0

        fields = session.execute(
            select(
                Ticket.number,
                Ticket.subject,
                Ticket.status,
                Ticket.priority,
                Ticket.assignee_id,
                Ticket.tags,
                Ticket.updated_at,
            )
            .where(Ticket.org_id == org_id)
            .order_by(Ticket.number)
        ).all()
        tokens = session.execute(
            select(ApiToken.id, ApiToken.revoked_at)
            .where(ApiToken.org_id == org_id)
            .order_by(ApiToken.id)
        ).all()
        summary = {
            "tickets": count(Ticket),
            "comments": count(Comment),
            "events": count(TicketEvent),
            "members": count(Membership),
            "fields": [tuple(r) for r in fields],
            "tokens": [tuple(r) for r in tokens],
            "ticket_seq": session.scalar(
                select(Organization.ticket_seq).where(Organization.id == org_id)
            ),
        }
    session.rollback()
    return summary


def diff(before: dict[str, list[tuple[Any, ...]]], after: dict[str, list[tuple[Any, ...]]]) -> str:
    lines = []
    for table in before:
        added = sorted(set(after[table]) - set(before[table]), key=repr)
        removed = sorted(set(before[table]) - set(after[table]), key=repr)
        if added or removed:
            lines.append(f"{table}: +{added} -{removed}")
    return "\n".join(lines)


class Unchanged:
    """Context: the database (and beta's summary) must be the same afterwards."""

    def __init__(self, m: Matrix, world: dict[str, Any]):
        self.m = m
        self.beta_id = world["beta"]["org"].id

    def __enter__(self) -> Unchanged:
        self.before = snapshot(self.m.session)
        self.beta_before = org_summary(self.m.session, self.beta_id)
        assert self.beta_before["tickets"] == 3 and self.beta_before["events"] > 0
        assert len(self.beta_before["tokens"]) == 2
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return
        beta_after = org_summary(self.m.session, self.beta_id)
        after = snapshot(self.m.session)
        if beta_after != self.beta_before:
            self.m.failures.append(f"beta changed: {self.beta_before} -> {beta_after}")
        changes = diff(self.before, after)
        if changes:
            self.m.failures.append(f"refused requests wrote to the database:\n{changes}")
