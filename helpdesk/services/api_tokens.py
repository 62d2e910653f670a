"""Personal API tokens: random, shown once, stored as SHA-256, scoped to one org."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import ApiToken, Membership
from helpdesk.services import audit
from helpdesk.services.errors import NotFound, ValidationError
from helpdesk.services.validation import one_line
from helpdesk.tenancy import unscoped

TOKEN_PREFIX = "hdk_"  # noqa: S105 - a public marker, not a secret
TOKEN_BYTES = 32  # 256 bits


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session, member: Membership, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Mint a token for this member's org; returns the row and the plaintext (shown once)."""
    label = one_line(name)
    if not label or len(label) > 100:
        raise ValidationError({"name": "name the token (1-100 characters), e.g. 'CI script'"})
    plaintext = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    token = ApiToken(
        org_id=member.org_id,
        user_id=member.user_id,
        name=label,
        token_hash=_digest(plaintext),
        prefix=plaintext[:10],
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    audit.record(session, member.org_id, "token.created", actor_id=member.user_id,
                 target_type="api_token", target_id=token.id,
                 data={"prefix": token.prefix, "user_id": member.user_id,
                       "expires_at": expires_at})  # fmt: skip
    session.commit()
    return token, plaintext


def resolve_token(session: Session, plaintext: str) -> ApiToken | None:
    """Return the live token for this plaintext, or None (unknown, revoked, expired)."""
    if not plaintext.startswith(TOKEN_PREFIX) or len(plaintext) > 100:
        return None
    digest = _digest(plaintext)
    with unscoped(session):  # the token tells us the org; nothing else can yet
        token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    now = utcnow()
    if token.revoked_at is not None or (token.expires_at is not None and token.expires_at <= now):
        return None
    return token


def touch(session: Session, token: ApiToken) -> None:
    """Record use (at most once a minute, to keep writes off the hot path)."""
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        token.last_used_at = now
        session.commit()


def list_tokens(session: Session, member: Membership) -> list[ApiToken]:
    """The member's tokens in the current org, newest first."""
    stmt = select(ApiToken).where(ApiToken.user_id == member.user_id)
    return list(session.scalars(stmt.order_by(ApiToken.created_at.desc())).unique())


def revoke_token(session: Session, member: Membership, token_id: int) -> ApiToken:
    """Revoke one of the member's own tokens."""
    token = session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.user_id == member.user_id)
    )
    if token is None:
        raise NotFound("token not found")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, token.org_id, "token.revoked", actor_id=member.user_id,
                     target_type="api_token", target_id=token.id,
                     data={"prefix": token.prefix})  # fmt: skip
        session.commit()
    return token
