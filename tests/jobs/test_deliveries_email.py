"""Email deliveries through a real SMTP server: content, threading, retries, dead letters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Delivery, User
from helpdesk.services import deliveries, tickets
from helpdesk.services.errors import Conflict, NotFound, ValidationError
from helpdesk.tenancy import tenant_scope
from jobs import notify
from tests.factories import make_ticket
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    BASE_URL,
    MAIL_DOMAIN,
    SmtpSink,
    _app_context,
    _notify_app,
    _smtp,
    _smtp_server,
    all_deliveries,
    events_of,
    queued,
    run_jobs,
    user_target,
)

NOTE = "Internal-only: the customer's card was declined"


def _open_and_reply(session: Session, side: dict[str, Any]) -> int:
    """Agent opens a ticket for the requester; admin assigns the agent and replies publicly."""
    ticket = make_ticket(session, side["org"], side["agent"], side["requester"].user)
    with tenant_scope(session, side["org"].id):
        tickets.update_fields(
            session, side["admin"], ticket.number, {"assignee_email": side["agent"].user.email}
        )
        tickets.add_comment(session, side["admin"], ticket.number, "We are **on it**.")
    return ticket.number


def test_ticket_and_public_reply_reach_requester_and_assignee(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    number = _open_and_reply(session, alpha)
    run_jobs(app)
    requester_mails = smtp.delivered("requester@alpha.test")
    agent_mails = smtp.delivered("agent@alpha.test")
    assert len(requester_mails) == 2  # the acknowledgement and the public reply
    assert len(agent_mails) == 3  # assigned, the reply, the status change to open
    assert smtp.delivered("admin@alpha.test") == []  # the actor is never told
    thread = f"<helpdesk.ticket.alpha.{number}@{MAIL_DOMAIN}>"
    by_user = {d.target: d for d in all_deliveries(session) if d.status == "delivered"}
    for mail in requester_mails + agent_mails:
        message = mail.message
        assert message["Subject"].startswith(f"[alpha #{number}] Printer on fire")
        assert message["In-Reply-To"] == thread and message["References"] == thread
        assert message["From"].addresses[0].display_name == "Alpha"
        assert message["From"].addresses[0].addr_spec == f"support@{MAIL_DOMAIN}"
        if mail in requester_mails:  # requesters get their own link, never the agent page
            assert f"{BASE_URL}/t/" in mail.text() and "/o/alpha/" not in mail.text()
        else:
            assert f"{BASE_URL}/o/alpha/tickets/{number}" in mail.text()
    ids = {m.message["Message-ID"] for m in requester_mails + agent_mails}
    assert len(ids) == 5
    expected = {f"<helpdesk.delivery.{d.id}@{MAIL_DOMAIN}>" for d in all_deliveries(session)}
    assert ids == expected
    reply = requester_mails[1]
    assert "We are **on it**." in reply.text()
    assert "<strong>on it</strong>" in reply.html()
    assert user_target(alpha["requester"]) in by_user


def test_internal_note_never_reaches_the_requester(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    number = _open_and_reply(session, alpha)
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["admin"], number, NOTE, internal=True)
    run_jobs(app)
    for mail in smtp.delivered("requester@alpha.test"):
        assert "declined" not in mail.message.as_string()
        assert "internal note" not in mail.text()
    notes = [m for m in smtp.delivered("agent@alpha.test") if NOTE in m.text()]
    assert len(notes) == 1 and "internal note" in notes[0].text()
    assert "internal note" in notes[0].html()


def test_smtp_refusal_is_retried_with_the_same_message_id(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    smtp.replies = ["451 4.3.0 mailbox busy, try later"]
    started = utcnow()
    run_jobs(app)
    (delivery,) = all_deliveries(session)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert delivery.last_error is not None and "451" in delivery.last_error
    assert delivery.next_attempt_at is not None
    wait = (delivery.next_attempt_at - started).total_seconds()
    assert 8 - 1 <= wait <= 12 + 1  # 10 s ± 20 %, plus the time the attempt took
    with tenant_scope(session, alpha["org"].id):
        assert deliveries.attempt(session, delivery.id, utcnow()) is None  # not due yet
        later = delivery.next_attempt_at + timedelta(seconds=1)
        assert deliveries.attempt(session, delivery.id, later) == "delivered"
    (delivery,) = all_deliveries(session)
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("delivered", 2, None)
    first, second = smtp.mails
    assert not first.accepted and second.accepted
    assert first.message["Message-ID"] == second.message["Message-ID"]
    assert second.message["Message-ID"] == f"<helpdesk.delivery.{delivery.id}@{MAIL_DOMAIN}>"


def test_permanent_refusal_is_dead_at_once(app: Flask, session: Session, world, smtp) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    smtp.replies = ["550 5.1.1 no such mailbox"]
    run_jobs(app)
    (delivery,) = all_deliveries(session)
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert "550" in (delivery.last_error or "")


def test_sixth_failure_is_dead_and_missing_smtp_is_a_failure(
    app: Flask, session: Session, world, smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    monkeypatch.setitem(app.config, "SMTP_URL", "")
    run_jobs(app)
    (delivery,) = all_deliveries(session)
    assert (delivery.status, delivery.last_error) == ("failed", "SMTP_URL is not configured")
    with tenant_scope(session, alpha["org"].id):
        session.execute(update(Delivery).values(attempts=5, next_attempt_at=utcnow()))
        session.commit()
        assert deliveries.attempt(session, delivery.id) == "dead"
    (delivery,) = all_deliveries(session)
    assert (delivery.status, delivery.attempts) == ("dead", 6)
    assert smtp.mails == []


def test_deactivated_recipient_is_skipped(app: Flask, session: Session, world, smtp) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    notify.dispatch(alpha["org"].id, events_of(session)[-1].id)  # the delivery is queued
    session.execute(update(User).where(User.email == "requester@alpha.test").values(active=False))
    session.commit()
    run_jobs(app)
    (delivery,) = all_deliveries(session)
    assert delivery.status == "skipped" and "deactivated" in (delivery.last_error or "")
    assert smtp.mails == []


def test_redeliver_and_retry_dead(app: Flask, session: Session, world, smtp) -> None:
    alpha, beta = world["alpha"], world["beta"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    make_ticket(session, beta["org"], beta["agent"], beta["requester"].user)
    smtp.replies = ["550 no", "550 no"]
    run_jobs(app)
    dead_alpha, dead_beta = all_deliveries(session)
    assert dead_alpha.status == dead_beta.status == "dead"
    now = utcnow()
    with tenant_scope(session, alpha["org"].id):
        with pytest.raises(NotFound):  # another org's delivery is invisible
            deliveries.redeliver(session, dead_beta.id, now)
        again = deliveries.redeliver(session, dead_alpha.id, now)
        assert (again.status, again.attempts, again.last_error) == ("pending", 0, None)
    assert queued(app) == [("jobs.notify.deliver", (alpha["org"].id, dead_alpha.id))]
    run_jobs(app)
    assert [m.rcpt for m in smtp.delivered()] == [["requester@alpha.test"]]
    with pytest.raises(ValidationError, match=r"unknown event kind 'ticket\.exploded'"):
        deliveries.retry_dead(session, kind="ticket.exploded", now=now)
    assert deliveries.retry_dead(session, kind="sla.warning", now=now) == 0
    assert deliveries.retry_dead(session, kind="ticket.created", now=now) == 1
    assert queued(app) == [("jobs.notify.deliver", (beta["org"].id, dead_beta.id))]
    run_jobs(app)
    assert [d.status for d in all_deliveries(session)] == ["delivered", "delivered"]
    assert [d.attempts for d in all_deliveries(session)] == [1, 1]
    with tenant_scope(session, alpha["org"].id):
        session.execute(update(Delivery).values(status="sending"))
        session.commit()
        with pytest.raises(Conflict, match="being sent right now"):
            deliveries.redeliver(session, dead_alpha.id, now)
