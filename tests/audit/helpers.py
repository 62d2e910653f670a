"""Helpers for the audit tests: append events, read a chain back, tamper behind the app."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from helpdesk.models import AuditEvent, AuditHead, SiteAuditEvent
from helpdesk.models.audit import SITE_CHAIN
from helpdesk.services import audit
from helpdesk.tenancy import unscoped


def append(session: Session, org_id: int | None, n: int, action: str = "test.appended") -> None:
    """Append n events to one chain, each in its own committed transaction."""
    for i in range(n):
        audit.record(session, org_id, action, actor_id=None, target_type="test",
                     target_id=i, data={"i": i})  # fmt: skip
        session.commit()


def chain(session: Session, org_id: int | None) -> list[Any]:
    """The chain's rows in seq order, read fresh (seq, prev_hash, hash, action, data)."""
    session.rollback()
    model: Any = SiteAuditEvent if org_id is None else AuditEvent
    stmt = select(model.seq, model.prev_hash, model.hash, model.action, model.data)
    if org_id is not None:
        stmt = stmt.where(AuditEvent.org_id == org_id)
    with unscoped(session):
        rows = session.execute(stmt.order_by(model.seq)).all()
    session.rollback()
    return list(rows)


def head(session: Session, org_id: int | None) -> tuple[int, str] | None:
    session.rollback()
    chain_id = SITE_CHAIN if org_id is None else org_id
    found = session.execute(
        select(AuditHead.seq, AuditHead.hash).where(AuditHead.chain_id == chain_id)
    ).one_or_none()
    session.rollback()
    return None if found is None else (found[0], found[1])


def tamper(session: Session, sql: str, **params: Any) -> None:
    """Run raw SQL behind the app's back (what someone with database access could do)."""
    session.rollback()
    session.execute(text(sql), params)
    session.commit()


def events(session: Session, org_id: int, action: str | None = None) -> list[Any]:
    """The org's events (optionally one action), oldest first, read fresh."""
    session.rollback()
    stmt = select(
        AuditEvent.seq, AuditEvent.action, AuditEvent.actor_id, AuditEvent.target_type,
        AuditEvent.target_id, AuditEvent.data,
    ).where(AuditEvent.org_id == org_id)  # fmt: skip
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    with unscoped(session):
        rows = list(session.execute(stmt.order_by(AuditEvent.seq)))
    session.rollback()
    return rows
