"""What an inbound email becomes: new tickets (forwarded, HTML-only, other charsets), the staff
note that is never a public reply, and the failures that keep the raw message and say why."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from helpdesk.models import BODY_MAX, User
from helpdesk.services.inbound import EMPTY_BODY, UNVERIFIED_PREFIX
from tests.jobs.inbound_helpers import (  # noqa: F401 - fixtures
    _inbound_app,
    acknowledged_ticket,
    comments,
    deliver,
    eml,
    raw_of,
    reply_values,
    tickets_of,
)
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    MAIL_DOMAIN,
    SmtpSink,
    _app_context,
    _smtp,
    _smtp_server,
    run_jobs,
)

ORG_ADDRESS = f"support+alpha@{MAIL_DOMAIN}"


def test_a_forwarded_message_opens_a_ticket_with_the_forwarded_text(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    row = deliver(app, client, eml("forwarded.eml"))
    assert row.status == "processed", row.reason
    assert row.reason == f"new ticket for {ORG_ADDRESS}"
    [ticket] = tickets_of(session, alpha["org"])
    assert ticket.subject == "Invoice 4411 is wrong" and ticket.status == "new"
    assert ticket.requester.email == "felix.customer@example.org"
    assert ticket.requester.name == "Felix Customer"
    [first] = comments(session, alpha["org"], ticket.number)
    assert first.channel == "email" and first.message_id == "<CAFwd7x9kLmN0pQ@mail.gmail.com>"
    # Nothing of a forward is cut: the forwarded mail is the content.
    assert "Invoice 4411 lists 12 seats; the contract says 10." in first.body_md
    assert "Please re-issue the invoice." in first.body_md
    assert (row.ticket_id, row.comment_id) == (ticket.id, first.id)
    # The new requester gets the acknowledgement, with the reply address of this ticket.
    run_jobs(app)
    [ack] = smtp.delivered("felix.customer@example.org")
    assert ack.message["Reply-To"].startswith("support+")
    assert ack.message["In-Reply-To"] == "<CAFwd7x9kLmN0pQ@mail.gmail.com>"


def test_iso_8859_1_and_an_unknown_charset_are_decoded_leniently(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    alpha = world["alpha"]
    latin = deliver(app, client, eml("latin1.eml"))
    assert latin.status == "processed", latin.reason
    assert latin.subject == "Grüße aus Köln: Drucker defekt"
    odd = deliver(app, client, eml("bad_charset.eml"))
    assert odd.status == "processed"
    assert "unknown charset 'x-klingon-9' decoded as UTF-8 with replacement characters" in (
        odd.reason or ""
    )
    first, second = tickets_of(session, alpha["org"])
    assert first.subject == "Grüße aus Köln: Drucker defekt"
    assert first.requester.name == "Jürgen Müller"
    [body] = comments(session, alpha["org"], first.number)
    assert "im Büro gibt nur noch weiße Seiten aus. Das kostet 20 € pro Tag." in body.body_md
    [odd_body] = comments(session, alpha["org"], second.number)
    assert 'shows "caf\ufffd €" instead' in odd_body.body_md


def test_html_only_mail_becomes_sanitized_text(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    alpha = world["alpha"]
    assert deliver(app, client, eml("html_only.eml")).status == "processed"
    [ticket] = tickets_of(session, alpha["org"])
    [first] = comments(session, alpha["org"], ticket.number)
    text, html = first.body_md, first.body_html
    assert text.startswith("Hello,\n\nthe login page shows an error since the update. Steps:")
    assert "- open [the login page](https://app.example.org/login)" in text
    assert "- click Sign in" in text and "javascript" not in text
    assert "ignored title" not in text and "alert" not in text and "color: red" not in text
    assert "See also <script> in the console & the log." in text
    assert '<a href="https://app.example.org/login"' in html
    assert "<script" not in html and "&lt;script&gt;" in html
    assert "onclick" not in html and "tracker.example" not in html


def test_malformed_mime_fails_with_the_reason_and_keeps_the_raw_message(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    raw = eml("malformed.eml")
    row = deliver(app, client, raw)
    assert row.status == "failed"
    assert row.reason == "malformed MIME: a multipart message without a boundary; no readable text"
    assert row.org_id == world["alpha"]["org"].id  # its org's admins see it
    assert raw_of(app, row.id) == raw and row.size == len(raw)
    assert tickets_of(session, world["alpha"]["org"]) == []


def test_a_staff_sender_becomes_an_unverified_internal_note(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    _ticket, mail = acknowledged_ticket(app, session, alpha, smtp)
    values = reply_values(mail)
    del values["references"]
    row = deliver(app, client, eml("staff_reply.eml", **values))
    assert row.status == "processed", row.reason
    note = comments(session, alpha["org"], 1)[-1]
    assert note.internal and note.author_id == alpha["agent"].user_id
    assert note.body_md == f"{UNVERIFIED_PREFIX}\n\nRefund approved. Closing this one."
    assert note.message_id == "<staff-reply-9@alpha.test>"
    before = len(smtp.delivered("requester@alpha.test"))
    run_jobs(app)
    assert len(smtp.delivered("requester@alpha.test")) == before  # notes never reach them
    assert tickets_of(session, alpha["org"])[0].status == "new"  # a note changes nothing


def _mail(body: str, **headers: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    for name, value in {"From": "Nora <nora@example.net>", "To": ORG_ADDRESS, **headers}.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def test_staff_cannot_open_a_ticket_by_email_and_deactivated_senders_fail(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    alpha = world["alpha"]
    row = deliver(app, client, _mail("New thing", From="agent@alpha.test", Subject="Hi"))
    assert row.status == "failed" and row.org_id == alpha["org"].id
    assert row.reason == (
        "agent@alpha.test is staff of Alpha: email from staff is not verified, so it "
        "cannot open a ticket — open it in the app instead"
    )
    session.execute(update(User).where(User.email == "requester@alpha.test").values(active=False))
    session.commit()
    row = deliver(app, client, _mail("Still here", From="requester@alpha.test", Subject="Hi"))
    assert (row.status, row.reason) == ("failed", "the sender requester@alpha.test is deactivated")
    assert tickets_of(session, alpha["org"]) == []


def test_subjects_empty_bodies_and_long_bodies(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    alpha = world["alpha"]
    deliver(
        app, client, _mail("", Subject="Re: AW: Fwd: [beta #9] SV: Billing", Message_ID="<a@x>")
    )
    deliver(app, client, _mail("Body only", Message_ID="<b@x>"))
    long_text = "word " * (BODY_MAX // 4)
    row = deliver(app, client, _mail(long_text, Subject="Long", Message_ID="<c@x>"))
    assert row.status == "processed", row.reason
    subjects = [t.subject for t in tickets_of(session, alpha["org"])]
    assert subjects == ["Billing", "(no subject)", "Long"]
    [empty] = comments(session, alpha["org"], 1)
    assert empty.body_md == EMPTY_BODY
    [cut] = comments(session, alpha["org"], 3)
    assert len(cut.body_md) < BODY_MAX
    assert cut.body_md.endswith("[… cut here: the whole email is kept as received]")


def test_unusable_messages_fail_with_a_reason_and_never_crash(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    cases = {
        b"\x00\xff\xfe binary garbage \x00\r\n\r\n\x89PNG": "no usable sender address (From: none)",
        b"Subject: no sender\r\nTo: " + ORG_ADDRESS.encode() + b"\r\n\r\nhello\r\n": (
            "no usable sender address (From: none)"
        ),
        _mail("Where am I?", To=f"support@{MAIL_DOMAIN}", Subject="x"): (
            f"no organization for recipient support@{MAIL_DOMAIN}: mail for an org goes to "
            f"support+<org-slug>@{MAIL_DOMAIN}"
        ),
        _mail("nobody", To="undisclosed-recipients:;", Subject="y"): (
            "no organization for recipient (no recipient address): mail for an org goes to "
            f"support+<org-slug>@{MAIL_DOMAIN}"
        ),
    }
    for raw, reason in cases.items():
        row = deliver(app, client, raw)
        assert (row.status, row.reason) == ("failed", reason)
        assert raw_of(app, row.id) == raw
    assert tickets_of(session, world["alpha"]["org"]) == []


def test_the_envelope_recipient_names_the_org_and_attachments_are_noted(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = "nora@example.net", "undisclosed-recipients:;", "Logs"
    msg.set_content("Logs attached.")
    msg.add_attachment(b"\x00" * 200_000, maintype="application", subtype="zip", filename="l.zip")
    row = deliver(app, client, msg.as_bytes(), to=ORG_ADDRESS)
    assert row.status == "processed", row.reason
    assert row.reason == (
        f"new ticket for {ORG_ADDRESS}; 1 attachment(s) not imported (kept in the raw message)"
    )
    assert raw_of(app, row.id).startswith(f"X-Original-To: {ORG_ADDRESS}\r\n".encode())
    [ticket] = tickets_of(session, world["alpha"]["org"])
    assert comments(session, world["alpha"]["org"], ticket.number)[0].body_md == "Logs attached."
