"""Changing the password on the profile page: re-authentication, policy, sessions, limit."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services.passwords import PASSWORD_MIN, verify_password
from tests.auth.conftest import site_events, user
from tests.browser import Browser, as_user

CHANGE = "/o/alpha/profile/password"
NEW = "a brand new passphrase"


def change(browser: Browser, current: str, new: str = NEW, confirm: str | None = None):
    form = {"current_password": current, "new_password": new,
            "confirm_password": new if confirm is None else confirm}  # fmt: skip
    return browser.post(CHANGE, form)


def test_change_keeps_this_session_and_ends_the_others(
    app: Flask, world, session: Session, password: str
) -> None:
    here = as_user(app, "agent@alpha.test", password)
    elsewhere = as_user(app, "agent@alpha.test", password)
    before_cookie = here.client.get_cookie("session")
    assert before_cookie is not None
    version = user(session, "agent@alpha.test").session_version

    response = change(here, password)
    assert response.status_code == 303 and response.headers["Location"] == "/o/alpha/profile"
    page = here.get("/o/alpha/profile")
    assert page.status_code == 200 and "Your password was changed" in page.get_data(as_text=True)
    assert here.post("/o/alpha/profile/tokens", {"name": "after"}).status_code == 201  # CSRF kept
    assert elsewhere.get("/o/alpha/tickets").status_code == 302
    copied = app.test_client()
    copied.set_cookie("session", before_cookie.value)
    assert copied.get("/o/alpha/tickets").status_code == 302  # a cookie from before is dead

    agent = user(session, "agent@alpha.test")
    assert agent.session_version == version + 1
    assert verify_password(agent.password_hash, NEW)
    assert Browser(app.test_client()).login("agent@alpha.test", password).status_code == 401
    assert Browser(app.test_client()).login("agent@alpha.test", NEW).status_code == 303
    [event] = site_events(session, "auth.password_changed")
    assert event.actor_id == agent.id and event.data == {}


@pytest.mark.parametrize(
    ("current", "new", "confirm", "field", "message"),
    [
        ("not my password", NEW, NEW, "current_password", "not your current password"),
        (None, "short", "short", "new_password", f"at least {PASSWORD_MIN} characters"),
        (None, NEW, NEW + "!", "confirm_password", "two new passwords differ"),
        (None, None, None, "new_password", "different from your current one"),
        ("", "", "", "current_password", "not your current password"),
    ],
)
def test_a_refused_change_is_422_and_changes_nothing(
    app: Flask, world, session: Session, password: str,
    current: str | None, new: str | None, confirm: str | None, field: str, message: str,
) -> None:  # fmt: skip
    here = as_user(app, "agent@alpha.test", password)
    elsewhere = as_user(app, "agent@alpha.test", password)
    before = user(session, "agent@alpha.test")
    hash_before, version_before = before.password_hash, before.session_version
    response = change(here, current if current is not None else password,
                      new if new is not None else password,
                      confirm if confirm is not None else (new or password))  # fmt: skip
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and f'id="{field}-error"' in html
    assert "Your password has not changed" in html
    after = user(session, "agent@alpha.test")
    assert (after.password_hash, after.session_version) == (hash_before, version_before)
    assert here.get("/o/alpha/tickets").status_code == 200
    assert elsewhere.get("/o/alpha/tickets").status_code == 200
    failed = site_events(session, "auth.password_change_failed")
    assert len(failed) == (1 if field == "current_password" else 0)
    assert site_events(session, "auth.password_changed") == []


def test_change_needs_csrf_and_a_member(app: Flask, world, session: Session, password) -> None:
    here = as_user(app, "agent@alpha.test", password)
    form = {"current_password": password, "new_password": NEW, "confirm_password": NEW}
    assert here.post(CHANGE, form, csrf=False).status_code == 400
    assert here.post("/o/beta/profile/password", form).status_code == 404
    anonymous = Browser(app.test_client())
    assert anonymous.post(CHANGE, form).status_code == 302
    assert verify_password(user(session, "agent@alpha.test").password_hash, password)


def test_wrong_current_passwords_are_rate_limited_per_user(
    app: Flask, world, session: Session, password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PASSWORD_LIMIT_USER", "2 per minute")
    here = as_user(app, "agent@alpha.test", password)
    for _ in range(2):
        assert change(here, "guess " * 3).status_code == 422
    blocked = change(here, password)  # even the right one waits now
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert verify_password(user(session, "agent@alpha.test").password_hash, password)
    other = as_user(app, "admin@alpha.test", password)  # same address, another user
    assert change(other, password).status_code == 303
