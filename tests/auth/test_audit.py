"""Account events land in the site audit chain and in the logs, with ids and never an email."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services import audit
from helpdesk.services.auth import email_digest
from tests.auth.conftest import site_events, user
from tests.browser import Browser, as_user


def _no_pii(text: str, password: str) -> None:
    assert "@" not in text and password not in text and "wrong password" not in text


def test_logins_and_failures_are_audited_with_reasons(
    app: Flask, world, session: Session, password: str
) -> None:
    agent = user(session, "agent@alpha.test")
    Browser(app.test_client()).login("agent@alpha.test", "wrong password!")
    Browser(app.test_client()).login("Nobody@Alpha.test", "wrong password!")
    admin = user(session, "admin@alpha.test")
    admin.active = False
    session.commit()
    Browser(app.test_client()).login("admin@alpha.test", password)
    browser = as_user(app, "agent@alpha.test", password)
    assert browser.post("/logout").status_code == 303

    events = site_events(session)
    got = [(e.action, e.target_id, e.actor_id, e.data.get("reason")) for e in events]
    assert got == [
        ("auth.login_failed", str(agent.id), None, "bad_password"),
        ("auth.login_failed", None, None, "unknown_account"),
        ("auth.login_failed", str(admin.id), None, "inactive"),
        ("auth.login", str(agent.id), agent.id, None),
        ("auth.logout", str(agent.id), agent.id, None),
    ]
    assert events[1].data["email_sha256"] == email_digest("nobody@alpha.test")
    assert len(events[1].data["email_sha256"]) == 12
    for event in events:
        _no_pii(json.dumps(event.data), password)
        assert event.ip_prefix == "127.0.0.0/24"  # a prefix, never the full address
    assert audit.verify(session, None).ok


def test_auth_events_are_logged_with_ids_only(
    app: Flask, world, session: Session, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="helpdesk.services.auth")
    Browser(app.test_client()).login("nobody@alpha.test", "wrong password!")
    as_user(app, "agent@alpha.test", password)
    records = [r for r in caplog.records if r.name == "helpdesk.services.auth"]
    assert [(r.getMessage(), getattr(r, "event", None)) for r in records] == [
        ("auth.login_failed", "auth.login_failed"),
        ("auth.login", "auth.login"),
    ]
    failed, ok = records
    assert failed.user_id is None
    assert failed.reason == "unknown_account"
    assert ok.user_id == user(session, "agent@alpha.test").id
    for record in records:
        _no_pii(json.dumps(record.__dict__, default=str), password)


def test_failed_logins_cost_the_same_and_answer_the_same(
    app: Flask, world, session: Session, password: str
) -> None:
    """Unknown, wrong and inactive all get the same 401 page, and one audit row each."""
    admin = user(session, "admin@alpha.test")
    admin.active = False
    session.commit()
    pages = []
    for email, secret in (("agent@alpha.test", "wrong password!"),
                          ("ghost@alpha.test", "wrong password!"),
                          ("admin@alpha.test", password)):  # fmt: skip
        response = Browser(app.test_client()).login(email, secret)
        assert response.status_code == 401
        pages.append(response.get_data(as_text=True).replace(email, "EMAIL"))
    bodies = {p.split('name="csrf-token" content="')[0] for p in pages}
    assert len(bodies) == 1
    assert len(site_events(session, "auth.login_failed")) == 3
