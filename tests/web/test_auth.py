"""Login, logout, sessions, CSRF and the login rate limit."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Ticket, User
from helpdesk.tenancy import unscoped
from tests.browser import Browser


def test_login_then_home_redirects_to_the_only_org(browser: Browser, world, password) -> None:
    response = browser.login("agent@alpha.test", password)
    assert response.status_code == 303
    home = browser.get("/")
    assert home.status_code == 302
    assert home.headers["Location"].endswith("/o/alpha/tickets")


def test_wrong_password_and_unknown_email_look_identical(browser: Browser, world) -> None:
    wrong = browser.login("agent@alpha.test", "not the password")
    unknown = browser.login("nobody@alpha.test", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data(as_text=True).count("do not match") == 1
    assert unknown.get_data(as_text=True).count("do not match") == 1


def test_inactive_user_cannot_log_in(browser: Browser, world, session: Session, password) -> None:
    user = session.scalar(select(User).where(User.email == "agent@alpha.test"))
    assert user is not None
    user.active = False
    session.commit()
    assert browser.login("agent@alpha.test", password).status_code == 401


def test_passwords_are_stored_as_argon2id(world, session: Session) -> None:
    hashes = session.scalars(select(User.password_hash)).all()
    assert hashes and all(h and h.startswith("$argon2id$") for h in hashes)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/o/alpha/tickets", "/o/alpha/tickets"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
    ],
)
def test_next_accepts_only_local_paths(browser: Browser, world, password, target, expected):
    browser.get("/login")
    response = browser.post(
        "/login", {"email": "agent@alpha.test", "password": password, "next": target}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == expected


def test_logout_is_post_only_and_kills_copied_cookies(app: Flask, world, password) -> None:
    browser = Browser(app.test_client())
    browser.login("agent@alpha.test", password)
    stolen = browser.client.get_cookie("session")
    assert stolen is not None
    assert browser.get("/logout").status_code == 405
    assert browser.post("/logout").status_code == 303
    # An attacker replays the cookie copied before logout: the session_version moved on.
    thief = app.test_client()
    thief.set_cookie("session", stolen.value)
    response = thief.get("/o/alpha/tickets")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_login_issues_a_new_session(app: Flask, world, password) -> None:
    browser = Browser(app.test_client())
    browser.get("/login")
    before = browser.client.get_cookie("session")
    old_csrf = browser.csrf
    browser.login("agent@alpha.test", password)
    after = browser.client.get_cookie("session")
    assert before is not None and after is not None and before.value != after.value
    # The pre-login CSRF token belonged to the old session and is no longer accepted.
    data = {"csrf_token": old_csrf, "subject": "x", "body": "y"}
    response = browser.client.post("/o/alpha/tickets", data=data)
    assert response.status_code == 400


def test_session_cookie_flags(browser: Browser, world, password) -> None:
    response = browser.login("agent@alpha.test", password)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_post_without_csrf_is_refused_and_saves_nothing(
    browser: Browser, world, password, session: Session
) -> None:
    browser.login("agent@alpha.test", password)
    data = {"subject": "Hi", "body": "there", "requester_email": "r@example.test"}
    response = browser.post("/o/alpha/tickets", data, csrf=False)
    assert response.status_code == 400
    assert "nothing was saved" in response.get_data(as_text=True)
    bad = browser.post("/o/alpha/tickets", {**data, "csrf_token": "forged"}, csrf=False)
    assert bad.status_code == 400
    htmx = browser.client.post("/o/alpha/tickets", data=data, headers={"HX-Request": "true"})
    assert htmx.status_code == 400
    with unscoped(session):
        assert session.scalar(select(Ticket).limit(1)) is None


def test_login_form_itself_needs_csrf(browser: Browser, world, password) -> None:
    response = browser.post("/login", {"email": "agent@alpha.test", "password": password},
                            csrf=False)  # fmt: skip
    assert response.status_code == 400


def test_login_is_rate_limited_per_account(
    app: Flask, browser: Browser, world, password, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_ACCOUNT", "3 per minute")
    for _ in range(3):
        assert browser.login("agent@alpha.test", "wrong password!").status_code == 401
    blocked = browser.login("agent@alpha.test", password)  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many attempts" in blocked.get_data(as_text=True)
    # Another account from the same address is not blocked by this account's limit.
    assert browser.login("admin@alpha.test", password).status_code == 303


def test_login_is_rate_limited_per_client_address(
    app: Flask, browser: Browser, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_IP", "4 per minute")
    for i in range(4):
        assert browser.login(f"user{i}@alpha.test", "wrong password!").status_code == 401
    assert browser.login("user9@alpha.test", "wrong password!").status_code == 429
