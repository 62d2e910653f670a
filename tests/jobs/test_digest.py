"""Digests: many waiting events become one email per period, retried as a unit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import EventKind, JobRun, NotificationPreference, Ticket
from helpdesk.services import dispatch as dispatching
from helpdesk.services import outbox
from helpdesk.tenancy import tenant_scope, unscoped
from jobs import notify
from tests.factories import make_member, make_ticket
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    MAIL_DOMAIN,
    SmtpSink,
    _app_context,
    _notify_app,
    _smtp,
    _smtp_server,
    all_deliveries,
    set_preference,
)


def _sla_warnings(session: Session, side: dict[str, Any], count: int) -> list[Ticket]:
    """Open `count` tickets and fire an SLA warning on each, dispatched at once."""
    made = [
        make_ticket(session, side["org"], side["agent"], f"customer{n}@example.test")
        for n in range(count)
    ]
    org_id = side["org"].id
    with tenant_scope(session, org_id):
        for ticket in made:
            event = outbox.emit(
                session,
                org_id,
                EventKind.SLA_WARNING,
                ticket=ticket,
                payload={"target": "first_response", "level": "75", "due_at": "2027-01-15T13:00Z"},
            )
            session.commit()
            dispatching.dispatch_event(session, event)
    return made


def _digest_user(session: Session, side: dict[str, Any], minutes: int = 60) -> Any:
    lead = make_member(session, side["org"], email=f"lead@{side['org'].slug}.test")
    set_preference(session, side["org"], lead.user, ["sla.warning"], "digest", minutes)
    return lead


def test_fifty_sla_warnings_make_one_email(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    lead = _digest_user(session, alpha)
    _sla_warnings(session, alpha, 50)
    _sla_warnings(session, beta, 2)  # beta has no digest users: its admin is told at once
    waiting = all_deliveries(session, user_id=lead.user_id)
    assert len(waiting) == 50 and {d.status for d in waiting} == {"digest"}
    now = utcnow()
    assert notify.send_digests(now) == {}  # the period has not passed yet
    assert smtp.mails == []
    outcome = notify.send_digests(now + timedelta(minutes=61))
    assert outcome == {"delivered": 1}
    (mail,) = smtp.delivered()
    assert mail.rcpt == ["lead@alpha.test"]
    assert mail.message["Subject"] == "50 updates in Alpha"
    assert mail.message["Message-ID"].startswith(f"<helpdesk.digest.{lead.user_id}-")
    assert mail.message["Message-ID"].endswith(f"@{MAIL_DOMAIN}>")
    assert mail.text().count("SLA warning: first response is due 2027-01-15 13:00 UTC") == 50
    assert mail.html().count("/o/alpha/tickets/") == 50
    assert {d.status for d in all_deliveries(session, user_id=lead.user_id)} == {"delivered"}
    with tenant_scope(session, alpha["org"].id):
        pref = session.scalar(select(NotificationPreference))
        assert pref is not None and pref.last_digest_at == now + timedelta(minutes=61)
    with unscoped(session):
        assert session.get(JobRun, "notify.digests") is not None
    assert notify.send_digests(now + timedelta(minutes=200)) == {}  # nothing left to send


def test_next_digest_waits_for_the_period_since_the_last(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    _digest_user(session, alpha, minutes=30)
    _sla_warnings(session, alpha, 1)
    now = utcnow()
    assert notify.send_digests(now + timedelta(minutes=31)) == {"delivered": 1}
    _sla_warnings(session, alpha, 2)
    assert notify.send_digests(now + timedelta(minutes=50)) == {}  # 19 min since the last
    assert notify.send_digests(now + timedelta(minutes=62)) == {"delivered": 1}
    assert [m.message["Subject"] for m in smtp.delivered()] == [
        "1 update in Alpha",
        "2 updates in Alpha",
    ]


def test_failed_digest_is_retried_as_a_unit(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    lead = _digest_user(session, alpha)
    _sla_warnings(session, alpha, 3)
    smtp.replies = ["451 4.7.1 greylisted, come back later"]
    later = utcnow() + timedelta(minutes=61)
    assert notify.send_digests(later) == {"digest": 1}  # back to waiting, together
    rows = all_deliveries(session, user_id=lead.user_id)
    assert {(d.status, d.attempts) for d in rows} == {("digest", 1)}
    assert all("451" in (d.last_error or "") for d in rows)
    assert notify.send_digests(later + timedelta(seconds=1)) == {}  # backoff: not yet
    assert notify.send_digests(later + timedelta(seconds=15)) == {"delivered": 1}
    first, second = smtp.mails
    assert not first.accepted and second.accepted
    assert second.message["Subject"] == "3 updates in Alpha"
    assert {d.status for d in all_deliveries(session, user_id=lead.user_id)} == {"delivered"}


def test_digest_rows_are_skipped_when_notifications_are_off(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    lead = _digest_user(session, alpha)
    _sla_warnings(session, alpha, 2)
    with tenant_scope(session, alpha["org"].id):
        session.execute(update(NotificationPreference).values(mode="off"))
        session.commit()
    assert notify.send_digests() == {"skipped": 1}
    rows = all_deliveries(session, user_id=lead.user_id)
    assert {d.status for d in rows} == {"skipped"}
    assert smtp.mails == []
