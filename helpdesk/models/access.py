"""Emailed ticket links: a token bound to one ticket and one requester, stored hashed.

The token itself (≥128 random bits) exists only in the email; the row keeps its SHA-256,
so a database leak does not hand out working links. Lookups happen before any org is
known (the link is the only credential), so services/access_links.py reads this table
deliberately unscoped, by hash, and then enters the ticket's org.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped


class AccessToken(OrgScoped, Base):
    """A requester's link to one ticket: expiring, revocable."""

    __tablename__ = "access_tokens"
    __table_args__ = (Index("ix_access_tokens_ticket_requester", "ticket_id", "requester_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
