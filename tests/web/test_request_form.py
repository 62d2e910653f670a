"""The public request form (/o/<slug>/request) and the "My tickets" label for requesters.

Strangers use the form, so the tests check what it must never do as much as what it does:
no difference between a known and a new address, nothing created by a bot or a blocked
account, no PII in the logs, limits per client address and per submitted address.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.models import (
    BODY_MAX,
    SUBJECT_MAX,
    Comment,
    Membership,
    OutboxEvent,
    Ticket,
    User,
)
from helpdesk.services import orgs, public_requests
from helpdesk.services.errors import ValidationError
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

FORM = "/o/alpha/request"
THANKS = "/o/alpha/request/thanks"
THANKS_TEXT = "We've emailed you a link to follow your request"
_CSRF = re.compile(r'(name="csrf[-_]token" (?:content|value)=")[^"]*(")')


def request_data(**changes: str) -> dict[str, str]:
    data = {
        "name": "Pat Doe",
        "email": "pat@example.test",
        "subject": "Cannot print",
        "description": "The printer says *PC LOAD LETTER*.",
        "website": "",
    }
    return {**data, **changes}


def submit(
    browser: Browser, url: str = FORM, ip: str = "127.0.0.1", **changes: str
) -> TestResponse:
    browser.get(url)  # the page's CSRF token, as a person would have it
    return browser.post(url, request_data(**changes), environ_base={"REMOTE_ADDR": ip})


def everything(session: Session) -> dict[str, Any]:
    """What a submission may create, across orgs."""
    member = (Membership.org_id, Membership.user_id, Membership.role)
    session.expire_all()
    with unscoped(session):
        found = {
            "users": session.scalars(select(User.email).order_by(User.id)).all(),
            "members": session.execute(select(*member).order_by(Membership.id)).all(),
            "tickets": session.scalar(select(func.count()).select_from(Ticket)),
            "comments": session.scalar(select(func.count()).select_from(Comment)),
            "events": session.scalar(select(func.count()).select_from(OutboxEvent)),
        }
    session.rollback()
    return found


def only_ticket(session: Session) -> Ticket:
    session.expire_all()
    with unscoped(session):
        ticket = session.scalars(select(Ticket)).one()
    return ticket


def normalized(response: TestResponse) -> tuple[int, str | None, str]:
    return (
        response.status_code,
        response.headers.get("Location"),
        _CSRF.sub(r"\1\2", response.get_data(as_text=True)),
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


# --- dropped submissions -------------------------------------------------------------------------


def test_honeypot_answers_like_success_and_creates_nothing(
    app: Flask, browser: Browser, world, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    reference = submit(Browser(app.test_client()), email="real.person@example.test")
    before = everything(session)
    with caplog.at_level(logging.INFO, logger="helpdesk.services.public_requests"):
        trapped = submit(browser, email="bot@spam.test", website="http://spam.test")
    assert normalized(trapped) == normalized(reference)
    assert everything(session) == before
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "reason=honeypot" in logged
    assert "bot@spam.test" not in logged and "spam.test" not in logged
    assert "Cannot print" not in logged


def test_honeypot_wins_even_over_invalid_fields(browser: Browser, world, session: Session) -> None:
    before = everything(session)
    trapped = submit(browser, email="not an email", subject="", website="x")
    assert trapped.status_code == 303 and trapped.headers["Location"] == THANKS
    assert everything(session) == before


def test_deactivated_account_is_dropped_with_the_same_answer(
    app: Flask, browser: Browser, world, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = world["alpha"]["requester"].user
    blocked.active = False
    session.commit()
    reference = submit(Browser(app.test_client()), email="someone@example.test")
    before = everything(session)
    with caplog.at_level(logging.INFO, logger="helpdesk.services.public_requests"):
        response = submit(browser, email=blocked.email)
    assert normalized(response) == normalized(reference)
    assert everything(session) == before
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "reason=inactive_account" in logged and blocked.email not in logged


# --- validation ----------------------------------------------------------------------------------

BAD_FIELDS = [
    ({"email": ""}, "email", "enter your email address"),
    ({"email": "   "}, "email", "enter your email address"),
    ({"email": "pat@example"}, "email", "enter a valid email address, like name@example.com"),
    ({"email": "pat example.test"}, "email", "enter a valid email address"),
    ({"email": "a" * 250 + "@example.test"}, "email", "254 characters or fewer"),
    ({"name": "N" * 121}, "name", "keep your name to 120 characters or fewer"),
    ({"subject": ""}, "subject", "enter a subject"),
    ({"subject": " \u202e\x00 "}, "subject", "enter a subject"),
    ({"subject": "S" * (SUBJECT_MAX + 1)}, "subject", f"under {SUBJECT_MAX} characters"),
    ({"description": ""}, "description", "write a message"),
    ({"description": " \r\n\t "}, "description", "write a message"),
    ({"description": "d" * (BODY_MAX + 1)}, "description", f"under {BODY_MAX:,} characters"),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD_FIELDS)
def test_each_bad_field_gets_its_own_message_and_nothing_is_created(
    browser: Browser, world, session: Session, changes: dict[str, str], field: str, message: str
) -> None:
    before = everything(session)
    response = submit(browser, **changes)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'<span class="field-error" id="{field}-error">([^<]*)</span>', html)
    assert error, html
    assert message in error.group(1)
    assert html.count('class="field-error"') == 1
    assert f'aria-describedby="{field}-error"' in html
    assert "please correct the field marked below" in html
    assert everything(session) == before


def test_every_error_at_once_keeps_what_was_typed_escaped_but_not_the_honeypot(
    browser: Browser, world, session: Session
) -> None:
    browser.get(FORM)
    typed = {
        "name": "N" * 121,
        "email": "<b>not-an-email",
        "subject": "",
        "description": "",
        "website": "",
    }
    response = browser.post(FORM, typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    for field in ("name", "email", "subject", "description"):
        assert f'id="{field}-error"' in html, field
    assert "please correct the fields marked below" in html
    assert 'value="' + "N" * 121 + '"' in html
    assert 'value="&lt;b&gt;not-an-email"' in html and "<b>not-an-email" not in html
    kept = submit(browser, subject="", description="<script>alert(1)</script> {{7*7}}")
    kept_html = kept.get_data(as_text=True)
    assert kept.status_code == 422
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}}</textarea>" in kept_html
    assert 'value="Pat Doe"' in kept_html and 'value="pat@example.test"' in kept_html
    assert 'name="website" value=""' in kept_html
    assert everything(session)["tickets"] == 0


def test_form_needs_csrf(app: Flask, browser: Browser, world, session: Session) -> None:
    browser.get(FORM)
    without = browser.post(FORM, request_data(), csrf=False)
    assert without.status_code == 400
    assert "nothing was saved" in without.get_data(as_text=True)
    forged = browser.post(FORM, {**request_data(), "csrf_token": "forged"}, csrf=False)
    assert forged.status_code == 400
    fresh = app.test_client().post(FORM, data=request_data())  # no session, no token
    assert fresh.status_code == 400
    assert everything(session)["tickets"] == 0


# --- rate limits ---------------------------------------------------------------------------------


def test_limit_per_client_address(
    app: Flask, browser: Browser, world, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_LIMIT_IP", "3 per hour")
    for i in range(2):
        assert submit(browser, ip="10.0.0.1", email=f"p{i}@example.test").status_code == 303
    bad = submit(browser, ip="10.0.0.1", email="broken")  # invalid posts count too
    assert bad.status_code == 422
    blocked = submit(browser, ip="10.0.0.1", email="p9@example.test", subject="Kept subject")
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 3600
    html = blocked.get_data(as_text=True)
    assert "so this one was not sent" in html
    assert re.search(r"please try again in (a minute|\d+ minutes)", html), html
    assert 'value="Kept subject"' in html  # the text is not lost
    assert everything(session)["tickets"] == 2
    # Another client address is not held back by this one's limit.
    assert submit(browser, ip="10.0.0.2", email="p9@example.test").status_code == 303


def test_limit_per_submitted_address_whatever_the_client(
    app: Flask, browser: Browser, world, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_LIMIT_ADDRESS", "2 per hour")
    assert submit(browser, ip="10.0.1.1", email="target@example.test").status_code == 303
    assert submit(browser, ip="10.0.1.2", email=" Target@Example.TEST ").status_code == 303
    blocked = submit(browser, ip="10.0.1.3", email="TARGET@example.test")
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "please try again in" in blocked.get_data(as_text=True)
    assert everything(session)["tickets"] == 2
    # Other addresses, and malformed ones (they do not share one bucket), still go through.
    assert submit(browser, ip="10.0.1.3", email="other@example.test").status_code == 303
    assert submit(browser, ip="10.0.1.4", email="").status_code == 422
    assert submit(browser, ip="10.0.1.5", email="").status_code == 422
    assert submit(browser, ip="10.0.1.6", email="").status_code == 422


def test_limit_applies_to_unknown_orgs_too(
    app: Flask, browser: Browser, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_LIMIT_IP", "1 per hour")
    assert submit(browser, "/o/nope/request").status_code == 404
    blocked = submit(browser, "/o/nope/request")
    assert blocked.status_code == 429
    html = blocked.get_data(as_text=True)
    assert "<h1>429</h1>" in html and "please try again in" in html


def test_redis_down_fails_closed_but_the_form_still_shows(
    settings: Settings, app: Flask, world, session: Session
) -> None:
    values = {**settings.__dict__, "redis_url": "redis://127.0.0.1:1/0"}
    broken = create_app(Settings(**values))
    broken.config["TESTING"] = True
    try:
        browser = Browser(broken.test_client())
        assert browser.get(FORM).status_code == 200
        response = browser.post(FORM, request_data())
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        html = response.get_data(as_text=True)
        assert "cannot take requests for a moment, so this one was not sent" in html
        assert "Please try again in a minute." in html
        assert 'value="Cannot print"' in html  # the text is not lost
        assert everything(session)["tickets"] == 0
    finally:
        broken.extensions["helpdesk.engine"].dispose()


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


def test_clean_request_reports_every_field_together() -> None:
    with pytest.raises(ValidationError) as caught:
        public_requests.clean_request(PublicRequest(name="x" * 200))
    assert set(caught.value.errors) == {"name", "email", "subject", "description"}
    clean = public_requests.clean_request(
        PublicRequest(" Pat \u202e Doe ", " Pat@Example.TEST ", " Hi\tthere ", "Body")
    )
    assert dataclasses.astuple(clean) == ("Pat Doe", "pat@example.test", "Hi there", "Body")


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
