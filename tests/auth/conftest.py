"""Helpers for the account tests: site audit events, and apps built from changed settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.models import SiteAuditEvent, User

DEAD_REDIS = "redis://127.0.0.1:1/0"


def site_events(session: Session, action: str | None = None) -> list[SiteAuditEvent]:
    """The site audit chain in order, optionally one action only (read fresh)."""
    session.expire_all()
    query = select(SiteAuditEvent).order_by(SiteAuditEvent.seq)
    if action is not None:
        query = query.where(SiteAuditEvent.action == action)
    return list(session.scalars(query))


def user(session: Session, email: str) -> User:
    """The user with this email, read fresh (password hash included)."""
    session.expire_all()
    found = session.scalar(select(User).where(User.email == email))
    assert found is not None
    return found


@contextmanager
def app_with(settings: Settings, **changes: Any) -> Iterator[Flask]:
    """A second app on the same database and Redis, with some settings changed."""
    app = create_app(dataclasses.replace(settings, **changes))
    app.config["TESTING"] = True
    try:
        yield app
    finally:
        app.extensions["helpdesk.engine"].dispose()
