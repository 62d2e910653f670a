"""Ending sessions: "log out everywhere", the operator's `sessions revoke`, SECRET_KEY rotation."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.config import ConfigError, Settings
from helpdesk.models import User
from tests.auth.conftest import app_with, site_events, user
from tests.browser import Browser, as_user

TICKETS = "/o/alpha/tickets"


def logged_in(browser: Browser) -> bool:
    return browser.get(TICKETS).status_code == 200


def test_log_out_everywhere_ends_this_and_every_other_session(
    app: Flask, world, session: Session, password: str
) -> None:
    here = as_user(app, "agent@alpha.test", password)
    phone = as_user(app, "agent@alpha.test", password)
    other_user = as_user(app, "admin@alpha.test", password)
    copied = here.client.get_cookie("session")
    assert copied is not None
    page = here.get("/o/alpha/profile").get_data(as_text=True)
    assert 'action="/logout/everywhere"' in page and "Log out everywhere" in page

    response = here.post("/logout/everywhere")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    login_page = here.get("/login").get_data(as_text=True)
    assert "You are logged out everywhere" in login_page
    assert "logged out everywhere" not in here.get("/login").get_data(as_text=True)  # once
    assert not logged_in(here) and not logged_in(phone)
    thief = app.test_client()
    thief.set_cookie("session", copied.value)
    assert thief.get(TICKETS).status_code == 302
    assert logged_in(other_user)
    agent = user(session, "agent@alpha.test")
    [event] = site_events(session, "auth.sessions_revoked")
    assert (event.actor_id, event.target_id, event.data) == (agent.id, str(agent.id),
                                                              {"source": "self"})  # fmt: skip


def test_log_out_everywhere_needs_post_csrf_and_a_login(app: Flask, world, password) -> None:
    browser = as_user(app, "agent@alpha.test", password)
    assert browser.get("/logout/everywhere").status_code == 405
    assert browser.post("/logout/everywhere", csrf=False).status_code == 400
    assert logged_in(browser)
    anonymous = Browser(app.test_client())
    response = anonymous.post("/logout/everywhere")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_cli_revokes_one_user(app: Flask, world, session: Session, password: str) -> None:
    agent_browser = as_user(app, "agent@alpha.test", password)
    admin_browser = as_user(app, "admin@alpha.test", password)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["sessions", "revoke", "--email", "Agent@Alpha.test"])
    assert result.exit_code == 0, result.output
    assert "ended every session of agent@alpha.test" in result.output
    assert not logged_in(agent_browser) and logged_in(admin_browser)
    [event] = site_events(session, "auth.sessions_revoked")
    assert event.actor_id is None and event.data == {"source": "cli"}
    unknown = runner.invoke(args=["sessions", "revoke", "--email", "ghost@alpha.test"])
    assert unknown.exit_code != 0 and "no such user" in unknown.output
    alias = runner.invoke(args=["sessions", "end", "--email", "admin@alpha.test"])
    assert alias.exit_code == 0 and not logged_in(admin_browser)
    assert len(site_events(session, "auth.sessions_revoked")) == 2


def test_cli_revokes_everyone_in_one_update(
    app: Flask, world, session: Session, password: str
) -> None:
    browsers = {org: as_user(app, f"agent@{org}.test", password) for org in ("alpha", "beta")}

    def sessions_alive() -> list[bool]:
        return [b.get(f"/o/{org}/tickets").status_code == 200 for org, b in browsers.items()]

    before = {u.id: u.session_version for u in session.scalars(select(User))}
    runner = app.test_cli_runner()
    declined = runner.invoke(args=["sessions", "revoke", "--all"], input="n\n")
    assert declined.exit_code != 0 and sessions_alive() == [True, True]

    result = runner.invoke(args=["sessions", "revoke", "--all", "--yes"])
    assert result.exit_code == 0, result.output
    assert f"ended every session of {len(before)} users" in result.output
    assert "SECRET_KEY_FALLBACKS" in result.output
    assert sessions_alive() == [False, False]
    session.expire_all()
    after = {u.id: u.session_version for u in session.scalars(select(User))}
    assert after == {uid: version + 1 for uid, version in before.items()}
    [event] = site_events(session, "auth.sessions_revoked")
    assert event.data == {"source": "cli", "scope": "all", "count": len(before)}
    assert as_user(app, "agent@alpha.test", password)  # logging in again works


@pytest.mark.parametrize("args", [[], ["--all", "--email", "agent@alpha.test"]])
def test_cli_revoke_needs_exactly_one_target(app: Flask, world, args: list[str]) -> None:
    result = app.test_cli_runner().invoke(args=["sessions", "revoke", *args])
    assert result.exit_code == 2 and "exactly one of --email E or --all" in result.output


def test_cli_help_names_the_secret_key_lever(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["sessions", "revoke", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "SECRET_KEY_FALLBACKS" in text and "--all" in text and "--email" in text


def test_secret_key_fallbacks_keep_old_cookies_for_a_grace_period(
    settings: Settings, world, password: str
) -> None:
    old, new = "old-" + "o" * 40, "new-" + "n" * 40
    with app_with(settings, secret_key=old) as before:
        browser = as_user(before, "agent@alpha.test", password)
        cookie = browser.client.get_cookie("session")
        assert cookie is not None
    with app_with(settings, secret_key=new, secret_key_fallbacks=f" {old} ,") as grace:
        client = grace.test_client()
        client.set_cookie("session", cookie.value)
        assert client.get(TICKETS).status_code == 200
        assert grace.config["SECRET_KEY_FALLBACKS"] == [old]
    with app_with(settings, secret_key=new) as cut:
        client = cut.test_client()
        client.set_cookie("session", cookie.value)
        response = client.get(TICKETS)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def _production(**kw: object) -> Settings:
    base: dict[str, object] = {
        "env": "production", "secret_key": "s" * 40, "clamd_url": "tcp://127.0.0.1:3310",
        "database_url": "postgresql+psycopg://x/y", "redis_url": "redis://x",
    }  # fmt: skip
    return Settings(**{**base, **kw})  # type: ignore[arg-type]


def test_secret_key_fallbacks_are_validated_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _production(secret_key_fallbacks="f" * 32 + "," + "g" * 40).validate()
    for bad in ("short", "dev-insecure-change-me", "f" * 40 + ",tiny"):
        with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS"):
            _production(secret_key_fallbacks=bad).validate()
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "a" * 32 + ", " + "b" * 32)
    assert Settings.from_env().flask_config()["SECRET_KEY_FALLBACKS"] == ["a" * 32, "b" * 32]
