"""Flip flags the way operators do (the service, in the app's context), and read them back."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import SiteAuditEvent
from helpdesk.services import flags


def switch(app: Flask, session: Session, name: str, on: bool, reason: str = "test") -> bool:
    """Set a flag through the service (this app's cache sees it at once)."""
    with app.app_context():
        return flags.set_flag(session, name, on, None, reason, via="cli")


def site_events(session: Session, action: str = flags.AUDIT_ACTION) -> list[SiteAuditEvent]:
    session.expire_all()
    rows = list(
        session.scalars(
            select(SiteAuditEvent)
            .where(SiteAuditEvent.action == action)
            .order_by(SiteAuditEvent.seq)
        )
    )
    session.rollback()
    return rows
