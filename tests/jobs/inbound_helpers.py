"""Shared pieces for the inbound email tests: an app with an inbound secret wired to the real
SMTP sink, the .eml fixtures, posting to /inbound/email, and running the inbound job.

Import the fixtures into a test module (``from tests.jobs.inbound_helpers import …  # noqa``):
the app fixture is named ``app``, so ``session``/``world``/``client`` there use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.models import Comment, InboundMessage, Organization, Ticket
from helpdesk.tenancy import tenant_scope
from tests.factories import make_ticket
from tests.jobs.notify_helpers import Mail, SmtpSink, notify_settings, run_jobs

SECRET = "inbound-secret-for-tests-0123456789"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"


@pytest.fixture(scope="module", name="app")
def _inbound_app(settings: Settings, smtp_server: tuple[SmtpSink, int]) -> Iterator[Flask]:
    app = create_app(notify_settings(settings, smtp_server[1], inbound_email_secret=SECRET))
    app.config["TESTING"] = True
    yield app
    app.extensions["helpdesk.engine"].dispose()


def eml(name: str, **values: str) -> bytes:
    """A fixture message with its %%PLACEHOLDERS%% filled in (all of them, or the test fails)."""
    raw = (FIXTURES / name).read_bytes()
    for key, value in values.items():
        raw = raw.replace(f"%%{key.upper()}%%".encode(), value.encode())
    assert b"%%" not in raw, f"{name}: a placeholder was left unfilled"
    return raw


def post_mail(
    client: FlaskClient, raw: bytes, to: str | None = None, secret: str = SECRET
) -> TestResponse:
    """POST a raw message to /inbound/email as the inbound-mail service would."""
    query = {"to": to} if to else None
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "message/rfc822"}
    return client.post("/inbound/email", data=raw, headers=headers, query_string=query)


def run_inbound(app: Flask) -> None:
    """Run every queued job on the default queue in-process (the inbound jobs)."""
    redis = app.extensions["helpdesk.redis"]
    queue = Queue("default", connection=redis)
    failed = FailedJobRegistry(queue=queue)
    before = set(failed.get_job_ids())
    worker = SimpleWorker([queue], connection=redis)
    worker.work(burst=True)
    new = [queue.fetch_job(i) for i in set(failed.get_job_ids()) - before]
    if new:
        details = [(j.func_name, getattr(j.latest_result(), "exc_string", None)) for j in new if j]
        pytest.fail(f"inbound jobs failed: {details}")


def deliver(app: Flask, client: FlaskClient, raw: bytes, to: str | None = None) -> InboundMessage:
    """Post a message, run its job, and return the stored row as processed."""
    response = post_mail(client, raw, to=to)
    assert response.status_code == 202, response.get_data(as_text=True)
    run_inbound(app)
    row = inbound_row(app, response.get_json()["id"])
    assert row.status != "received", "the inbound job did not run"
    return row


def inbound_row(app: Flask, inbound_id: int) -> InboundMessage:
    with app.extensions["helpdesk.sessionmaker"]() as session:
        row = session.get(InboundMessage, inbound_id)
        assert row is not None
        session.expunge(row)
        return row


def raw_of(app: Flask, inbound_id: int) -> bytes:
    with app.extensions["helpdesk.sessionmaker"]() as session:
        raw = session.scalar(select(InboundMessage.raw).where(InboundMessage.id == inbound_id))
        assert raw is not None
        return bytes(raw)


def comments(session: Session, org: Organization, number: int) -> list[Comment]:
    """The ticket's comments, oldest first (fresh from the database)."""
    session.expire_all()
    with tenant_scope(session, org.id):
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        rows = list(
            session.scalars(
                select(Comment).where(Comment.ticket_id == ticket_id).order_by(Comment.id)
            )
        )
    session.rollback()
    return rows


def tickets_of(session: Session, org: Organization) -> list[Ticket]:
    session.expire_all()
    with tenant_scope(session, org.id):
        rows = list(session.scalars(select(Ticket).order_by(Ticket.number)))
    session.rollback()
    return rows


def acknowledged_ticket(
    app: Flask, session: Session, side: dict[str, Any], smtp: SmtpSink, **kw: Any
) -> tuple[Ticket, Mail]:
    """An agent opens a ticket for the side's requester; return it and the requester's email."""
    ticket = make_ticket(session, side["org"], side["agent"], side["requester"].user, **kw)
    run_jobs(app)
    mails = smtp.delivered(side["requester"].user.email)
    assert mails, "the requester got no acknowledgement"
    return ticket, mails[-1]


def reply_values(mail: Mail) -> dict[str, str]:
    """Placeholders for a fixture that replies to `mail`: its Reply-To and thread ids."""
    message_id = str(mail.message["Message-ID"])
    references = " ".join(str(mail.message["References"] or "").split())
    return {
        "reply_to": str(mail.message["Reply-To"]),
        "in_reply_to": message_id,
        "references": f"{references} {message_id}".strip(),
    }
