"""Emailed ticket links: opening, the token-free redirect, expiry, revocation, tampering,
the rate limit, requesters who lost access, and what a link grant never opens."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from rq import Queue
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.db import utcnow
from helpdesk.models import AccessToken, Comment, Membership, Role, Ticket, User
from helpdesk.services import access_links, api_tokens, tickets
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser, as_user
from tests.factories import make_member, make_ticket
from tests.tenancy.matrix import build_url, inventory, to_login
from tests.tenancy.snapshot import diff, snapshot

NOT_VALID = "This link is not valid. Ask the help desk for a new link."
EXPIRED = "This link has expired — we&#39;ve emailed you a fresh one."
REVOKED = "This link was revoked — ask for a new one."


def mint(app: Flask, session: Session, ticket: Ticket, days_ago: float = 0) -> str:
    """A link to the ticket for its requester, minted `days_ago` (an explicit clock)."""
    with app.app_context(), tenant_scope(session, ticket.org_id):
        now = utcnow() - timedelta(days=days_ago)
        _row, plaintext = access_links.mint_link(session, ticket, now)
        session.commit()
    return plaintext


def fresh_link_jobs(app: Flask) -> list[tuple[Any, ...]]:
    queue = Queue("notify", connection=app.extensions["helpdesk.redis"])
    return [tuple(j.args) for j in queue.get_jobs() if j.func_name == "jobs.links.send_fresh_link"]


def tokens(session: Session) -> list[AccessToken]:
    session.expire_all()
    with unscoped(session):
        rows = list(session.scalars(select(AccessToken).order_by(AccessToken.id)))
    session.rollback()
    return rows


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def alpha_ticket(session: Session, world: dict[str, Any]) -> Ticket:
    alpha = world["alpha"]
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user,
                         subject="Printer on fire", body="Smoke everywhere")  # fmt: skip
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["agent"], ticket.number, "Extinguisher is coming.")
        tickets.add_comment(session, alpha["agent"], ticket.number, "NOTE-SECRET", internal=True)
    return ticket


def test_link_redirects_to_a_token_free_page_without_referrer(
    app: Flask, session: Session, alpha_ticket: Ticket
) -> None:
    token = mint(app, session, alpha_ticket)
    browser = Browser(app.test_client())
    opened = browser.get(f"/t/{token}")
    assert opened.status_code == 303
    location = opened.headers["Location"]
    assert location == "/r/alpha/1" and token not in location
    assert opened.headers["Referrer-Policy"] == "no-referrer"
    assert opened.headers["Cache-Control"] == "no-store"
    page = browser.get(location)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    body = text(page)
    assert "Printer on fire" in body and "Extinguisher is coming." in body
    assert "NOTE-SECRET" not in body and "internal note" not in body
    assert token not in body


def test_opening_a_link_writes_nothing_to_the_database(
    app: Flask, session: Session, alpha_ticket: Ticket
) -> None:
    """Mail scanners fetch links: GET and HEAD change nothing, not even last_used_at."""
    token = mint(app, session, alpha_ticket)
    before = snapshot(session)
    browser = Browser(app.test_client())
    assert browser.client.head(f"/t/{token}").status_code == 303
    for _ in range(3):
        assert browser.get(f"/t/{token}").status_code == 303
        assert browser.get("/r/alpha/1").status_code == 200
    assert diff(before, snapshot(session)) == ""
    (row,) = tokens(session)
    assert row.last_used_at is None and row.revoked_at is None


def test_token_is_stored_only_as_its_hash(
    app: Flask, session: Session, alpha_ticket: Ticket
) -> None:
    token = mint(app, session, alpha_ticket)
    (row,) = tokens(session)
    assert len(token) == 32  # token_urlsafe(24): 192 random bits
    assert row.token_hash == access_links.hash_token(token) and token not in row.token_hash
    assert row.expires_at - row.created_at == timedelta(days=30)  # ACCESS_LINK_DAYS
    assert (row.ticket_id, row.requester_id) == (alpha_ticket.id, alpha_ticket.requester_id)


def _tampered(token: str) -> list[str]:
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    return [flipped, token[1:] + token[0], token[:-1], token + "A", token.upper(),
            " " + token[1:], "%20", "-" * 32, access_links.hash_token(token), "a" * 5000,
            "ä" * 32, "%00" * 11, token[:16] + "%2F" + token[17:], token + "/",
            f"{token}/../{token}"]  # fmt: skip


def test_tampered_or_unknown_links_get_404_with_a_clear_page(
    app: Flask, session: Session, alpha_ticket: Ticket
) -> None:
    token = mint(app, session, alpha_ticket)
    browser = Browser(app.test_client())
    for bad in _tampered(token):
        response = browser.get(f"/t/{bad}")
        assert response.status_code == 404, bad
        assert NOT_VALID in text(response)
        assert response.headers["Referrer-Policy"] == "no-referrer"
    assert browser.get("/r/alpha/1").status_code == 302  # no grant was given: log in
    assert fresh_link_jobs(app) == []


def test_expired_link_is_410_and_queues_one_fresh_link_per_hour(
    app: Flask, session: Session, alpha_ticket: Ticket
) -> None:
    token = mint(app, session, alpha_ticket, days_ago=31)
    browser = Browser(app.test_client())
    first = browser.get(f"/t/{token}")
    assert first.status_code == 410 and EXPIRED in text(first)
    again = browser.get(f"/t/{token}")
    assert again.status_code == 410 and EXPIRED in text(again)
    ids = (alpha_ticket.org_id, alpha_ticket.id, alpha_ticket.requester_id)
    assert fresh_link_jobs(app) == [ids]  # once per hour, however often it is opened
    redis = app.extensions["helpdesk.redis"]
    key = "helpdesk:fresh-link:{}:{}:{}".format(*ids)
    assert 3500 < redis.ttl(key) <= 3600
    redis.delete(key)  # an hour later
    assert browser.get(f"/t/{token}").status_code == 410
    assert fresh_link_jobs(app) == [ids, ids]
    assert browser.get("/r/alpha/1").status_code == 302  # never a grant


def test_link_just_before_and_after_its_expiry(
    app: Flask, session: Session, alpha_ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grant is re-checked on every request: expiry takes effect at once."""
    token = mint(app, session, alpha_ticket)
    (row,) = tokens(session)
    browser = Browser(app.test_client())
    monkeypatch.setattr(access_links, "utcnow", lambda: row.expires_at - timedelta(seconds=1))
    assert browser.get(f"/t/{token}").status_code == 303
    assert browser.get("/r/alpha/1").status_code == 200
    monkeypatch.setattr(access_links, "utcnow", lambda: row.expires_at)
    expired = browser.get("/r/alpha/1")
    assert expired.status_code == 410 and EXPIRED in text(expired)
    assert len(fresh_link_jobs(app)) == 1
    assert browser.get("/r/alpha/1").status_code == 302  # the dead grant was dropped


def test_agent_revokes_links_with_the_button(
    app: Flask, session: Session, alpha_ticket: Ticket, password: str
) -> None:
    first, second = mint(app, session, alpha_ticket), mint(app, session, alpha_ticket)
    requester = Browser(app.test_client())
    assert requester.get(f"/t/{first}").status_code == 303
    assert requester.get("/r/alpha/1").status_code == 200
    agent = as_user(app, "agent@alpha.test", password)
    page = text(agent.get("/o/alpha/tickets/1"))
    assert "Revoke requester links" in page and "2 emailed links still open" in page
    response = agent.post("/o/alpha/tickets/1/revoke-links", {})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/o/alpha/tickets/1")
    assert all(t.revoked_at is not None for t in tokens(session))
    revoked = requester.get("/r/alpha/1")  # the grant dies with its token, at once
    assert revoked.status_code == 410 and REVOKED in text(revoked)
    for token in (first, second):
        again = requester.get(f"/t/{token}")
        assert again.status_code == 410 and REVOKED in text(again)
    assert fresh_link_jobs(app) == []  # revoked links are never re-sent automatically
    htmx = agent.post("/o/alpha/tickets/1/revoke-links", {}, htmx=True)
    assert htmx.status_code == 200 and "No links to revoke" in htmx.headers["HX-Trigger"]
    assert 'id="ticket-side"' in text(htmx) and "0 emailed links" in text(htmx)


def test_revoke_is_for_staff_only(
    app: Flask, session: Session, world: dict[str, Any], alpha_ticket: Ticket, password: str
) -> None:
    mint(app, session, alpha_ticket)
    requester = as_user(app, "requester@alpha.test", password)
    assert requester.post("/o/alpha/tickets/1/revoke-links", {}).status_code == 403
    beta_agent = as_user(app, "agent@beta.test", password)
    assert beta_agent.post("/o/alpha/tickets/1/revoke-links", {}).status_code == 404
    assert all(t.revoked_at is None for t in tokens(session))


def _bearer(session: Session, member: Membership) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _row, plaintext = api_tokens.create_token(session, member, "links test")
    return {"Authorization": f"Bearer {plaintext}"}


def test_api_revokes_links(
    app: Flask, session: Session, world: dict[str, Any], alpha_ticket: Ticket
) -> None:
    token = mint(app, session, alpha_ticket)
    mint(app, session, alpha_ticket)
    client = app.test_client()
    url = "/api/v1/orgs/alpha/tickets/1/revoke-links"
    denied = client.post(url, headers=_bearer(session, world["alpha"]["requester"]))
    assert denied.status_code == 403 and "revoke requester links" in denied.json["detail"]
    agent = _bearer(session, world["alpha"]["agent"])
    missing = client.post("/api/v1/orgs/alpha/tickets/99/revoke-links", headers=agent)
    assert missing.status_code == 404
    assert client.post(url, headers=agent).json == {"revoked": 2}
    assert client.post(url, headers=agent).json == {"revoked": 0}
    assert Browser(app.test_client()).get(f"/t/{token}").status_code == 410


def test_link_lookups_are_rate_limited_per_client_address(
    app: Flask, session: Session, alpha_ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LINK_LIMIT_IP", "3 per minute")
    token = mint(app, session, alpha_ticket)
    client = app.test_client()
    for i in range(3):
        assert client.get(f"/t/{'x' * 31}{i}").status_code == 404
    blocked = client.get(f"/t/{token}")  # even a good link waits
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many attempts" in text(blocked)
    assert client.head(f"/t/{token}").status_code == 429
    other = app.test_client()
    other.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert other.get(f"/t/{token}").status_code == 303


def test_link_lookups_fail_closed_when_redis_is_down(settings: Settings) -> None:
    broken = create_app(Settings(**{**settings.__dict__, "redis_url": "redis://127.0.0.1:1/0"}))
    response = broken.test_client().get(f"/t/{'A' * 32}")
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"
    broken.extensions["helpdesk.engine"].dispose()


def _set_user_active(session: Session, user_id: int, active: bool) -> None:
    session.execute(update(User).where(User.id == user_id).values(active=active))
    session.commit()


@pytest.mark.parametrize("change", ["deactivated", "left the org", "became staff"])
def test_link_stops_working_when_the_requester_loses_access(
    app: Flask, session: Session, world: dict[str, Any], alpha_ticket: Ticket, change: str
) -> None:
    token = mint(app, session, alpha_ticket)
    browser = Browser(app.test_client())
    assert browser.get(f"/t/{token}").status_code == 303
    requester = world["alpha"]["requester"]
    with tenant_scope(session, requester.org_id):
        if change == "deactivated":
            _set_user_active(session, requester.user_id, False)
        elif change == "left the org":
            session.execute(delete(Membership).where(Membership.id == requester.id))
            session.commit()
        else:
            session.execute(
                update(Membership).where(Membership.id == requester.id).values(role="agent")
            )
            session.commit()
    gone = browser.get("/r/alpha/1")
    assert gone.status_code == 404 and NOT_VALID in text(gone)
    assert browser.post("/r/alpha/1/comments", {"body": "still here?"}).status_code == 404
    again = browser.get(f"/t/{token}")
    assert again.status_code == 404 and NOT_VALID in text(again)
    assert fresh_link_jobs(app) == []


def test_a_grant_never_reaches_another_ticket(
    app: Flask, session: Session, world: dict[str, Any], alpha_ticket: Ticket
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    other = make_member(session, alpha["org"], Role.REQUESTER, "other@alpha.test")
    make_ticket(session, alpha["org"], alpha["agent"], other.user, subject="OTHER-SUBJECT")
    make_ticket(session, beta["org"], beta["agent"], beta["requester"].user,
                subject="BETA-SUBJECT")  # fmt: skip
    browser = Browser(app.test_client())
    assert browser.get(f"/t/{mint(app, session, alpha_ticket)}").status_code == 303
    assert browser.get("/r/alpha/1").status_code == 200
    for path in ("/r/alpha/2", "/r/beta/1", "/r/alpha/3", "/r/no-such-org/1"):
        response = browser.get(path)  # the same answer whether the ticket exists or not
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
        assert "SUBJECT" not in text(response)
        for action in ("comments", "solve"):
            posted = browser.post(f"{path}/{action}", {"body": "sneaky"})
            assert posted.status_code == 404, (path, action)
    with unscoped(session):
        bodies = set(session.scalars(select(Comment.body_md)))
        statuses = set(session.scalars(select(Ticket.status).where(Ticket.number != 1)))
    assert "sneaky" not in bodies and statuses == {"new"}


def test_a_beta_link_does_not_open_alphas_ticket_with_the_same_number(
    app: Flask, session: Session, world: dict[str, Any], alpha_ticket: Ticket
) -> None:
    beta = world["beta"]
    beta_ticket = make_ticket(session, beta["org"], beta["agent"], beta["requester"].user,
                              subject="BETA-SUBJECT")  # fmt: skip
    browser = Browser(app.test_client())
    opened = browser.get(f"/t/{mint(app, session, beta_ticket)}")
    assert opened.headers["Location"] == "/r/beta/1"
    assert "BETA-SUBJECT" in text(browser.get("/r/beta/1"))
    alpha_page = browser.get("/r/alpha/1")
    assert alpha_page.status_code == 302 and "Printer on fire" not in text(alpha_page)


def test_the_grant_is_not_a_login(
    app: Flask, session: Session, world: dict[str, Any], alpha_ticket: Ticket
) -> None:
    """Every org route (pages, forms, API) treats a link holder as logged out."""
    browser = Browser(app.test_client())
    assert browser.get(f"/t/{mint(app, session, alpha_ticket)}").status_code == 303
    assert browser.get("/r/alpha/1").status_code == 200
    values = {"org_slug": "alpha", "number": 1, "token_id": 1, "view_id": 1, "canned_id": 1,
              "priority": "high", "calendar_id": 1, "webhook_id": 1, "delivery_id": 1,
              "attachment_id": 1}  # fmt: skip
    cases, _problems = inventory(app)
    checked = 0
    before = snapshot(session)
    for case in cases:
        if case.rule.rule.startswith("/r/"):
            continue
        url = build_url(app, case, values)
        if case.api:
            response = browser.client.open(url, method=case.method, json={})
            assert response.status_code == 401, case.label
        else:
            csrf = {"csrf_token": browser.csrf or ""}  # a real form: only the login is missing
            response = browser.client.open(url, method=case.method, data=csrf)
            problem = to_login(case, response)
            assert problem is None and response.status_code != 200, (case.label, problem)
        checked += 1
    assert checked > 40
    assert diff(before, snapshot(session)) == ""
    with unscoped(session):
        assert session.scalar(select(func.count()).select_from(Comment)) == 3
