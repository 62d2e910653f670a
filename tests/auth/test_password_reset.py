"""Forgot your password: identical answers, a token minted in the job, single use, limits.

Runs against a real SMTP sink (the notify test app); jobs run in-process, in an app context
pushed only while they run (a context held across requests would share `g` between them).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.config import Settings
from helpdesk.db import utcnow
from helpdesk.models import PasswordReset, Role
from helpdesk.services.access_links import hash_token
from helpdesk.services.passwords import verify_password
from tests.auth.conftest import DEAD_REDIS, app_with, site_events, user
from tests.browser import Browser, as_user
from tests.factories import make_member
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    BASE_URL,
    Mail,
    SmtpSink,
    _notify_app,
    _smtp,
    _smtp_server,
    queued,
)
from tests.jobs.notify_helpers import run_jobs as run_queued

LINK_RE = re.compile(re.escape(BASE_URL) + r"/reset/([A-Za-z0-9_-]+)")
JOB = "jobs.accounts.send_password_reset"
NEW = "my fresh passphrase"
_CSRF = re.compile(r'((?:content|value)=")[^"]*(")')


def run_jobs(app: Flask) -> int:
    with app.app_context():
        return run_queued(app)


def ask(app: Flask, email: str, **kw: Any):
    browser = Browser(app.test_client())
    browser.get("/reset")
    return browser.post("/reset", {"email": email}, **kw)


def link_in(mail: Mail) -> str:
    in_text, in_html = set(LINK_RE.findall(mail.text())), set(LINK_RE.findall(mail.html()))
    assert len(in_text) == 1 and in_text == in_html, (in_text, in_html)
    return in_text.pop()


def emailed_token(app: Flask, smtp: SmtpSink, email: str = "agent@alpha.test") -> str:
    assert ask(app, email).status_code == 303
    run_jobs(app)
    mails = smtp.delivered(email)
    assert mails, f"no reset email for {email}"
    return link_in(mails[-1])


def resets(session: Session) -> list[PasswordReset]:
    session.expire_all()
    return list(session.scalars(select(PasswordReset).order_by(PasswordReset.id)))


def set_password(app: Flask, token: str, new: str = NEW, confirm: str | None = None):
    browser = Browser(app.test_client())
    browser.get(f"/reset/{token}")
    form = {"new_password": new, "confirm_password": new if confirm is None else confirm}
    return browser, browser.post(f"/reset/{token}", form)


def test_login_page_links_to_the_reset_form(app: Flask, world) -> None:
    html = app.test_client().get("/login").get_data(as_text=True)
    assert 'href="/reset"' in html and "Forgot your password?" in html
    form = app.test_client().get("/reset")
    assert form.status_code == 200 and 'name="email"' in form.get_data(as_text=True)


def test_the_answer_is_the_same_whether_or_not_the_account_exists(
    app: Flask, world, session: Session, password: str
) -> None:
    make_member(session, world["alpha"]["org"], Role.REQUESTER, "nopass@alpha.test",
                password=False)  # fmt: skip
    inactive = user(session, "admin@alpha.test")
    inactive.active = False
    session.commit()
    answers = []
    for email in ("agent@alpha.test", "ghost@alpha.test", "admin@alpha.test",
                  "nopass@alpha.test", "AGENT@alpha.test "):  # fmt: skip
        response = ask(app, email)
        page = app.test_client().get(response.headers["Location"])
        body = _CSRF.sub(r"\1\2", page.get_data(as_text=True))
        answers.append((response.status_code, response.headers["Location"], page.status_code,
                        body))  # fmt: skip
    assert len(set(answers)) == 1 and answers[0][:3] == (303, "/reset?sent=1", 200)
    assert "If an account with a password uses that address" in answers[0][3]
    agent_id = user(session, "agent@alpha.test").id
    assert queued(app) == [(JOB, (agent_id,)), (JOB, (agent_id,))]  # ids only, no token
    events = site_events(session, "auth.password_reset_requested")
    assert [e.target_id for e in events] == [str(agent_id)] * 2
    assert resets(session) == []  # nothing is minted in the request


def test_a_malformed_address_is_422_with_a_message(app: Flask, world) -> None:
    response = ask(app, "not an address")
    assert response.status_code == 422
    assert "Enter the email address you log in with" in response.get_data(as_text=True)
    assert queued(app) == []


def test_the_job_mints_a_hashed_single_use_link_and_emails_it(
    app: Flask, world, session: Session, smtp: SmtpSink, password: str
) -> None:
    token = emailed_token(app, smtp)
    [mail] = smtp.delivered("agent@alpha.test")
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert "works once, for 60 minutes" in mail.text()
    assert len(token) == 32  # 192 random bits, URL-safe
    [row] = resets(session)
    assert row.token_hash == hash_token(token) and token not in row.token_hash
    assert row.user_id == user(session, "agent@alpha.test").id
    assert row.expires_at - row.created_at == timedelta(minutes=60) and row.used_at is None


def test_opening_the_link_changes_nothing_and_sends_no_referrer(
    app: Flask, world, session: Session, smtp: SmtpSink, password: str
) -> None:
    token = emailed_token(app, smtp)
    version = user(session, "agent@alpha.test").session_version
    for _ in range(2):  # mail scanners open links, sometimes twice
        page = app.test_client().get(f"/reset/{token}")
        assert page.status_code == 200 and 'name="new_password"' in page.get_data(as_text=True)
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert page.headers["Cache-Control"] == "no-store"
    assert resets(session)[0].used_at is None
    assert user(session, "agent@alpha.test").session_version == version


def test_using_the_link_sets_the_password_and_ends_sessions_and_links(
    app: Flask, world, session: Session, smtp: SmtpSink, password: str
) -> None:
    logged_in = as_user(app, "agent@alpha.test", password)
    first = emailed_token(app, smtp)
    token = emailed_token(app, smtp)
    assert first != token
    _browser, mismatch = set_password(app, token, NEW, NEW + "?")
    assert mismatch.status_code == 422 and "two new passwords differ" in mismatch.get_data(
        as_text=True
    )
    _browser, short = set_password(app, token, "short")
    assert short.status_code == 422
    assert verify_password(user(session, "agent@alpha.test").password_hash, password)

    browser, done = set_password(app, token)
    assert done.status_code == 303 and done.headers["Location"] == "/login"
    assert "Your password was changed" in browser.get("/login").get_data(as_text=True)
    agent = user(session, "agent@alpha.test")
    assert verify_password(agent.password_hash, NEW)
    assert logged_in.get("/o/alpha/tickets").status_code == 302  # every session ended
    assert all(r.used_at is not None for r in resets(session))  # the other link died too
    for used in (token, first):
        page = app.test_client().get(f"/reset/{used}")
        assert page.status_code == 404
        assert "This link is no longer valid" in page.get_data(as_text=True)
        _b, again = set_password(app, used, "another passphrase")
        assert again.status_code == 404
    assert verify_password(user(session, "agent@alpha.test").password_hash, NEW)
    assert Browser(app.test_client()).login("agent@alpha.test", NEW).status_code == 303
    [event] = site_events(session, "auth.password_reset")
    assert event.actor_id == agent.id and event.target_id == str(agent.id)


@pytest.mark.parametrize("token", ["A" * 32, "short", "A" * 31 + "%20", "a/b", "A" * 200])
def test_unknown_or_malformed_links_get_the_same_page(app: Flask, world, token: str) -> None:
    page = app.test_client().get(f"/reset/{token}")
    assert page.status_code == 404
    assert "This link is no longer valid" in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"


def test_expired_links_and_deactivated_accounts_get_the_same_page(
    app: Flask, world, session: Session, smtp: SmtpSink, password: str
) -> None:
    expired = emailed_token(app, smtp)
    session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    assert app.test_client().get(f"/reset/{expired}").status_code == 404
    _b, refused = set_password(app, expired)
    assert refused.status_code == 404
    fresh = emailed_token(app, smtp)
    agent = user(session, "agent@alpha.test")
    agent.active = False
    session.commit()
    assert app.test_client().get(f"/reset/{fresh}").status_code == 404
    assert verify_password(user(session, "agent@alpha.test").password_hash, password)


def test_the_job_skips_accounts_that_may_no_longer_reset(
    app: Flask, world, session: Session, smtp: SmtpSink
) -> None:
    assert ask(app, "agent@alpha.test").status_code == 303
    agent = user(session, "agent@alpha.test")
    agent.active = False
    session.commit()
    run_jobs(app)
    assert smtp.delivered() == [] and resets(session) == []


def test_requests_are_limited_per_account_and_per_address(
    app: Flask, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "RESET_LIMIT_ACCOUNT", "2 per minute")
    for _ in range(2):
        assert ask(app, "agent@alpha.test").status_code == 303
    blocked = ask(app, "Agent@alpha.test")
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert ask(app, "ghost@alpha.test").status_code == 303  # another account goes through
    monkeypatch.setitem(app.config, "RESET_LIMIT_IP", "4 per minute")
    for i in range(4):
        assert ask(app, f"user{i}@alpha.test").status_code == 303
    assert ask(app, "user9@alpha.test").status_code == 429
    assert len(queued(app)) == 2  # only the agent's two requests were real


def test_link_pages_are_limited_per_address(
    app: Flask, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LINK_LIMIT_IP", "3 per minute")
    for _ in range(3):
        assert app.test_client().get("/reset/" + "A" * 32).status_code == 404
    assert app.test_client().get("/reset/" + "B" * 32).status_code == 429


def test_reset_fails_closed_without_redis(settings: Settings, world) -> None:
    with app_with(settings, ratelimit_storage_uri=DEAD_REDIS) as broken:
        response = ask(broken, "agent@alpha.test")
        assert response.status_code == 503 and response.headers["Retry-After"] == "30"
        assert broken.test_client().get("/reset/" + "A" * 32).status_code == 503
