"""The requester's ticket page reached through an emailed link: conversation, reply,
"this solved my problem", reopen on reply — with and without HTMX — and the same actions
for logged-in members and through the API."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk.db import utcnow
from helpdesk.models import AccessToken, Comment, OutboxEvent, Ticket, TicketEvent
from helpdesk.services import access_links, api_tokens, tickets
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser, as_user
from tests.factories import make_ticket

XSS_SUBJECT = "<script>alert(1)</script> {{7*7}}"


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def fresh(session: Session, model: Any, **where: Any) -> list[Any]:
    """Rows of any org, read anew from the database."""
    session.expire_all()
    with unscoped(session):
        rows = list(session.scalars(select(model).filter_by(**where).order_by(model.id)).unique())
    session.rollback()
    return rows


def status_of(session: Session, ticket: Ticket) -> str:
    (row,) = fresh(session, Ticket, id=ticket.id)
    return str(row.status)


def set_status(session: Session, ticket: Ticket, status: str) -> None:
    with tenant_scope(session, ticket.org_id):
        session.execute(update(Ticket).where(Ticket.id == ticket.id).values(status=status))
        session.commit()


@pytest.fixture
def ticket(session: Session, world: dict[str, Any]) -> Ticket:
    alpha = world["alpha"]
    opened = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user,
                         subject=XSS_SUBJECT, body="My **screen** is blank")  # fmt: skip
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["agent"], opened.number, "Try [this](javascript:x)")
        tickets.add_comment(session, alpha["agent"], opened.number, "NOTE-SECRET", internal=True)
    return opened


@pytest.fixture
def holder(app: Flask, session: Session, ticket: Ticket) -> Browser:
    """A browser (not logged in) that opened an emailed link to the ticket."""
    with app.app_context(), tenant_scope(session, ticket.org_id):
        _row, token = access_links.mint_link(session, ticket)
        session.commit()
    browser = Browser(app.test_client())
    assert browser.get(f"/t/{token}").status_code == 303
    assert browser.get("/r/alpha/1").status_code == 200  # remembers the page's CSRF token
    return browser


def test_page_shows_the_public_conversation_status_and_actions(holder: Browser) -> None:
    page = holder.get("/r/alpha/1")
    body = text(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}}" in body and "<script>alert" not in body
    assert "<strong>screen</strong>" in body
    assert "javascript:" not in body  # the one sanitizer made the link harmless
    assert "NOTE-SECRET" not in body and "internal" not in body
    assert 'class="badge status-open"' in body  # the agent's reply opened it
    assert "This solved my problem" in body and 'name="csrf_token"' in body
    assert 'action="/r/alpha/1/comments"' in body and 'hx-post="/r/alpha/1/comments"' in body
    assert "/o/alpha" not in body  # no agent links, no org navigation for a link holder
    assert "HX-Request" in page.headers["Vary"]


def test_reply_without_javascript_and_use_is_recorded(
    holder: Browser, session: Session, ticket: Ticket, world: dict[str, Any]
) -> None:
    response = holder.post("/r/alpha/1/comments", {"body": "Still **blank**"})
    assert response.status_code == 303 and response.headers["Location"] == "/r/alpha/1"
    last = fresh(session, Comment, ticket_id=ticket.id)[-1]
    assert (last.body_md, last.internal, last.channel) == ("Still **blank**", False, "web")
    assert last.author_id == world["alpha"]["requester"].user_id
    assert "<strong>blank</strong>" in text(holder.get("/r/alpha/1"))
    (token,) = fresh(session, AccessToken)
    assert token.last_used_at is not None  # acted with the link (a POST, never a GET)


def test_reply_with_htmx_returns_the_fragment_and_a_toast(holder: Browser) -> None:
    response = holder.post("/r/alpha/1/comments", {"body": "Via htmx"}, htmx=True)
    assert response.status_code == 200
    body = text(response)
    assert body.lstrip().startswith('<div id="requester-ticket">') and "<html" not in body
    assert "Via htmx" in body and "Reply sent" in response.headers["HX-Trigger"]


def test_empty_reply_is_422_keeps_nothing_and_records_no_use(
    holder: Browser, session: Session, ticket: Ticket
) -> None:
    before = len(fresh(session, Comment, ticket_id=ticket.id))
    for htmx in (False, True):
        response = holder.post("/r/alpha/1/comments", {"body": "   "}, htmx=htmx)
        assert response.status_code == 422
        assert "write a message" in text(response)
    assert len(fresh(session, Comment, ticket_id=ticket.id)) == before
    (token,) = fresh(session, AccessToken)
    assert token.last_used_at is None


def test_reply_and_solve_need_the_csrf_token(
    holder: Browser, session: Session, ticket: Ticket
) -> None:
    before = len(fresh(session, Comment, ticket_id=ticket.id))
    assert holder.post("/r/alpha/1/comments", {"body": "x"}, csrf=False).status_code == 400
    assert holder.post("/r/alpha/1/solve", {}, csrf=False).status_code == 400
    assert len(fresh(session, Comment, ticket_id=ticket.id)) == before
    assert status_of(session, ticket) == "open"


def test_reply_after_someone_else_wrote_is_409_and_keeps_the_text(
    holder: Browser, session: Session, ticket: Ticket, world: dict[str, Any]
) -> None:
    page = text(holder.get("/r/alpha/1"))
    seen = page.split('name="seen_up_to" value="')[1].split('"')[0]
    with tenant_scope(session, ticket.org_id):
        tickets.add_comment(session, world["alpha"]["agent"], ticket.number, "Meanwhile…")
    response = holder.post("/r/alpha/1/comments", {"body": "My draft", "seen_up_to": seen})
    assert response.status_code == 409
    assert "My draft" in text(response) and "Meanwhile…" in text(response)


def test_this_solved_my_problem_records_history_and_an_outbox_event(
    holder: Browser, session: Session, ticket: Ticket, world: dict[str, Any]
) -> None:
    response = holder.post("/r/alpha/1/solve", {})
    assert response.status_code == 303 and response.headers["Location"] == "/r/alpha/1"
    assert status_of(session, ticket) == "solved"
    (event,) = fresh(session, TicketEvent, ticket_id=ticket.id, field="status", new_value="solved")
    assert (event.old_value, event.actor_id) == ("open", world["alpha"]["requester"].user_id)
    outbox = fresh(session, OutboxEvent, kind="ticket.updated", ticket_id=ticket.id)[-1]
    assert outbox.payload["changes"] == {"status": ["open", "solved"]}
    assert outbox.actor_id == world["alpha"]["requester"].user_id
    page = text(holder.get("/r/alpha/1"))
    assert "marked as solved" in page and "This solved my problem" not in page
    again = holder.post("/r/alpha/1/solve", {}, htmx=True)  # a double click changes nothing
    assert again.status_code == 200 and "already solved" in again.headers["HX-Trigger"]
    assert len(fresh(session, TicketEvent, ticket_id=ticket.id, new_value="solved")) == 1


def test_solve_with_htmx_swaps_the_status(holder: Browser) -> None:
    response = holder.post("/r/alpha/1/solve", {}, htmx=True)
    assert response.status_code == 200
    assert 'class="badge status-solved"' in text(response)
    assert "Marked as solved" in response.headers["HX-Trigger"]


def test_reply_after_solved_reopens_the_ticket(
    holder: Browser, session: Session, ticket: Ticket
) -> None:
    assert holder.post("/r/alpha/1/solve", {}).status_code == 303
    assert holder.post("/r/alpha/1/comments", {"body": "It broke again"}).status_code == 303
    assert status_of(session, ticket) == "open"
    assert 'class="badge status-open"' in text(holder.get("/r/alpha/1"))


def test_a_closed_ticket_cannot_be_solved(
    holder: Browser, session: Session, ticket: Ticket
) -> None:
    set_status(session, ticket, "closed")
    response = holder.post("/r/alpha/1/solve", {})
    assert response.status_code == 422 and "this ticket is closed" in text(response)
    assert status_of(session, ticket) == "closed"
    assert "This solved my problem" not in text(holder.get("/r/alpha/1"))


def test_logged_in_members_use_their_own_access(
    app: Flask, ticket: Ticket, session: Session, password: str
) -> None:
    requester = as_user(app, "requester@alpha.test", password)
    page = requester.get("/r/alpha/1")
    assert page.status_code == 200 and "NOTE-SECRET" not in text(page)
    assert requester.post("/r/alpha/1/comments", {"body": "from my account"}).status_code == 303
    agent = as_user(app, "agent@alpha.test", password)
    moved = agent.get("/r/alpha/1")  # staff read the agent page, notes and all
    assert moved.status_code == 303 and moved.headers["Location"] == "/o/alpha/tickets/1"
    for number in ("0", "2147483648", "9" * 30):  # not ticket numbers: 404, never a crash
        assert requester.get(f"/r/alpha/{number}").status_code == 404
        assert requester.post(f"/r/alpha/{number}/solve", {}).status_code == 404
    outsider = as_user(app, "requester@beta.test", password)
    assert outsider.get("/r/alpha/1").status_code == 404
    assert outsider.post("/r/alpha/1/solve", {}).status_code == 404
    assert status_of(session, ticket) == "open"
    assert fresh(session, AccessToken) == []  # no link was involved


def test_anonymous_visitors_are_sent_to_log_in(app: Flask, ticket: Ticket) -> None:
    browser = Browser(app.test_client())
    response = browser.get("/r/alpha/1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=/r/alpha/1"
    assert browser.post("/r/alpha/1/comments", {"body": "hi"}).status_code == 404


def _bearer(session: Session, member: Any) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _row, plaintext = api_tokens.create_token(session, member, "solve test")
    return {"Authorization": f"Bearer {plaintext}"}


def test_api_solve_for_the_requester_and_staff(
    app: Flask, session: Session, world: dict[str, Any], ticket: Ticket
) -> None:
    alpha = world["alpha"]
    other = make_ticket(session, alpha["org"], alpha["agent"], "someone@example.test")
    client = app.test_client()
    requester = _bearer(session, alpha["requester"])
    url = "/api/v1/orgs/alpha/tickets/{}/solve"
    assert client.post(url.format(other.number), headers=requester).status_code == 404
    solved = client.post(url.format(ticket.number), headers=requester)
    assert solved.status_code == 200
    assert solved.json["status"] == "solved" and solved.json["number"] == ticket.number
    assert client.post(url.format(ticket.number), headers=requester).json["status"] == "solved"
    assert client.post(url.format("abc"), headers=requester).status_code == 422
    agent = _bearer(session, alpha["agent"])
    assert client.post(url.format(other.number), headers=agent).json["status"] == "solved"
    set_status(session, ticket, "closed")
    closed = client.post(url.format(ticket.number), headers=requester)
    assert closed.status_code == 422 and "closed" in closed.json["errors"]["status"]
    assert status_of(session, ticket) == "closed"


def test_last_used_at_is_written_by_actions_only(
    holder: Browser, session: Session, ticket: Ticket
) -> None:
    assert holder.get("/r/alpha/1").status_code == 200
    (token,) = fresh(session, AccessToken)
    assert token.last_used_at is None
    started = utcnow()
    assert holder.post("/r/alpha/1/solve", {}).status_code == 303
    (token,) = fresh(session, AccessToken)
    assert token.last_used_at is not None and token.last_used_at >= started
