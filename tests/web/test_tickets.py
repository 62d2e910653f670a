"""Agent and requester ticket pages, with and without HTMX."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Comment, Membership, Ticket, TicketEvent, User
from helpdesk.tenancy import unscoped
from tests.browser import Browser
from tests.factories import make_ticket


def _count(session: Session, model: type) -> int:
    session.expire_all()
    with unscoped(session):
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_agent_opens_ticket_for_new_requester(agent: Browser, session: Session) -> None:
    response = agent.post(
        "/o/alpha/tickets",
        {"subject": "VPN down", "body": "Since **9am**", "priority": "high",
         "requester_email": "New.Person@Example.test", "requester_name": "New Person"},
    )  # fmt: skip
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/o/alpha/tickets/1")
    page = agent.get("/o/alpha/tickets/1").get_data(as_text=True)
    assert "VPN down" in page and "<strong>9am</strong>" in page
    with unscoped(session):
        user = session.scalar(select(User).where(User.email == "new.person@example.test"))
        assert user is not None and user.password_hash is None
        role = session.scalar(select(Membership.role).where(Membership.user_id == user.id))
    assert role == "requester"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("subject", "", "enter a subject"),
        ("subject", "x" * 201, "under 200 characters"),
        ("body", "   ", "write a message"),
        ("priority", "critical", "choose one of"),
        ("requester_email", "not-an-email", "email address"),
        ("requester_name", "n" * 121, "under 120 characters"),
    ],
)
def test_new_ticket_form_errors_keep_input_and_write_nothing(
    agent: Browser, session: Session, field: str, value: str, message: str
) -> None:
    form = {"subject": "Printer", "body": "Jammed", "priority": "normal",
            "requester_email": "r@example.test", field: value}  # fmt: skip
    response = agent.post("/o/alpha/tickets", form)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html
    assert "Jammed" in html or field == "body"  # what the user typed is still there
    assert _count(session, Ticket) == 0 and _count(session, User) == 6


def test_reply_and_internal_note_visibility(
    app: Flask, agent: Browser, world, session: Session, password
) -> None:
    requester = world["alpha"]["requester"].user
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"], requester)
    assert agent.post("/o/alpha/tickets/1/comments", {"body": "Public answer", "internal": "0"}
                      ).status_code == 303  # fmt: skip
    assert agent.post("/o/alpha/tickets/1/comments", {"body": "Secret note", "internal": "1"}
                      ).status_code == 303  # fmt: skip
    agent_view = agent.get("/o/alpha/tickets/1").get_data(as_text=True)
    assert "Public answer" in agent_view and "Secret note" in agent_view
    assert "internal note" in agent_view

    customer = Browser(app.test_client())
    customer.login("requester@alpha.test", password)
    page = customer.get("/o/alpha/tickets/1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Public answer" in html and "Secret note" not in html
    assert 'name="status"' not in html  # no field editing for requesters
    # The requester's reply is public even if they try to mark it internal.
    denied = customer.post("/o/alpha/tickets/1/comments", {"body": "psst", "internal": "1"})
    assert denied.status_code == 422
    assert customer.post("/o/alpha/tickets/1/comments", {"body": "Thanks!"}).status_code == 303


def test_agent_reply_moves_new_ticket_to_open_and_records_event(
    agent: Browser, world, session: Session
) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    agent.post("/o/alpha/tickets/1/comments", {"body": "On it", "internal": "0"})
    agent.post("/o/alpha/tickets/1/comments",
               {"body": "Fixed", "internal": "0", "set_status": "solved"})  # fmt: skip
    with unscoped(session):
        session.expire_all()
        ticket = session.scalar(select(Ticket))
        events = session.scalars(select(TicketEvent).order_by(TicketEvent.id)).all()
    assert ticket is not None and ticket.status == "solved"
    assert [(e.field, e.old_value, e.new_value) for e in events] == [
        ("status", "new", "open"),
        ("status", "open", "solved"),
    ]


def test_htmx_reply_returns_the_conversation_fragment(agent: Browser, world, session) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    response = agent.post("/o/alpha/tickets/1/comments",
                          {"body": "Via *htmx*", "internal": "0"}, htmx=True)  # fmt: skip
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<html" not in html and 'id="conversation"' in html and "<em>htmx</em>" in html
    assert response.headers["HX-Trigger"] == '{"toast": "Reply sent"}'
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_reply_error_is_422_fragment_and_keeps_text(agent: Browser, world, session) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    response = agent.post("/o/alpha/tickets/1/comments", {"body": "  "}, htmx=True)
    assert response.status_code == 422
    assert "write a message" in response.get_data(as_text=True)
    assert _count(session, Comment) == 1


def test_field_changes_record_one_event_each(agent: Browser, world, session: Session) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    response = agent.post(
        "/o/alpha/tickets/1/fields",
        {"status": "pending", "priority": "urgent", "assignee_email": "admin@alpha.test",
         "tags": "VIP, billing"}, htmx=True,
    )  # fmt: skip
    assert response.status_code == 200
    assert 'id="ticket-side"' in response.get_data(as_text=True)
    with unscoped(session):
        session.expire_all()
        changes = {e.field: (e.old_value, e.new_value) for e in session.scalars(
            select(TicketEvent))}  # fmt: skip
    assert changes == {
        "status": ("new", "pending"),
        "priority": ("normal", "urgent"),
        "assignee": (None, "admin@alpha.test"),
        "tags": ("", "vip, billing"),
    }
    # Posting the same values again changes nothing and records nothing.
    agent.post("/o/alpha/tickets/1/fields", {"status": "pending", "priority": "urgent",
               "assignee_email": "admin@alpha.test", "tags": "vip, billing"})  # fmt: skip
    assert _count(session, TicketEvent) == 4


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"assignee_email": "agent@beta.test"}, "no agent with that email"),
        ({"assignee_email": "requester@alpha.test"}, "no agent with that email"),
        ({"status": "exploded"}, "choose one of"),
        ({"tags": "<script>"}, "tags are"),
    ],
)
def test_field_change_errors(agent: Browser, world, session: Session, form, message) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    response = agent.post("/o/alpha/tickets/1/fields", {"priority": "high", **form})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    with unscoped(session):
        session.expire_all()
        assert session.scalar(select(Ticket.priority)) == "normal"  # nothing partial
    assert _count(session, TicketEvent) == 0


def test_requester_cannot_change_fields_or_see_others(
    app: Flask, world, session: Session, password
) -> None:
    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    make_ticket(session, org, agent, world["alpha"]["requester"].user)
    make_ticket(session, org, agent, "someone.else@example.test", subject="Other person")
    customer = Browser(app.test_client())
    customer.login("requester@alpha.test", password)
    listing = customer.get("/o/alpha/tickets").get_data(as_text=True)
    assert "Printer on fire" in listing and "Other person" not in listing
    assert customer.get("/o/alpha/tickets/2").status_code == 404
    assert customer.post("/o/alpha/tickets/2/comments", {"body": "hi"}).status_code == 404
    assert customer.post("/o/alpha/tickets/1/fields", {"status": "closed"}).status_code == 403


def test_hostile_subject_and_body_render_inert(agent: Browser, world, session: Session) -> None:
    subject = "<img src=x onerror=alert(1)>{{7*7}}"
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"], subject=subject,
                body="<script>alert(1)</script> [x](javascript:alert(1))")  # fmt: skip
    for url in ("/o/alpha/tickets", "/o/alpha/tickets/1"):
        html = agent.get(url).get_data(as_text=True)
        assert "<img src=x" not in html and "<script>alert" not in html
        assert "&lt;img src=x onerror=alert(1)&gt;{{7*7}}" in html
        assert "javascript:" not in html and "49" not in html.split("<main>")[1][:50]


def test_security_headers_on_pages(agent: Browser) -> None:
    response = agent.get("/o/alpha/tickets")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_work_as_plain_html(agent: Browser, world, session: Session) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    pages = {
        "/o/alpha/tickets": 'method="get"',
        "/o/alpha/tickets/new": 'method="post"',
        "/o/alpha/tickets/1": 'method="post"',
        "/o/alpha/profile": 'method="post"',
    }
    for url, form in pages.items():
        response = agent.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert html.startswith("<!doctype html>"), url
        assert form in html, url  # a real form: the page works with JavaScript off


def test_control_characters_never_reach_the_database_as_errors(
    agent: Browser, world, session: Session
) -> None:
    """Regression: a NUL byte in a one-line field was a 500 (PostgreSQL refuses NUL)."""
    response = agent.post(
        "/o/alpha/tickets",
        {"subject": "Hello\x00World\u202e", "body": "Body\x00text", "priority": "normal",
         "requester_email": "nul@example.test", "requester_name": "Ann\x00e"},
    )  # fmt: skip
    assert response.status_code == 303
    with unscoped(session):
        session.expire_all()
        ticket = session.scalar(select(Ticket))
        comment = session.scalar(select(Comment))
        user = session.scalar(select(User).where(User.email == "nul@example.test"))
    assert ticket is not None and ticket.subject == "Hello World"
    assert comment is not None and comment.body_md == "Bodytext"
    assert user is not None and user.name == "Ann e"
    bad_email = agent.post("/o/alpha/tickets", {"subject": "x", "body": "y",
                           "requester_email": "a\x00b@example.test"})  # fmt: skip
    assert bad_email.status_code == 422
    token = agent.post("/o/alpha/profile/tokens", {"name": "ci\x00bot"})
    assert token.status_code == 201
    assert agent.get("/o/alpha/tickets?q=hello%00world").status_code == 200


def test_preview_renders_like_a_saved_reply_and_saves_nothing(
    agent: Browser, world, session: Session
) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    body = "**bold** <script>alert(1)</script> [x](javascript:alert(1))"
    response = agent.post("/o/alpha/preview", {"body": body}, htmx=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<strong>bold</strong>" in html
    assert "<script>" not in html and "javascript:" not in html and "hx-disable" in html
    assert _count(session, Comment) == 1


def test_requester_card_lists_their_other_tickets(
    app: Flask, agent: Browser, world, session: Session, password
) -> None:
    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    requester = world["alpha"]["requester"].user
    make_ticket(session, org, member, requester, subject="Earlier problem")
    make_ticket(session, org, member, requester, subject="Current problem")
    make_ticket(session, org, member, "someone@example.test", subject="Not theirs")
    page = agent.get("/o/alpha/tickets/2").get_data(as_text=True)
    card = page.split('class="requester-tickets"', 1)[1].split("</ul>", 1)[0]
    assert "Earlier problem" in card and "Not theirs" not in card and "Current" not in card
    customer = Browser(app.test_client())
    customer.login("requester@alpha.test", password)
    assert "requester-tickets" not in customer.get("/o/alpha/tickets/2").get_data(as_text=True)


def test_a_number_beyond_the_column_range_is_404_not_500(agent, client, world) -> None:
    """Regression: a huge number reached PostgreSQL as an out-of-range integer (500)."""
    assert agent.get("/o/alpha/tickets/99999999999999999999999").status_code == 404
    assert agent.get("/o/alpha/tickets/2147483648").status_code == 404
