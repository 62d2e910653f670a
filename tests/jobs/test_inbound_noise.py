"""Noise and repeats: auto-replies, bulk and list mail, bounces (recorded on the user), mail
loops and duplicates are ignored with a reason; a message is processed once."""

from __future__ import annotations

import email.policy
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import InboundMessage, User
from helpdesk.services import inbound
from helpdesk.services.threading import MailIdentity
from jobs import inbound as inbound_jobs
from tests.jobs.inbound_helpers import (  # noqa: F401 - fixtures
    _inbound_app,
    acknowledged_ticket,
    comments,
    deliver,
    eml,
    post_mail,
    reply_values,
    tickets_of,
)
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    MAIL_DOMAIN,
    SmtpSink,
    _app_context,
    _smtp,
    _smtp_server,
)

ORG_ADDRESS = f"support+alpha@{MAIL_DOMAIN}"


def _mail(body: str = "Hello", **headers: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = headers.pop("From", "Nora Newcomer <nora@example.net>")
    msg["To"] = headers.pop("To", ORG_ADDRESS)
    msg["Subject"] = headers.pop("Subject", "A question")
    msg["Message-ID"] = headers.pop("Message_ID", f"<{abs(hash((body, *headers.items())))}@x.test>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def test_an_out_of_office_reply_is_ignored(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    _ticket, mail = acknowledged_ticket(app, session, alpha, smtp)
    values = reply_values(mail)
    del values["references"]
    row = deliver(app, client, eml("auto_reply.eml", **values))
    assert row.status == "ignored"
    assert row.reason == "automatic message (Auto-Submitted: auto-replied)"
    assert row.comment_id is None and len(comments(session, alpha["org"], 1)) == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Precedence": "bulk"}, "bulk mail (Precedence: bulk)"),
        ({"Precedence": "junk"}, "bulk mail (Precedence: junk)"),
        ({"List_Id": "<announce.example.net>"}, "mailing-list mail (List-Id header)"),
        (
            {"List_Unsubscribe": "<mailto:u@example.net>"},
            "mailing-list mail (List-Unsubscribe header)",
        ),
        ({"X_Autoreply": "yes"}, "automatic reply (X-Autoreply header)"),
        (
            {"Auto_Submitted": "auto-generated"},
            "automatic message (Auto-Submitted: auto-generated)",
        ),
    ],
)
def test_bulk_list_and_automatic_mail_is_ignored(
    app: Flask,
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    headers: dict[str, str],
    reason: str,
) -> None:
    row = deliver(app, client, _mail("Our newsletter", **headers))
    assert (row.status, row.reason) == ("ignored", reason)
    assert tickets_of(session, world["alpha"]["org"]) == []


def test_auto_submitted_no_is_a_person(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    row = deliver(app, client, _mail("I typed this", Auto_Submitted="no"))
    assert row.status == "processed", row.reason
    assert [t.subject for t in tickets_of(session, world["alpha"]["org"])] == ["A question"]


def test_a_bounce_is_ignored_and_recorded_on_the_user(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    row = deliver(app, client, eml("bounce.eml"))
    assert row.status == "ignored"
    assert row.reason is not None and row.reason.startswith(
        "bounce: delivery to requester@alpha.test failed (5.1.1 smtp; 550 5.1.1"
    )
    assert row.reason.endswith("; recorded on the user")
    session.expire_all()
    user = session.scalar(select(User).where(User.email == "requester@alpha.test"))
    assert user is not None and user.email_bounced_at is not None
    assert user.email_bounce_reason is not None
    assert "Recipient address rejected" in user.email_bounce_reason
    other = session.scalar(select(User).where(User.email == "requester@beta.test"))
    assert other is not None and other.email_bounced_at is None
    assert tickets_of(session, world["alpha"]["org"]) == []


def test_a_delay_notice_and_a_qmail_style_bounce(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    delayed = eml("bounce.eml").replace(b"Action: failed", b"Action: delayed")
    delayed = delayed.replace(b"7C1A8E2F3D@mx", b"7C1A8E2F3E@mx")
    row = deliver(app, client, delayed)
    assert (row.status, row.reason) == (
        "ignored",
        "delivery delay notice (the mail server is still trying)",
    )
    qmail = _mail(
        "Hi. This is the qmail-send program.\n\n<requester@beta.test>:\n"
        "Sorry, no mailbox here by that name. (#5.1.1)\n",
        From="MAILER-DAEMON@mail.example.net",
        Subject="failure notice",
    )
    row = deliver(app, client, qmail)
    assert row.status == "ignored" and "requester@beta.test failed" in (row.reason or "")
    session.expire_all()
    user = session.scalar(select(User).where(User.email == "requester@beta.test"))
    assert user is not None and user.email_bounced_at is not None
    alpha = session.scalar(select(User).where(User.email == "requester@alpha.test"))
    assert alpha is not None and alpha.email_bounced_at is None


def test_our_own_mail_coming_back_is_a_loop(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    own_id = _mail("echo", Message_ID=f"<helpdesk.delivery.7@{MAIL_DOMAIN}>")
    own_sender = _mail("echo 2", From=f"Alpha <support@{MAIL_DOMAIN}>")
    own_reply_address = _mail("echo 3", From=f"support+{'a' * 32}@{MAIL_DOMAIN}")
    for raw in (own_id, own_sender, own_reply_address):
        row = deliver(app, client, raw)
        assert (row.status, row.reason) == (
            "ignored",
            "our own outgoing email came back (mail loop)",
        )
    # An id that only looks like ours (another domain) is just an email.
    lookalike = _mail("hi", Message_ID="<helpdesk.delivery.7@elsewhere.example>")
    assert deliver(app, client, lookalike).status == "processed"


def test_a_duplicate_message_id_is_ignored(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    _ticket, mail = acknowledged_ticket(app, session, alpha, smtp)
    reply = eml("gmail_reply.eml", **reply_values(mail))
    assert deliver(app, client, reply).status == "processed"
    again = deliver(app, client, reply)
    assert again.status == "ignored"
    assert again.reason == (
        "duplicate: this email (<CAJx8s+Q2Yb6pTnFm3=kq1w@mail.gmail.com>) is already on ticket #1"
    )
    assert len(comments(session, alpha["org"], 1)) == 2
    # The same goes for an email that opened a ticket: one ticket, however often it comes.
    opening = eml("forwarded.eml")
    assert deliver(app, client, opening).status == "processed"
    assert deliver(app, client, opening).status == "ignored"
    assert [t.number for t in tickets_of(session, alpha["org"])] == [1, 2]


def test_a_message_is_processed_once_and_waiting_ones_are_requeued(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    response = post_mail(client, _mail("Once only"))
    inbound_id = response.get_json()["id"]
    identity = MailIdentity.from_config(app.config)
    with app.extensions["helpdesk.sessionmaker"]() as s:
        assert inbound.process(s, inbound_id, identity) == "processed"
    with app.extensions["helpdesk.sessionmaker"]() as s:
        assert inbound.process(s, inbound_id, identity) is None
        assert inbound.process(s, 999_999, identity) is None
    assert len(tickets_of(session, world["alpha"]["org"])) == 1
    # A message whose enqueue was lost stays "received"; the periodic requeue finds it.
    queue = Queue("default", connection=app.extensions["helpdesk.redis"])
    queue.empty()
    waiting = post_mail(client, _mail("Lost enqueue")).get_json()["id"]
    fresh = post_mail(client, _mail("Just arrived")).get_json()["id"]
    queue.empty()
    with app.extensions["helpdesk.sessionmaker"]() as s:
        old = utcnow() - timedelta(minutes=5)
        s.execute(
            update(InboundMessage).where(InboundMessage.id == waiting).values(received_at=old)
        )
        s.commit()
    assert inbound_jobs.requeue_waiting() == 1
    assert [tuple(job.args) for job in queue.get_jobs()] == [(waiting,)]
    assert fresh != waiting
