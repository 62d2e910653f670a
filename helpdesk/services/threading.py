"""Which ticket an inbound email belongs to, and the threading headers of outgoing email.

Why this is strict: a peer let spoofed mail post as an agent by trusting ids written in the
message. Here an email joins a ticket only through something this system minted or stored,
tried in this order:

1. A reply token in a recipient address (the REPLY_ADDRESS pattern) equal to a ticket's
   stored `reply_token`. A forged or unknown token matches nothing and falls through to the
   next rules — never to a ticket.
2. In-Reply-To/References naming ids we sent (thread roots, delivery ids: on MAIL_FROM's
   domain only, and looked up rather than believed) or ids stored on comments. Our ids are
   predictable, so this rule also requires the sender to be a participant.
3. A subject tag "[slug #123]", again only for a participant.
4. Otherwise a new ticket in the org whose slug is the plus-part of a recipient address.

Participants: the requester, anyone who wrote on the ticket, the org's staff (whose mail
becomes an unverified internal note, see docs/decisions/0006), and the addresses on an
email already attached to the ticket (a CC'd colleague's reply-all). The lookups cross orgs
on purpose — the org is what they find — so they run `unscoped` with explicit filters.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from helpdesk.models import (
    STAFF_ROLES,
    Comment,
    Delivery,
    InboundMessage,
    InboundStatus,
    Membership,
    Organization,
    OutboxEvent,
    Ticket,
)
from helpdesk.services import orgs
from helpdesk.services.mail_parse import ParsedMail, header_addresses, subject_tag
from helpdesk.services.validation import normalize_email
from helpdesk.tenancy import unscoped

TOKEN_RE = re.compile(r"[a-z2-7]{32}")  # 160 random bits, lower-case base32
_ROOT_RE = re.compile(r"<helpdesk\.ticket\.([a-z0-9-]{1,63})\.(\d{1,9})@([^<>@\s]+)>", re.I)
_DELIVERY_RE = re.compile(r"<helpdesk\.delivery\.(\d{1,18})@([^<>@\s]+)>", re.I)
_OURS_RE = re.compile(r"<helpdesk\.[^<>@\s]+@([^<>@\s]+)>", re.I)
_SENDABLE_ID_RE = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")  # what mail_transport sends
_IDS_TRIED = 50  # References can be long; the newest ids matter
_HEADS_READ = 20  # earlier emails of a ticket whose addresses count as participants
_HEAD_BYTES = 65_536


@dataclass(frozen=True)
class MailIdentity:
    """Our addresses and Message-ID domain, from MAIL_FROM and REPLY_ADDRESS."""

    from_addr: str
    domain: str
    reply_prefix: str
    reply_suffix: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MailIdentity:
        """Build from the app config (REPLY_ADDRESS holds "{token}" exactly once)."""
        from_addr = str(config["MAIL_FROM"]).strip().lower()
        prefix, _, suffix = str(config["REPLY_ADDRESS"]).strip().lower().partition("{token}")
        return cls(from_addr, from_addr.rpartition("@")[2], prefix, suffix)

    def token_of(self, address: str) -> str | None:
        """Return the token part of an address written like REPLY_ADDRESS, else None."""
        if not (address.startswith(self.reply_prefix) and address.endswith(self.reply_suffix)):
            return None
        token = address[len(self.reply_prefix) : len(address) - len(self.reply_suffix)]
        return token if re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", token) else None

    def is_own_address(self, address: str | None) -> bool:
        """True for MAIL_FROM and every address of the REPLY_ADDRESS pattern."""
        return address is not None and (address == self.from_addr or bool(self.token_of(address)))

    def is_own_id(self, message_id: str | None) -> bool:
        """True for a <helpdesk.…@our-domain> Message-ID: one we sent."""
        match = _OURS_RE.fullmatch(message_id or "")
        return match is not None and match.group(1).lower() == self.domain


@dataclass(frozen=True)
class Target:
    org: Organization
    ticket: Ticket | None  # None: open a new ticket in org
    rule: str


def find_target(session: Session, mail: ParsedMail, identity: MailIdentity) -> Target | None:
    """Apply the four rules in order; None when no org could be found for the message."""
    with unscoped(session):
        found = (
            _by_token(session, mail, identity)
            or _by_message_ids(session, mail, identity)
            or _by_subject_tag(session, mail)
        )
        if found is not None:
            return found
        for address in mail.recipients:
            token = identity.token_of(address)
            org = orgs.find_org(session, token) if token else None
            if org is not None:
                return Target(org, None, f"new ticket for {address}")
    return None


def _target(session: Session, ticket: Ticket, rule: str) -> Target | None:
    org = session.get(Organization, ticket.org_id)
    return Target(org, ticket, rule) if org is not None else None


def _by_token(session: Session, mail: ParsedMail, identity: MailIdentity) -> Target | None:
    for address in mail.recipients:
        token = identity.token_of(address)
        if token is None or not TOKEN_RE.fullmatch(token):
            continue
        ticket = session.scalar(select(Ticket).where(Ticket.reply_token == token))
        if ticket is not None:
            return _target(session, ticket, "reply token")
    return None


def _by_message_ids(session: Session, mail: ParsedMail, identity: MailIdentity) -> Target | None:
    for message_id in mail.thread_ids[:_IDS_TRIED]:
        ticket = _ticket_for_id(session, message_id, identity)
        if ticket is not None and is_participant(session, ticket, mail.sender):
            return _target(session, ticket, f"reply to {message_id}")
    return None


def _by_subject_tag(session: Session, mail: ParsedMail) -> Target | None:
    tag = subject_tag(mail.subject)
    org = orgs.find_org(session, tag[0]) if tag else None
    if tag is None or org is None:
        return None
    ticket = session.scalar(select(Ticket).where(Ticket.org_id == org.id, Ticket.number == tag[1]))
    if ticket is None or not is_participant(session, ticket, mail.sender):
        return None
    return Target(org, ticket, f"subject tag [{org.slug} #{ticket.number}]")


def _ticket_for_id(session: Session, message_id: str, identity: MailIdentity) -> Ticket | None:
    """The ticket a Message-ID belongs to: one of ours (looked up) or one stored on a comment."""
    if identity.is_own_id(message_id):
        root = _ROOT_RE.fullmatch(message_id)
        if root is not None:
            org = orgs.find_org(session, root.group(1).lower())
            if org is None:
                return None
            number = int(root.group(2))
            return session.scalar(
                select(Ticket).where(Ticket.org_id == org.id, Ticket.number == number)
            )
        delivery = _DELIVERY_RE.fullmatch(message_id)
        if delivery is None:
            return None  # a digest or an admin notice: not about one ticket
        ticket_id = session.scalar(
            select(OutboxEvent.ticket_id)
            .join(Delivery, Delivery.event_id == OutboxEvent.id)
            .where(Delivery.id == int(delivery.group(1)))
        )
        return session.get(Ticket, ticket_id) if ticket_id is not None else None
    ticket_id = session.scalar(
        select(Comment.ticket_id)
        .where(Comment.message_id == message_id)
        .order_by(Comment.id.desc())
        .limit(1)
    )
    return session.get(Ticket, ticket_id) if ticket_id is not None else None


def is_participant(session: Session, ticket: Ticket, address: str | None) -> bool:
    """True if the address belongs to the requester, a writer, staff, or a CC'd recipient."""
    if address is None:
        return False
    user = orgs.find_user(session, address)
    if user is not None:
        if user.id == ticket.requester_id:
            return True
        wrote = session.scalar(
            select(Comment.id)
            .where(Comment.ticket_id == ticket.id, Comment.author_id == user.id)
            .limit(1)
        )
        role = session.scalar(
            select(Membership.role).where(
                Membership.org_id == ticket.org_id, Membership.user_id == user.id
            )
        )
        if wrote is not None or role in STAFF_ROLES:
            return True
    heads = session.scalars(
        select(func.substr(InboundMessage.raw, 1, _HEAD_BYTES))
        .where(
            InboundMessage.ticket_id == ticket.id,
            InboundMessage.status == InboundStatus.PROCESSED.value,
        )
        .order_by(InboundMessage.id.desc())
        .limit(_HEADS_READ)
    )
    return any(address in header_addresses(head) for head in heads)


# --- outgoing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingThread:
    in_reply_to: str
    references: list[str]
    reply_to: str | None


def outgoing_thread(
    session: Session, ticket: Ticket, root: str, *, staff: bool, reply_pattern: str
) -> OutgoingThread:
    """Threading headers for an email about a ticket: the root, then the latest inbound email.

    Replying "In-Reply-To" the requester's own last email makes their client thread our
    answer under it; the Reply-To carries the ticket's reply token.
    """
    latest = latest_inbound_id(session, ticket.id, staff=staff)
    references = [root, latest] if latest and latest != root else [root]
    return OutgoingThread(latest or root, references, reply_address(session, ticket, reply_pattern))


def latest_inbound_id(session: Session, ticket_id: int, *, staff: bool) -> str | None:
    """The Message-ID of the newest email stored on the ticket (public ones unless staff)."""
    stmt = (
        select(Comment.message_id)
        .where(Comment.ticket_id == ticket_id, Comment.message_id.is_not(None))
        .order_by(Comment.id.desc())
        .limit(5)
    )
    if not staff:
        stmt = stmt.where(Comment.internal.is_(False))
    for message_id in session.scalars(stmt):
        if message_id and _SENDABLE_ID_RE.fullmatch(message_id):
            return message_id
    return None


def reply_address(session: Session, ticket: Ticket, pattern: str) -> str | None:
    """REPLY_ADDRESS with the ticket's reply token (minted on first use); None if unusable."""
    address = normalize_email(pattern.replace("{token}", reply_token(session, ticket)))
    return address


def reply_token(session: Session, ticket: Ticket) -> str:
    """Return the ticket's reply token, minting it once (a concurrent minter's token wins)."""
    if ticket.reply_token:
        return ticket.reply_token
    candidate = base64.b32encode(secrets.token_bytes(20)).decode().lower()
    session.execute(
        update(Ticket)
        .where(Ticket.id == ticket.id, Ticket.reply_token.is_(None))
        .values(reply_token=candidate)
        .execution_options(synchronize_session=False)
    )
    token = session.scalar(select(Ticket.reply_token).where(Ticket.id == ticket.id)) or candidate
    set_committed_value(ticket, "reply_token", token)
    return token
