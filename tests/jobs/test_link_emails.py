"""Links in email, through a real SMTP server: requester notifications carry a freshly minted
/t/ link (staff keep the agent URL), and an expired link brings a fresh one by email."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import AccessToken, Ticket, User
from helpdesk.services import access_links, tickets
from helpdesk.services.mail_transport import PermanentMailError
from helpdesk.tenancy import tenant_scope, unscoped
from jobs import links
from tests.factories import make_ticket
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    BASE_URL,
    MAIL_DOMAIN,
    Mail,
    SmtpSink,
    _app_context,
    _notify_app,
    _smtp,
    _smtp_server,
    queued,
    run_jobs,
)

LINK_RE = re.compile(re.escape(BASE_URL) + r"/t/([A-Za-z0-9_-]{32})")
FRESH_JOB = "jobs.links.send_fresh_link"


def link_in(mail: Mail) -> str:
    """The one /t/ token a mail carries, the same in both parts."""
    in_text, in_html = set(LINK_RE.findall(mail.text())), set(LINK_RE.findall(mail.html()))
    assert len(in_text) == 1 and in_text == in_html, (in_text, in_html)
    return in_text.pop()


def stored_tokens(session: Session) -> list[AccessToken]:
    session.expire_all()
    with unscoped(session):
        rows = list(session.scalars(select(AccessToken).order_by(AccessToken.id)))
    session.rollback()
    return rows


def opens(app: Flask, token: str) -> tuple[int, str]:
    """Open a link in a fresh browser: (status of /t/, text of the page it leads to)."""
    client = app.test_client()
    response = client.get(f"/t/{token}")
    if response.status_code != 303:
        return response.status_code, response.get_data(as_text=True)
    return 303, client.get(response.headers["Location"]).get_data(as_text=True)


@pytest.fixture
def replied(session: Session, world: dict[str, Any]) -> Ticket:
    """Agent opens a ticket for the requester; admin assigns the agent and replies publicly."""
    alpha = world["alpha"]
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    with tenant_scope(session, alpha["org"].id):
        tickets.update_fields(session, alpha["admin"], ticket.number,
                              {"assignee_email": alpha["agent"].user.email})  # fmt: skip
        tickets.add_comment(session, alpha["admin"], ticket.number, "We are **on it**.")
    return ticket


def test_requester_emails_carry_a_fresh_link_never_an_agent_url(
    app: Flask, session: Session, smtp: SmtpSink, replied: Ticket
) -> None:
    run_jobs(app)
    ack, reply = smtp.delivered("requester@alpha.test")
    tokens = [link_in(ack), link_in(reply)]
    assert tokens[0] != tokens[1]  # one link per email
    for mail in (ack, reply):
        assert "/o/alpha" not in mail.text() + mail.html()
        assert "personal and works for 30 days" in mail.text()
        assert "personal and works for 30 days" in mail.html()
    rows = stored_tokens(session)
    assert [r.token_hash for r in rows] == [access_links.hash_token(t) for t in tokens]
    assert all(t not in r.token_hash for r in rows for t in tokens)  # only hashes are kept
    assert {(r.ticket_id, r.requester_id) for r in rows} == {(replied.id, replied.requester_id)}
    for mail in smtp.delivered("agent@alpha.test"):  # staff keep the agent page
        assert f"{BASE_URL}/o/alpha/tickets/{replied.number}" in mail.text()
        assert "/t/" not in mail.text() + mail.html()
    status, page = opens(app, tokens[1])
    assert status == 303 and "<strong>on it</strong>" in page
    assert opens(app, tokens[0])[0] == 303  # older links stay valid until they expire


def test_internal_notes_mint_no_link_and_send_nothing(
    app: Flask, session: Session, smtp: SmtpSink, replied: Ticket, world: dict[str, Any]
) -> None:
    run_jobs(app)
    earlier = [link_in(m) for m in smtp.delivered("requester@alpha.test")]
    smtp.reset()
    before = len(stored_tokens(session))
    with tenant_scope(session, replied.org_id):
        tickets.add_comment(session, world["alpha"]["admin"], replied.number, "NOTE-SECRET",
                            internal=True)  # fmt: skip
    run_jobs(app)
    assert smtp.delivered("requester@alpha.test") == []
    assert any("NOTE-SECRET" in m.text() for m in smtp.delivered("agent@alpha.test"))
    assert len(stored_tokens(session)) == before
    for token in earlier:
        status, page = opens(app, token)
        assert status == 303 and "NOTE-SECRET" not in page


def _expired_link(session: Session, ticket: Ticket) -> str:
    with tenant_scope(session, ticket.org_id):
        _row, token = access_links.mint_link(session, ticket, utcnow() - timedelta(days=31))
        session.commit()
    return token


def test_expired_link_brings_one_fresh_link_by_email(
    app: Flask, session: Session, smtp: SmtpSink, replied: Ticket
) -> None:
    run_jobs(app)
    smtp.reset()
    old = _expired_link(session, replied)
    status, page = opens(app, old)
    assert status == 410 and "we&#39;ve emailed you a fresh one" in page
    assert opens(app, old)[0] == 410  # opened twice (a scanner, then the person) …
    ids = (replied.org_id, replied.id, replied.requester_id)
    assert [args for name, args in queued(app) if name == FRESH_JOB] == [ids]  # … one email
    run_jobs(app)
    (mail,) = smtp.delivered()
    message = mail.message
    assert mail.rcpt == ["requester@alpha.test"]
    assert message["Subject"] == f"[alpha #{replied.number}] A new link to your request: " + (
        replied.subject
    )
    assert message["From"].addresses[0].display_name == "Alpha"
    assert message["Auto-Submitted"] == "auto-generated"
    thread = f"<helpdesk.ticket.alpha.{replied.number}@{MAIL_DOMAIN}>"
    assert message["In-Reply-To"] == thread and message["References"] == thread
    new_row = stored_tokens(session)[-1]
    assert message["Message-ID"] == f"<helpdesk.link.{new_row.id}@{MAIL_DOMAIN}>"
    assert "works for 30 days" in mail.text() and "works for 30 days" in mail.html()
    new = link_in(mail)
    assert new_row.token_hash == access_links.hash_token(new)
    status, page = opens(app, new)
    assert status == 303 and "<strong>on it</strong>" in page
    assert opens(app, old)[0] == 410
    assert [name for name, _args in queued(app)] == []  # the hour is not over: no new job


def test_revoked_links_are_not_resent(
    app: Flask, session: Session, smtp: SmtpSink, replied: Ticket, world: dict[str, Any]
) -> None:
    run_jobs(app)
    smtp.reset()
    old = _expired_link(session, replied)
    with tenant_scope(session, replied.org_id):
        access_links.revoke_links(session, world["alpha"]["agent"], replied.number)
    assert opens(app, old)[0] == 410
    assert queued(app) == []
    assert run_jobs(app) == 0 and smtp.mails == []


def test_no_fresh_link_for_someone_who_lost_access(
    app: Flask, session: Session, smtp: SmtpSink, replied: Ticket, world: dict[str, Any]
) -> None:
    run_jobs(app)
    smtp.reset()
    before = len(stored_tokens(session))
    other = world["alpha"]["agent"].user_id
    assert links.send_fresh_link(replied.org_id, replied.id, other) is False  # not the requester
    assert links.send_fresh_link(world["beta"]["org"].id, replied.id, replied.requester_id) is False
    session.execute(update(User).where(User.id == replied.requester_id).values(active=False))
    session.commit()
    assert links.send_fresh_link(replied.org_id, replied.id, replied.requester_id) is False
    assert smtp.mails == [] and len(stored_tokens(session)) == before


def test_a_refused_fresh_link_email_fails_the_job_visibly(
    app: Flask, session: Session, smtp: SmtpSink, replied: Ticket
) -> None:
    run_jobs(app)
    smtp.reset()
    smtp.replies = ["550 5.1.1 mailbox unavailable"]
    with pytest.raises(PermanentMailError, match="550"):
        links.send_fresh_link(replied.org_id, replied.id, replied.requester_id)
    assert len(smtp.mails) == 1 and not smtp.mails[0].accepted
