"""Inbound email as received: the raw message, where it went, or why it went nowhere.

Every message posted to /inbound/email is stored first (raw bytes, for audit; never
rendered as HTML) and processed by a job. Its org is known only after threading (reply
token, Message-ID, or the org's plus-address), so `org_id` may stay NULL for mail that
matched nothing: this table is not OrgScoped, and admin views filter by org explicitly.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class InboundStatus(StrEnum):
    RECEIVED = "received"  # stored, job not run yet
    PROCESSED = "processed"  # became a ticket or a comment
    IGNORED = "ignored"  # auto-reply, bulk, bounce, our own mail, duplicate
    FAILED = "failed"  # could not be used: `reason` says why


class InboundMessage(Base):
    """One received email and its fate."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        CheckConstraint("status IN ('received', 'processed', 'ignored', 'failed')", name="status"),
        Index("ix_inbound_messages_org_received", "org_id", "received_at"),
        Index("ix_inbound_messages_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=InboundStatus.RECEIVED.value)
    reason: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998))
    subject: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int]
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    ticket_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="SET NULL")
    )
    comment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("comments.id", ondelete="SET NULL")
    )
