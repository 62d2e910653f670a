"""Inbound email: store what arrived, then turn it into a comment, a ticket, or a reason.

Why in two steps: the HTTP request only stores the raw message (for audit; never rendered as
HTML) and queues `jobs.inbound.process`; everything that can go wrong happens in the job and
ends as a status an admin can read — processed, ignored (auto-replies, bulk, bounces, our
own mail, duplicates) or failed with the reason. Nothing is lost: the raw bytes stay.

Why it cannot double-post: the row is locked and processed only while `received`, so a
repeated job does nothing; a per-(org, Message-ID) advisory lock makes two copies of one
email take turns, and the second finds the first one's comment and is ignored. The status
change commits in the same transaction as the comment or ticket it describes.

Trust (docs/decisions/0006-inbound-email-trust.md): the From address is not verified.
Requesters and CC'd participants reply as themselves, as in every help desk; mail from the
org's staff never becomes a public reply — it is kept as an internal note marked unverified.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, event, func, select
from sqlalchemy.orm import Session, undefer

from helpdesk.db import utcnow
from helpdesk.models import (
    BODY_MAX,
    SUBJECT_MAX,
    Channel,
    Comment,
    EventKind,
    InboundMessage,
    InboundStatus,
    Membership,
    Organization,
    Role,
    Status,
    Ticket,
    User,
)
from helpdesk.rendering import render_markdown
from helpdesk.services import mail_parse, orgs, outbox, search, sla, tasks, tickets
from helpdesk.services.errors import NotFound, ValidationError
from helpdesk.services.sla_admin import require_admin
from helpdesk.services.threading import MailIdentity, Target, find_target
from helpdesk.tenancy import tenant_scope, unscoped

PROCESS_JOB = "jobs.inbound.process"
UNVERIFIED_PREFIX = "Received by email (sender not verified):"
EMPTY_BODY = "(This email had no text.)"
_BODY_ROOM = BODY_MAX - 400  # room left for the unverified prefix and the cut notice
log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: InboundStatus
    reason: str | None = None
    org_id: int | None = None
    ticket_id: int | None = None
    comment_id: int | None = None
    committed: bool = False  # the row's status was committed with the comment/ticket


def store(session: Session, raw: bytes, envelope_to: str | None = None) -> InboundMessage:
    """Store a received message and queue its processing after the commit.

    An envelope recipient (from the inbound service) is prepended as an X-Original-To
    header, as a mail server does on local delivery.
    """
    if envelope_to:
        raw = f"X-Original-To: {envelope_to}\r\n".encode() + raw
    message_id, subject = mail_parse.peek(raw)
    row = InboundMessage(
        raw=raw,
        size=len(raw),
        message_id=message_id,
        subject=subject or None,
        status=InboundStatus.RECEIVED.value,
    )
    session.add(row)
    session.flush()
    tasks.after_commit(session, PROCESS_JOB, row.id, queue="default")
    session.commit()
    return row


def process(
    session: Session, inbound_id: int, identity: MailIdentity, now: datetime | None = None
) -> str | None:
    """Process one received message once; return its new status (None if not waiting)."""
    now = now or utcnow()
    row = _lock(session, inbound_id, with_raw=True)
    if row is None:
        session.rollback()
        return None
    try:
        outcome = _handle(session, row, identity, now)
    except Exception as exc:
        session.rollback()
        log.exception("inbound_failed inbound_id=%s", inbound_id)
        outcome = Outcome(
            InboundStatus.FAILED,
            f"could not be processed ({type(exc).__name__}); the raw message is kept — "
            "an operator can find the cause in the worker log",
        )
    _finish(session, inbound_id, outcome, now)
    log.info("inbound_done inbound_id=%s status=%s", inbound_id, outcome.status.value)
    return outcome.status.value


def _lock(session: Session, inbound_id: int, with_raw: bool = False) -> InboundMessage | None:
    stmt = select(InboundMessage).where(InboundMessage.id == inbound_id).with_for_update()
    if with_raw:
        stmt = stmt.options(undefer(InboundMessage.raw))
    row = session.scalar(stmt)
    return row if row is not None and row.status == InboundStatus.RECEIVED else None


def _finish(session: Session, inbound_id: int, outcome: Outcome, now: datetime) -> None:
    """Record the outcome (after a post, only the ids the post's commit could not know)."""
    row = session.get(InboundMessage, inbound_id, with_for_update=True, populate_existing=True)
    if row is None or (row.status != InboundStatus.RECEIVED and not outcome.committed):
        session.rollback()
        return
    row.status = outcome.status.value
    row.reason = outcome.reason[:4000] if outcome.reason else None
    row.org_id = outcome.org_id if outcome.org_id is not None else row.org_id
    row.ticket_id = outcome.ticket_id if outcome.ticket_id is not None else row.ticket_id
    row.comment_id = outcome.comment_id
    row.processed_at = row.processed_at or now
    session.commit()


def _handle(
    session: Session, row: InboundMessage, identity: MailIdentity, now: datetime
) -> Outcome:
    mail = mail_parse.parse(row.raw)
    ignored = _noise(session, mail, identity, now)
    if ignored is not None:
        return Outcome(InboundStatus.IGNORED, ignored)
    target = find_target(session, mail, identity)
    org_id = target.org.id if target is not None else None
    if mail.fatal:
        return Outcome(InboundStatus.FAILED, mail.fatal, org_id)
    if mail.sender is None:
        sender = mail_parse.header_text(mail.message, "From")[:200] or "none"
        return Outcome(InboundStatus.FAILED, f"no usable sender address (From: {sender})", org_id)
    if target is None:
        return Outcome(InboundStatus.FAILED, _no_org_reason(mail, identity))
    with tenant_scope(session, target.org.id):
        return _deliver(session, row, mail, target, now)


def _noise(
    session: Session, mail: mail_parse.ParsedMail, identity: MailIdentity, now: datetime
) -> str | None:
    """Why the message is to be ignored (loop, bounce, automatic or bulk mail), or None."""
    if identity.is_own_id(mail.message_id) or identity.is_own_address(mail.sender):
        return "our own outgoing email came back (mail loop)"
    bounce = mail_parse.bounce_info(mail.message)
    if bounce is not None:
        return _record_bounce(session, bounce, now)
    return mail_parse.noise_reason(mail.message)


def _record_bounce(session: Session, bounce: mail_parse.Bounce, now: datetime) -> str:
    if bounce.delay_only:
        return "delivery delay notice (the mail server is still trying)"
    if not bounce.recipients:
        return "delivery-failure report without a failed recipient we could read"
    users = list(session.scalars(select(User).where(User.email.in_(bounce.recipients))))
    for user in users:
        user.email_bounced_at = now
        user.email_bounce_reason = bounce.reason[:500]
    failed = ", ".join(bounce.recipients[:5])
    recorded = "recorded on the user" if users else "no user has this address"
    return f"bounce: delivery to {failed} failed ({bounce.reason}); {recorded}"


def _no_org_reason(mail: mail_parse.ParsedMail, identity: MailIdentity) -> str:
    shown = ", ".join(mail.recipients[:5]) or "(no recipient address)"
    example = f"{identity.reply_prefix}<org-slug>{identity.reply_suffix}"
    return f"no organization for recipient {shown}: mail for an org goes to {example}"


def _deliver(
    session: Session,
    row: InboundMessage,
    mail: mail_parse.ParsedMail,
    target: Target,
    now: datetime,
) -> Outcome:
    org, ticket = target.org, target.ticket
    assert mail.sender is not None
    duplicate = _duplicate_of(session, org, mail.message_id)
    if duplicate is not None:
        reason = f"duplicate: this email ({mail.message_id}) is already on ticket #{duplicate}"
        return Outcome(InboundStatus.IGNORED, reason, org.id)
    user = orgs.find_user(session, mail.sender)
    if user is not None and not user.active:
        return Outcome(InboundStatus.FAILED, f"the sender {user.email} is deactivated", org.id)
    member = orgs.find_membership(session, org.id, user.id) if user is not None else None
    if ticket is None and member is not None and member.is_staff:
        reason = (
            f"{user.email if user else 'the sender'} is staff of {org.name}: email from staff "
            "is not verified, so it cannot open a ticket — open it in the app instead"
        )
        return Outcome(InboundStatus.FAILED, reason, org.id)
    notes = "; ".join([target.rule, *mail.notes])
    _mark_processed(row, org, ticket, notes, now)
    try:
        with _stamped(session, mail.message_id):
            comment = _post(session, mail, target, user, member)
    except (ValidationError, NotFound) as exc:
        session.rollback()
        return Outcome(InboundStatus.FAILED, f"not saved: {_describe(exc)}", org.id)
    return Outcome(
        InboundStatus.PROCESSED, notes, org.id, comment.ticket_id, comment.id, committed=True
    )


def _mark_processed(
    row: InboundMessage, org: Organization, ticket: Ticket | None, notes: str, now: datetime
) -> None:
    """Stage the row's new status: it commits together with the comment or ticket."""
    row.status = InboundStatus.PROCESSED.value
    row.org_id = org.id
    row.ticket_id = ticket.id if ticket is not None else None
    row.reason = notes[:4000]
    row.processed_at = now


def _post(
    session: Session,
    mail: mail_parse.ParsedMail,
    target: Target,
    user: User | None,
    member: Membership | None,
) -> Comment:
    """Write the email as a new ticket, an internal note (staff) or a reply; commits."""
    org, ticket = target.org, target.ticket
    body = _body(mail)
    if ticket is None:
        sender = user or orgs.ensure_user(session, mail.sender or "", mail.sender_name)
        requester = orgs.ensure_member(session, org, sender, Role.REQUESTER)
        subject = mail_parse.ticket_subject(mail.subject)[:SUBJECT_MAX]
        data = tickets.NewTicket(subject=subject, body=body)
        new = tickets.open_ticket(session, org, requester, data, Channel.EMAIL)
        first = session.scalar(select(Comment).where(Comment.ticket_id == new.id).limit(1))
        assert first is not None
        return first
    if member is not None and member.is_staff:
        note = f"{UNVERIFIED_PREFIX}\n\n{body}"
        return tickets.add_comment(
            session, member, ticket.number, note, internal=True, channel=Channel.EMAIL
        )
    sender = user or orgs.ensure_user(session, mail.sender or "", mail.sender_name)
    member = orgs.ensure_member(session, org, sender, Role.REQUESTER)
    if ticket.requester_id == sender.id:
        return tickets.add_comment(session, member, ticket.number, body, channel=Channel.EMAIL)
    return _participant_reply(session, member, ticket, body)


def _participant_reply(session: Session, member: Membership, ticket: Ticket, body: str) -> Comment:
    """A public reply by a CC'd participant who is not the ticket's requester; commits.

    `tickets.add_comment` loads the ticket as its author, and a requester may load only
    their own tickets, so this path writes the comment with the same steps: rendered body,
    search index, SLA hook, outbox event, and a pending/solved ticket reopened.
    """
    text = tickets.clean_body(body)
    comment = Comment(
        org_id=ticket.org_id,
        ticket_id=ticket.id,
        author_id=member.user_id,
        body_md=text,
        body_html=str(render_markdown(text)),
        internal=False,
        channel=Channel.EMAIL.value,
    )
    session.add(comment)
    session.flush()
    search.index_comment(ticket, text, internal=False)
    now = utcnow()
    sla.comment_added(session, ticket, comment, member, now)
    outbox.emit(
        session,
        ticket.org_id,
        EventKind.COMMENT_CREATED,
        ticket=ticket,
        actor_id=member.user_id,
        payload={"comment_id": comment.id, "internal": False},
    )
    if ticket.status in (Status.PENDING, Status.SOLVED):
        tickets.apply_changes(session, member, ticket, {"status": Status.OPEN.value})
    ticket.updated_at = now
    session.commit()
    return comment


def _body(mail: mail_parse.ParsedMail) -> str:
    text = mail.body.strip("\n") if mail.body.strip() else EMPTY_BODY
    if len(text) > _BODY_ROOM:
        text = text[:_BODY_ROOM] + "\n\n[… cut here: the whole email is kept as received]"
    return text


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{field}: {message}" for field, message in exc.errors.items())
    return str(exc)


def _duplicate_of(session: Session, org: Organization, message_id: str | None) -> int | None:
    """The ticket number already holding this Message-ID in the org (serialized per id)."""
    if not message_id:
        return None
    key = f"inbound:{org.id}:{message_id}"
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
    return session.scalar(
        select(Ticket.number)
        .join(Comment, Comment.ticket_id == Ticket.id)
        .where(Comment.message_id == message_id)
        .limit(1)
    )


@contextmanager
def _stamped(session: Session, message_id: str | None) -> Iterator[None]:
    """Set `message_id` on the comments the ticket services add (same flush, same commit)."""

    def stamp(sess: Session, _context: Any, _instances: Any) -> None:
        for obj in sess.new:
            if isinstance(obj, Comment) and obj.message_id is None:
                obj.message_id = message_id

    if not message_id:
        yield
        return
    event.listen(session, "before_flush", stamp)
    try:
        yield
    finally:
        event.remove(session, "before_flush", stamp)


# --- the admin page ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InboundRow:
    id: int
    received_at: datetime
    status: str
    reason: str | None
    subject: str | None
    size: int
    ticket_number: int | None


def list_for_org(session: Session, actor: Membership, limit: int = 200) -> list[InboundRow]:
    """The org's inbound messages for its admins: failed first, then newest first."""
    require_admin(actor, "see the organization's inbound email")
    failed_first = case((InboundMessage.status == InboundStatus.FAILED.value, 0), else_=1)
    rows = session.execute(
        select(
            InboundMessage.id,
            InboundMessage.received_at,
            InboundMessage.status,
            InboundMessage.reason,
            InboundMessage.subject,
            InboundMessage.size,
            Ticket.number,
        )
        .outerjoin(Ticket, Ticket.id == InboundMessage.ticket_id)
        .where(InboundMessage.org_id == actor.org_id)
        .order_by(failed_first, InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(limit)
    ).all()
    return [InboundRow(*r) for r in rows]


def status_counts(session: Session, actor: Membership) -> dict[str, int]:
    """How many of the org's inbound messages are in each status."""
    require_admin(actor, "see the organization's inbound email")
    counts = dict.fromkeys((s.value for s in InboundStatus), 0)
    with unscoped(session):
        rows = session.execute(
            select(InboundMessage.status, func.count())
            .where(InboundMessage.org_id == actor.org_id)
            .group_by(InboundMessage.status)
        ).all()
    counts.update({status: n for status, n in rows})
    return counts
