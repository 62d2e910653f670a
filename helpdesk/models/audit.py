"""Audit log: append-only events in hash chains, one chain per org plus one for the site.

Org events (ticket changes, memberships, tokens, exports, attachment verdicts …) live in
`audit_events`, scoped by the tenancy gate like any org data. Events that belong to no
org (logins, failed logins, session revocations, feature-flag flips) live in
`site_audit_events`. Each chain's last seq and hash are also kept in `audit_heads`, whose
row lock serializes appends and which lets `audit verify` notice a deleted tail.
`helpdesk.services.audit` is the only writer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped

GENESIS_HASH = "0" * 64
SITE_CHAIN = 0  # audit_heads.chain_id of the site chain; org chains use the org id


class _AuditFields:
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    # No foreign key: a deleted user must not rewrite (SET NULL) hashed rows.
    actor_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    ip_prefix: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditEvent(_AuditFields, OrgScoped, Base):
    """One audited action inside an org."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ux_audit_events_org_seq", "org_id", "seq", unique=True),
        Index("ix_audit_events_org_action", "org_id", "action", "seq"),
    )


class SiteAuditEvent(_AuditFields, Base):
    """One audited action that belongs to no org (login, flag flip, revocation)."""

    __tablename__ = "site_audit_events"
    __table_args__ = (Index("ix_site_audit_events_action", "action", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, unique=True)


class AuditHead(Base):
    """The last link of one chain: locked to append, compared to detect a deleted tail."""

    __tablename__ = "audit_heads"

    chain_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)
    hash: Mapped[str] = mapped_column(String(64), default=GENESIS_HASH)
