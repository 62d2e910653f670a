"""Inbound email finds its ticket: reply token, In-Reply-To/References, subject tag — and
only through what this system minted or stored. Outgoing mail carries the reply address and
threads under the requester's last email; a reply to it comes back to the same ticket."""

from __future__ import annotations

import email.policy
from email.message import EmailMessage
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from helpdesk.models import Role, Status
from helpdesk.services import tickets
from helpdesk.tenancy import tenant_scope
from tests.factories import make_ticket
from tests.jobs.inbound_helpers import (  # noqa: F401 - fixtures
    _inbound_app,
    acknowledged_ticket,
    comments,
    deliver,
    eml,
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

ROOT = f"<helpdesk.ticket.alpha.1@{MAIL_DOMAIN}>"


def test_requester_email_carries_a_reply_token_and_the_thread_root(
    app: Flask, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    ticket, mail = acknowledged_ticket(app, session, world["alpha"], smtp)
    session.refresh(ticket)
    token = ticket.reply_token
    assert token is not None and len(token) == 32 and token == token.lower()
    assert mail.message["Reply-To"] == f"support+{token}@{MAIL_DOMAIN}"
    assert mail.message["In-Reply-To"] == ROOT and mail.message["References"] == ROOT
    # A second email about the same ticket reuses the token (minted once).
    with tenant_scope(session, world["alpha"]["org"].id):
        tickets.add_comment(session, world["alpha"]["agent"], 1, "Second update")
    run_jobs(app)
    second = smtp.delivered("requester@alpha.test")[-1]
    assert second.message["Reply-To"] == f"support+{token}@{MAIL_DOMAIN}"
    # Beta's ticket gets its own token.
    beta_ticket, beta_mail = acknowledged_ticket(app, session, world["beta"], smtp)
    session.refresh(beta_ticket)
    assert beta_ticket.reply_token not in (None, token)
    assert beta_mail.message["Reply-To"] == f"support+{beta_ticket.reply_token}@{MAIL_DOMAIN}"


def test_gmail_reply_to_the_token_address_becomes_the_requesters_comment(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    _ticket, mail = acknowledged_ticket(app, session, alpha, smtp)
    row = deliver(app, client, eml("gmail_reply.eml", **reply_values(mail)))
    assert row.status == "processed", row.reason
    assert row.org_id == alpha["org"].id and "reply token" in (row.reason or "")
    thread = comments(session, alpha["org"], 1)
    assert len(thread) == 2
    reply = thread[-1]
    assert reply.author_id == alpha["requester"].user_id and not reply.internal
    assert reply.channel == "email" and reply.id == row.comment_id
    assert reply.message_id == "<CAJx8s+Q2Yb6pTnFm3=kq1w@mail.gmail.com>"
    assert reply.body_md.startswith("Thanks! I unplugged it") and "toner — should" in reply.body_md
    assert "wrote:" not in reply.body_md and "Please unplug" not in reply.body_md
    assert tickets_of(session, world["beta"]["org"]) == []


def test_outlook_reply_threads_by_in_reply_to_alone_and_reopens(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    _ticket, mail = acknowledged_ticket(app, session, alpha, smtp)
    with tenant_scope(session, alpha["org"].id):
        tickets.update_fields(session, alpha["agent"], 1, {"status": "solved"})
    row = deliver(app, client, eml("outlook_reply.eml", **reply_values(mail)))
    assert row.status == "processed", row.reason
    assert f"reply to {mail.message['Message-ID']}" in (row.reason or "")
    reply = comments(session, alpha["org"], 1)[-1]
    assert reply.author_id == alpha["requester"].user_id
    # Windows-1252 decoded (curly quotes, en dash, bullet); the original message cut off.
    assert reply.body_md.startswith("It’s back on fire – the “eco mode” did not help.")  # noqa: RUF001
    assert "Facilities • Alpha" in reply.body_md
    assert "Original Message" not in reply.body_md and "unplug" not in reply.body_md
    assert tickets_of(session, alpha["org"])[0].status == Status.OPEN


def test_a_reply_to_the_sent_email_round_trips_and_our_answer_threads_under_it(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["agent"], 1, "Could you send a photo?")
    run_jobs(app)
    sent = smtp.delivered("requester@alpha.test")[-1]
    assert "Could you send a photo?" in sent.text()
    # The requester's client answers the Reply-To, In-Reply-To the email it got.
    answer = EmailMessage(policy=email.policy.SMTP)
    answer["From"] = "Rita Requester <requester@alpha.test>"
    answer["To"] = str(sent.message["Reply-To"])
    answer["Subject"] = f"Re: {sent.message['Subject']}"
    answer["Message-ID"] = "<round-trip-1@alpha-customer.test>"
    answer["In-Reply-To"] = str(sent.message["Message-ID"])
    answer["References"] = f"{ROOT} {sent.message['Message-ID']}"
    answer.set_content("Here it is: the tray is melted.\n\n> Could you send a photo?\n")
    row = deliver(app, client, answer.as_bytes())
    assert row.status == "processed", row.reason
    thread = comments(session, alpha["org"], 1)
    assert thread[-1].body_md == "Here it is: the tray is melted."
    assert thread[-1].author_id == alpha["requester"].user_id
    assert len(tickets_of(session, alpha["org"])) == 1
    # Our next answer threads under the requester's email, with the root first.
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["agent"], 1, "Thanks, a technician is on the way.")
    run_jobs(app)
    answer_mail = smtp.delivered("requester@alpha.test")[-1]
    assert "technician" in answer_mail.text()
    assert answer_mail.message["In-Reply-To"] == "<round-trip-1@alpha-customer.test>"
    assert answer_mail.message["References"].split() == [ROOT, "<round-trip-1@alpha-customer.test>"]
    assert answer_mail.message["Reply-To"] == sent.message["Reply-To"]


def test_cc_reply_all_joins_the_ticket_as_a_participant(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    first = deliver(app, client, eml("original_with_cc.eml"))
    assert first.status == "processed", first.reason
    [ticket] = tickets_of(session, alpha["org"])
    assert ticket.subject == "VPN drops every hour"
    assert ticket.requester_id == alpha["requester"].user_id
    row = deliver(app, client, eml("cc_reply_all.eml"))
    assert row.status == "processed", row.reason
    assert row.ticket_id == ticket.id and len(tickets_of(session, alpha["org"])) == 1
    opening, reply = comments(session, alpha["org"], ticket.number)
    assert opening.message_id == "<8f1c2d3e-original@alpha-customer.test>"
    assert reply.author.email == "colin@alpha-customer.test" and not reply.internal
    assert reply.body_md.startswith("Same here: it drops at :00")
    assert "Since Monday" not in reply.body_md
    with tenant_scope(session, alpha["org"].id):
        from helpdesk.services import orgs

        member = orgs.find_membership(session, alpha["org"].id, reply.author_id)
        assert member is not None and member.role == Role.REQUESTER
    session.rollback()


def test_a_forged_reply_token_never_attaches(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    ticket, _mail = acknowledged_ticket(app, session, alpha, smtp)
    session.refresh(ticket)
    real = ticket.reply_token or ""
    forged = real[:-1] + ("a" if real[-1] != "a" else "b")  # one character off
    # With the org's address on Cc: a new ticket for the stranger, never ticket #1.
    row = deliver(
        app, client, eml("forged_token.eml", forged=forged, cc=f"support+alpha@{MAIL_DOMAIN}")
    )
    assert row.status == "processed", row.reason
    numbers = [t.number for t in tickets_of(session, alpha["org"])]
    assert numbers == [1, 2] and row.ticket_id != ticket.id
    assert len(comments(session, alpha["org"], 1)) == 1
    second = tickets_of(session, alpha["org"])[1]
    assert second.requester.email == "mallory@attacker.example"
    # With no org address at all: failed, with the reason.
    again = eml("forged_token.eml", forged="z" * 32, cc="nobody@example.net")
    failed = deliver(app, client, again.replace(b"forged-4242", b"forged-4243"))
    assert failed.status == "failed"
    assert (failed.reason or "").startswith("no organization for recipient")
    assert len(comments(session, alpha["org"], 1)) == 1


def _plain(sender: str, to: str, subject: str, body: str, **headers: str) -> bytes:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = headers.pop("message_id", f"<{abs(hash((sender, subject, body)))}@x.test>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def test_subject_tag_and_thread_ids_attach_only_for_participants(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    alpha, org_address = world["alpha"], f"support+alpha@{MAIL_DOMAIN}"
    acknowledged_ticket(app, session, alpha, smtp)
    # The requester writes to the org address with the tag only: joins ticket #1.
    own = _plain("requester@alpha.test", org_address, "Re: [alpha #1] Printer", "Any news?")
    row = deliver(app, client, own)
    assert row.status == "processed" and "subject tag [alpha #1]" in (row.reason or "")
    assert comments(session, alpha["org"], 1)[-1].body_md == "Any news?"
    # A stranger with the same tag, and one quoting our (guessable) thread root: new tickets.
    tagged = _plain("eve@example.net", org_address, "Re: [alpha #1] Printer", "Me too")
    rooted = _plain("eve2@example.net", org_address, "Re: Printer", "Me three", In_Reply_To=ROOT)
    for raw in (tagged, rooted):
        stranger = deliver(app, client, raw)
        assert stranger.status == "processed"
        assert (stranger.reason or "").startswith("new ticket for")
    assert [t.number for t in tickets_of(session, alpha["org"])] == [1, 2, 3]
    assert len(comments(session, alpha["org"], 1)) == 2
    # A thread root on someone else's domain is not ours, even from the requester.
    foreign = _plain(
        "requester@alpha.test", org_address, "Printer", "Foreign root",
        In_Reply_To="<helpdesk.ticket.alpha.1@attacker.example>",
    )  # fmt: skip
    row = deliver(app, client, foreign)
    assert (row.reason or "").startswith("new ticket for")
    assert len(tickets_of(session, alpha["org"])) == 4


def test_a_token_for_another_orgs_ticket_goes_to_that_ticket_only(
    app: Flask, client: FlaskClient, session: Session, world: dict[str, Any], smtp: SmtpSink
) -> None:
    """The token names the ticket: alpha's address on Cc does not pull it into alpha."""
    beta = world["beta"]
    ticket, mail = acknowledged_ticket(app, session, beta, smtp)
    raw = _plain(
        "requester@beta.test",
        f"{mail.message['Reply-To']}, support+alpha@{MAIL_DOMAIN}",
        "Re: hello",
        "Beta reply",
    )
    row = deliver(app, client, raw)
    assert row.status == "processed" and row.org_id == beta["org"].id
    assert row.ticket_id == ticket.id
    assert comments(session, beta["org"], 1)[-1].body_md == "Beta reply"
    assert tickets_of(session, world["alpha"]["org"]) == []
