"""flask commands: seed demo, bootstrap, tokens create."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Comment, Organization, Ticket, User
from helpdesk.tenancy import unscoped


def _counts(session: Session) -> tuple[int, int, int]:
    session.expire_all()
    with unscoped(session):
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(m)) or 0
            for m in (Organization, Ticket, Comment)
        )


def test_seed_demo_is_idempotent(
    app: Flask, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-123")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed", "demo"])
    assert first.exit_code == 0, first.output
    assert "created org demo" in first.output and "admin@demo.test" in first.output
    orgs, tickets, comments = _counts(session)
    assert orgs == 2 and tickets == 100 and comments >= 100
    second = runner.invoke(args=["seed", "demo"])
    assert second.exit_code == 0 and "already exists" in second.output
    assert _counts(session) == (orgs, tickets, comments)
    with unscoped(session):
        statuses = set(session.scalars(select(Ticket.status)))
        priorities = set(session.scalars(select(Ticket.priority)))
    assert len(statuses) >= 4 and len(priorities) == 4


def test_seed_demo_prints_a_random_password_once(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    result = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code == 0
    line = next(x for x in result.output.splitlines() if x.startswith("demo password:"))
    password = line.split(":", 1)[1].strip()
    assert len(password) >= 16
    client = app.test_client()
    client.get("/login")
    from tests.browser import Browser

    browser = Browser(client)
    assert browser.login("agent@acme.test", password).status_code == 303


def test_seed_demo_refuses_production(app: Flask, session: Session, monkeypatch) -> None:
    monkeypatch.setitem(app.config, "HELPDESK_ENV", "production")
    result = app.test_cli_runner().invoke(args=["seed", "demo"])
    assert result.exit_code != 0 and "production" in result.output
    assert _counts(session) == (0, 0, 0)


def test_bootstrap_creates_once(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    args = ["bootstrap", "--org-slug", "main", "--org-name", "Main", "--admin-email",
            "Boss@Example.test"]  # fmt: skip
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "boss@example.test" in result.output and "password" in result.output
    with unscoped(session):
        user = session.scalar(select(User).where(User.email == "boss@example.test"))
    assert user is not None and user.password_hash and user.password_hash.startswith("$argon2id$")
    again = runner.invoke(args=args)
    assert again.exit_code != 0 and "already exists" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org-slug", "Bad Slug!", "--org-name", "X", "--admin-email", "a@b.test"], "slug"),
        (["--org-slug", "ok", "--org-name", "X", "--admin-email", "nope"], "email"),
    ],
)
def test_bootstrap_bad_input(app: Flask, session: Session, args, message) -> None:
    result = app.test_cli_runner().invoke(args=["bootstrap", *args])
    assert result.exit_code != 0 and message in result.output
    assert _counts(session) == (0, 0, 0)


def test_tokens_create_prints_a_working_token(app: Flask, world) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tokens", "create", "--email", "agent@alpha.test",
                                 "--org", "alpha"])  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    response = app.test_client().get(
        "/api/v1/orgs/alpha/tickets", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    refused = runner.invoke(args=["tokens", "create", "--email", "agent@alpha.test",
                                  "--org", "beta"])  # fmt: skip
    assert refused.exit_code != 0 and "not a member" in refused.output


def test_sessions_end_logs_a_user_out_everywhere(app: Flask, world, password) -> None:
    from tests.browser import Browser

    browser = Browser(app.test_client())
    browser.login("agent@alpha.test", password)
    assert browser.get("/o/alpha/tickets").status_code == 200
    result = app.test_cli_runner().invoke(args=["sessions", "end", "--email", "agent@alpha.test"])
    assert result.exit_code == 0, result.output
    assert browser.get("/o/alpha/tickets").status_code == 302  # back to the login page
    unknown = app.test_cli_runner().invoke(args=["sessions", "end", "--email", "x@y.test"])
    assert unknown.exit_code != 0 and "no such user" in unknown.output
