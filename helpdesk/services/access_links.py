"""Emailed ticket links: mint, check and revoke them; "this solved my problem".

Why this module is careful (issue 4, and the token failures listed in SECURITY.md):

* A token is `secrets.token_urlsafe(24)` (192 random bits). It exists only in the email;
  the database keeps its SHA-256, so a leaked table hands out no working link. Parsing
  fails closed: anything that is not exactly 32 URL-safe characters is "not valid" without
  a lookup (a peer's blanked token once matched ``%20``).
* The lookup runs before any org is known — the link is the only credential — so it is
  deliberately `unscoped`, by hash (a unique index), and the hash is compared again with
  `hmac.compare_digest`. Everything after it runs inside the ticket's org scope.
* A link gives requester access to one ticket, never more. It stops working when it
  expires (ACCESS_LINK_DAYS), when staff revoke the ticket's links, or when its requester is
  deactivated, leaves the org, is no longer the ticket's requester or has become staff
  (staff log in: an emailed link never carries staff powers).
* Scanner-safe: opening a link (GET) writes nothing to the database. The web layer keeps a
  `Grant` (org slug, ticket number, the token's hash) in the Flask session and every later
  request re-checks that token row with `check_grant`, so revocation and expiry take effect
  at once. `last_used_at` records when the holder last *acted* with the link (a reply or
  "this solved my problem", both POST + CSRF), which a mail scanner's prefetch never does.
* An expired link queues one fresh link email per ticket and requester per hour (a Redis
  SET NX key with a one-hour TTL), so a scanner replaying old links cannot flood anyone.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flask import current_app
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import AccessToken, Comment, Membership, Status, Ticket, TicketEvent
from helpdesk.services import audit, tasks, tickets
from helpdesk.services.errors import ValidationError
from helpdesk.services.orgs import SLUG_RE, find_membership
from helpdesk.services.permissions import load_ticket, require_staff
from helpdesk.tenancy import tenant_scope, unscoped

TOKEN_BYTES = 24  # 192 bits; token_urlsafe(24) is 32 characters
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{32}")
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
FRESH_LINK_JOB = "jobs.links.send_fresh_link"
NUMBER_MAX = 2**31 - 1  # tickets.number is an integer column
FRESH_LINK_EVERY_SECONDS = 3600
log = logging.getLogger(__name__)


class LinkState(StrEnum):
    VALID = "valid"
    UNKNOWN = "unknown"  # malformed, tampered, never minted, or its requester lost access
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class LinkCheck:
    """What a link (or a session grant) is worth right now, with the rows it names."""

    state: LinkState
    token: AccessToken | None = None
    member: Membership | None = None  # the requester's membership in the ticket's org
    ticket: Ticket | None = None


UNKNOWN = LinkCheck(LinkState.UNKNOWN)


@dataclass(frozen=True)
class Grant:
    """A requester session scoped to one ticket: what the web layer keeps after a link.

    It names the ticket as the URL does (org slug, number) and the link by its stored
    SHA-256, never by row ids: the session cookie is signed but readable, and global ids
    would hint at other orgs' volume. The digest is useless without the SECRET_KEY that
    signs the cookie, and the token itself is never kept.
    """

    org_slug: str
    number: int
    token_hash: str

    def as_dict(self) -> dict[str, str | int]:
        return {"org": self.org_slug, "number": self.number, "token": self.token_hash}

    @classmethod
    def from_dict(cls, raw: object) -> Grant | None:
        """Parse a stored grant; anything malformed is None (fail closed)."""
        if not isinstance(raw, dict):
            return None
        slug, number, digest = raw.get("org"), raw.get("number"), raw.get("token")
        if not (isinstance(slug, str) and SLUG_RE.match(slug)):
            return None
        if not (type(number) is int and number > 0):
            return None
        if not (isinstance(digest, str) and _DIGEST_RE.fullmatch(digest)):
            return None
        return cls(slug, number, digest)

    @classmethod
    def of(cls, check: LinkCheck) -> Grant:
        """The grant a valid link check earns."""
        token, member, ticket = check.token, check.member, check.ticket
        assert check.state is LinkState.VALID
        assert token is not None and member is not None and ticket is not None
        return cls(member.org.slug, ticket.number, token.token_hash)


def hash_token(plaintext: str) -> str:
    """Return the SHA-256 hex digest stored for a token."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def mint_link(
    session: Session, ticket: Ticket, now: datetime | None = None
) -> tuple[AccessToken, str]:
    """Add a new link to the ticket for its requester (not committed); return row and token."""
    now = now or utcnow()
    plaintext = secrets.token_urlsafe(TOKEN_BYTES)
    token = AccessToken(
        org_id=ticket.org_id,
        ticket_id=ticket.id,
        requester_id=ticket.requester_id,
        token_hash=hash_token(plaintext),
        created_at=now,
        expires_at=now + timedelta(days=int(current_app.config["ACCESS_LINK_DAYS"])),
    )
    session.add(token)
    session.flush()
    return token, plaintext


def link_url(plaintext: str) -> str:
    """Return the public address of a link: BASE_URL/t/<token>."""
    return f"{str(current_app.config['BASE_URL']).rstrip('/')}/t/{plaintext}"


def check_token(session: Session, plaintext: object, now: datetime | None = None) -> LinkCheck:
    """Look a link up by its hash (across orgs, deliberately) and judge it."""
    if not isinstance(plaintext, str) or not _TOKEN_RE.fullmatch(plaintext):
        return UNKNOWN
    digest = hash_token(plaintext)
    with unscoped(session):  # the link is the only credential: no org is known yet
        token = session.scalar(select(AccessToken).where(AccessToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return UNKNOWN
    with tenant_scope(session, token.org_id):
        ticket = session.get(Ticket, token.ticket_id)
        return _judge(session, token, ticket, now or utcnow())


def check_grant(
    session: Session, grant: Grant, ticket: Ticket, now: datetime | None = None
) -> LinkCheck:
    """Re-check a session grant for this ticket against its token row (in the ticket's org)."""
    if grant.number != ticket.number:
        return UNKNOWN
    token = session.scalar(select(AccessToken).where(AccessToken.token_hash == grant.token_hash))
    if token is None or not hmac.compare_digest(token.token_hash, grant.token_hash):
        return UNKNOWN
    if token.org_id != ticket.org_id or token.ticket_id != ticket.id:
        return UNKNOWN
    return _judge(session, token, ticket, now or utcnow())


def _judge(session: Session, token: AccessToken, ticket: Ticket | None, now: datetime) -> LinkCheck:
    if ticket is None or ticket.requester_id != token.requester_id:
        return UNKNOWN
    member = find_membership(session, token.org_id, token.requester_id)
    if member is None or member.is_staff or not member.user.active:
        return UNKNOWN
    if token.revoked_at is not None:
        return LinkCheck(LinkState.REVOKED, token, member, ticket)
    if token.expires_at <= now:
        return LinkCheck(LinkState.EXPIRED, token, member, ticket)
    return LinkCheck(LinkState.VALID, token, member, ticket)


def record_use(check: LinkCheck, now: datetime | None = None) -> None:
    """Note that the holder acted with the link (saved by the action's own commit)."""
    if check.token is not None:
        check.token.last_used_at = now or utcnow()


def request_fresh_link(redis: Redis, check: LinkCheck) -> bool:
    """Queue a fresh link email for an expired link, at most once an hour per ticket+requester.

    Returns True when a job was queued now. Raises RedisError when Redis is down.
    """
    token = check.token
    if check.state is not LinkState.EXPIRED or token is None:
        return False
    key = f"helpdesk:fresh-link:{token.org_id}:{token.ticket_id}:{token.requester_id}"
    if not redis.set(key, "1", nx=True, ex=FRESH_LINK_EVERY_SECONDS):
        return False
    try:
        tasks.enqueue(FRESH_LINK_JOB, token.org_id, token.ticket_id, token.requester_id,
                      queue="notify")  # fmt: skip
    except RedisError:
        with suppress(RedisError):
            redis.delete(key)  # not queued: let the next visit try again
        raise
    return True


def fresh_link_recipient(session: Session, ticket_id: int, requester_id: int) -> LinkCheck:
    """Return VALID with the ticket and membership when a fresh link may be sent, else UNKNOWN."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.requester_id != requester_id:
        return UNKNOWN
    member = find_membership(session, ticket.org_id, requester_id)
    if member is None or member.is_staff or not member.user.active:
        return UNKNOWN
    return LinkCheck(LinkState.VALID, None, member, ticket)


def find_ticket(session: Session, number: int) -> Ticket | None:
    """Return the ticket with this number in the current org (access is decided by the caller)."""
    if not 1 <= number <= NUMBER_MAX:
        return None  # not a ticket number (and PostgreSQL would refuse it as an integer)
    return session.scalar(select(Ticket).where(Ticket.number == number))


def public_conversation(session: Session, ticket: Ticket) -> list[Comment]:
    """The ticket's public messages in order: never an internal note, whoever asks."""
    stmt = select(Comment).where(Comment.ticket_id == ticket.id, Comment.internal.is_(False))
    return list(session.scalars(stmt.order_by(Comment.created_at, Comment.id)).unique())


def active_link_count(session: Session, ticket: Ticket, now: datetime | None = None) -> int:
    """How many of the ticket's links would still open it."""
    stmt = select(func.count(AccessToken.id)).where(
        AccessToken.ticket_id == ticket.id,
        AccessToken.revoked_at.is_(None),
        AccessToken.expires_at > (now or utcnow()),
    )
    return session.scalar(stmt) or 0


def revoke_links(
    session: Session, actor: Membership, number: int, now: datetime | None = None
) -> int:
    """Revoke every unrevoked link of a ticket (staff only); return how many were revoked."""
    ticket = load_ticket(session, actor, number)
    require_staff(actor, "revoke requester links")
    now = now or utcnow()
    rows = session.scalars(
        select(AccessToken).where(
            AccessToken.ticket_id == ticket.id, AccessToken.revoked_at.is_(None)
        )
    ).all()
    for token in rows:
        token.revoked_at = now
    if rows:
        audit.record(session, ticket.org_id, "access_link.revoked", actor_id=actor.user_id,
                     target_type="ticket", target_id=ticket.id,
                     data={"number": ticket.number, "token_ids": [t.id for t in rows]})  # fmt: skip
    session.commit()
    log.info("links_revoked org_id=%s ticket_id=%s count=%s by=%s", ticket.org_id, ticket.id,
             len(rows), actor.user_id)  # fmt: skip
    return len(rows)


def solve_by_requester(session: Session, actor: Membership, number: int) -> list[TicketEvent]:
    """Mark the ticket solved ("this solved my problem"): its requester or staff.

    Already solved: nothing changes. Closed tickets stay closed.
    """
    ticket = load_ticket(session, actor, number)  # a requester reaches only their own
    if ticket.status == Status.CLOSED:
        raise ValidationError(
            {"status": "this ticket is closed; write to the help desk to open a new request"}
        )
    events = tickets.apply_changes(session, actor, ticket, {"status": Status.SOLVED.value})
    session.commit()
    return events
