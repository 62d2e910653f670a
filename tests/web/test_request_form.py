"""The public request form (/o/<slug>/request) and the "My tickets" label for requesters.

Strangers use the form: these tests check what it does with a submission; what it must never
do (bots, blocked accounts, bad input, floods) is in test_request_form_guards.
"""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.models import Comment, Membership, OutboxEvent, Ticket, User
from helpdesk.services import orgs, public_requests
from helpdesk.services.public_requests import PublicRequest
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser, as_user
from tests.factories import make_org
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    SmtpSink,
    _smtp,
    _smtp_server,
    notify_settings,
    run_jobs,
)
from tests.web.request_form_helpers import (
    FORM,
    THANKS,
    THANKS_TEXT,
    everything,
    normalized,
    only_ticket,
    submit,
)

# --- the page ------------------------------------------------------------------------------------


def test_form_names_the_org_and_carries_csrf_and_a_hidden_honeypot(browser: Browser, world) -> None:
    page = browser.get(FORM)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Contact Alpha</h1>" in html
    assert 'name="csrf_token"' in html
    for field in ("name", "email", "subject", "description"):
        assert f'name="{field}"' in html
    honeypot = re.search(r'<div class="visually-hidden">\s*<label>Leave this empty <input ([^>]*)>',
                         html)  # fmt: skip
    assert honeypot, html
    assert 'name="website"' in honeypot.group(1)
    assert 'autocomplete="off"' in honeypot.group(1) and 'tabindex="-1"' in honeypot.group(1)
    # A stranger gets no member navigation and no other org data.
    assert "/o/alpha/tickets" not in html and "@alpha.test" not in html


def test_org_name_is_escaped(browser: Browser, session: Session) -> None:
    make_org(session, "acme", name='<img src=x onerror="alert(1)"> Acme')
    html = browser.get("/o/acme/request").get_data(as_text=True)
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; Acme" in html


def test_unknown_org_is_404_everywhere(browser: Browser, world, session: Session) -> None:
    before = everything(session)
    for path in ("/o/nope/request", "/o/nope/request/thanks", "/o/Alpha/request", "/o/-/request"):
        response = browser.get(path)
        assert response.status_code == 404, path
        assert "no request form at this address" in response.get_data(as_text=True)
    posted = submit(browser, "/o/nope/request")
    assert posted.status_code == 404
    assert everything(session) == before


# --- accepted submissions ----------------------------------------------------------------------


def test_new_address_gets_a_user_a_requester_membership_and_a_ticket(
    browser: Browser, world, session: Session
) -> None:
    response = submit(browser)
    assert response.status_code == 303
    assert response.headers["Location"] == THANKS
    thanks = browser.get(THANKS)
    assert thanks.status_code == 200
    body = thanks.get_data(as_text=True)
    assert THANKS_TEXT in body and "Alpha" in body
    assert "#1" not in body and "pat@example.test" not in body

    ticket = only_ticket(session)
    alpha = world["alpha"]["org"]
    with unscoped(session):
        user = session.scalars(select(User).where(User.email == "pat@example.test")).one()
        member = session.scalars(select(Membership).where(Membership.user_id == user.id)).one()
        comment = session.scalars(select(Comment)).one()
        event = session.scalars(select(OutboxEvent)).one()
    assert user.name == "Pat Doe" and user.active
    assert session.scalar(select(User.password_hash).where(User.id == user.id)) is None
    assert (member.org_id, member.role) == (alpha.id, "requester")
    assert (ticket.org_id, ticket.number, ticket.subject) == (alpha.id, 1, "Cannot print")
    assert (ticket.requester_id, ticket.priority, ticket.status) == (user.id, "normal", "new")
    assert (comment.author_id, comment.channel, comment.internal) == (user.id, "web", False)
    assert comment.body_md == "The printer says *PC LOAD LETTER*."
    assert "<em>PC LOAD LETTER</em>" in comment.body_html
    assert (event.kind, event.org_id, event.ticket_id) == ("ticket.created", alpha.id, ticket.id)
    assert event.actor_id == user.id


def test_known_and_new_addresses_get_identical_answers(
    app: Flask, browser: Browser, world, session: Session
) -> None:
    known = world["alpha"]["requester"].user
    new = submit(browser, email="brand.new@example.test")
    again = submit(Browser(app.test_client()), email=known.email.upper(), name="Someone Else")
    assert normalized(new) == normalized(again)
    assert normalized(browser.get(THANKS)) == normalized(Browser(app.test_client()).get(THANKS))

    with unscoped(session):
        rows = session.execute(select(Ticket.number, Ticket.requester_id).order_by(Ticket.number))
        by_number = dict(rows.all())
        members = session.scalar(
            select(func.count()).select_from(Membership).where(Membership.user_id == known.id)
        )
    assert by_number[2] == known.id
    assert members == 1  # no second membership for the known requester
    session.refresh(known)
    assert known.name == "Requester"  # the form never edits an existing account


def test_member_of_another_org_becomes_a_requester_here_and_keeps_their_other_role(
    browser: Browser, world, session: Session
) -> None:
    beta_agent = world["beta"]["agent"].user
    assert submit(browser, email=beta_agent.email).status_code == 303
    with unscoped(session):
        roles = dict(
            session.execute(
                select(Membership.org_id, Membership.role).where(
                    Membership.user_id == beta_agent.id
                )
            ).all()
        )
    assert roles == {world["beta"]["org"].id: "agent", world["alpha"]["org"].id: "requester"}
    assert only_ticket(session).requester_id == beta_agent.id


def test_staff_address_files_a_ticket_for_them_and_grants_nothing(
    app: Flask, browser: Browser, world, session: Session
) -> None:
    agent = world["alpha"]["agent"].user
    reference = submit(Browser(app.test_client()), email="someone@example.test")
    response = submit(browser, email=agent.email)
    assert normalized(response) == normalized(reference)
    with unscoped(session):
        ticket = session.scalars(select(Ticket).where(Ticket.number == 2)).one()
        roles = session.scalars(select(Membership.role).where(Membership.user_id == agent.id))
        assert list(roles) == ["agent"]
    assert (ticket.requester_id, ticket.priority) == (agent.id, "normal")


def test_requester_gets_the_acknowledgement_email_from_the_worker(
    app: Flask, settings: Settings, smtp_server: tuple[SmtpSink, int], smtp: SmtpSink, world
) -> None:
    mail_app = create_app(notify_settings(settings, smtp_server[1]))
    mail_app.config["TESTING"] = True
    try:
        response = submit(Browser(mail_app.test_client()), email="mailme@example.test")
        assert response.status_code == 303
        assert smtp.mails == []  # nothing is sent inside the request
        with mail_app.app_context():
            run_jobs(mail_app)
        (mail,) = smtp.delivered("mailme@example.test")
        assert "[alpha #1]" in mail.message["Subject"]
        assert "Cannot print" in mail.message["Subject"]
    finally:
        mail_app.extensions["helpdesk.engine"].dispose()


# --- the service directly ----------------------------------------------------------------------


def test_two_submissions_racing_for_one_new_address_both_file_tickets(
    app: Flask, world, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other request inserts the same new user between our lookup and our insert."""
    alpha = world["alpha"]["org"]
    engine = app.extensions["helpdesk.engine"]
    real_find_user = orgs.find_user
    raced: list[bool] = []

    def find_user_then_lose_the_race(s: Session, email: str) -> User | None:
        found = real_find_user(s, email)
        if found is None and not raced:
            raced.append(True)
            with engine.begin() as conn:  # a real competing transaction, committed first
                conn.execute(
                    text("INSERT INTO users (email, name, created_at) VALUES (:e, '', now())"),
                    {"e": email},
                )
        return found

    monkeypatch.setattr(orgs, "find_user", find_user_then_lose_the_race)
    data = PublicRequest("Race", "race@example.test", "Racing", "Two at once")
    ticket = public_requests.submit_request(session, alpha, data)
    assert raced and ticket is not None
    with unscoped(session):
        user = session.scalars(select(User).where(User.email == "race@example.test")).one()
    assert ticket.requester_id == user.id
    with tenant_scope(session, alpha.id):
        assert orgs.find_membership(session, alpha.id, user.id) is not None


# --- "My tickets" ---------------------------------------------------------------------------------


def test_requester_sees_my_tickets_and_agents_still_see_tickets(
    app: Flask, world, password: str
) -> None:
    requester = as_user(app, "requester@alpha.test", password)
    html = requester.get("/o/alpha/tickets").get_data(as_text=True)
    nav = html.split("<nav>", 1)[1].split("</nav>", 1)[0]
    assert ">My tickets</a>" in nav
    assert "<h1>My tickets</h1>" in html and "<title>My tickets · Alpha</title>" in html
    detail_nav = requester.get("/o/alpha/tickets/new").get_data(as_text=True)
    assert ">My tickets</a>" in detail_nav

    for email in ("agent@alpha.test", "admin@alpha.test"):
        staff = as_user(app, email, password)
        page = staff.get("/o/alpha/tickets").get_data(as_text=True)
        assert ">Tickets</a>" in page.split("<nav>", 1)[1].split("</nav>", 1)[0]
        assert "<h1>Tickets</h1>" in page and "My tickets" not in page
