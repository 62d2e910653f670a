"""Files attached to tickets: metadata here, bytes in storage (S3 or disk), scanned by clamd.

A file is downloadable only when `scan_status` is `clean` (or, in development without
clamd, `unscanned`). The display filename is metadata only; the storage key is random and
org-prefixed, so no user input ever becomes a path or an object name.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped


class ScanStatus(StrEnum):
    PENDING = "pending"  # stored, waiting for its scan
    CLEAN = "clean"  # clamd found nothing: downloadable
    INFECTED = "infected"  # object removed or quarantined; `signature` names the finding
    ERROR = "error"  # the scan failed (clamd down, timeout, limits): retried, not downloadable
    UNSCANNED = "unscanned"  # development only, no CLAMD_URL: downloadable with a warning


class Attachment(OrgScoped, Base):
    """One uploaded file on a ticket (optionally on one of its comments)."""

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint(
            "scan_status IN ('pending', 'clean', 'infected', 'error', 'unscanned')",
            name="scan_status",
        ),
        Index("ix_attachments_ticket_created", "ticket_id", "created_at"),
        Index("ix_attachments_org_sha256", "org_id", "sha256"),
        Index(
            "ix_attachments_unsettled",
            "created_at",
            postgresql_where=text("scan_status IN ('pending', 'error')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    comment_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("comments.id", ondelete="SET NULL")
    )
    uploader_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # True when attached to an internal note: requesters never see or download it.
    internal: Mapped[bool] = mapped_column(default=False, server_default="false")
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    scan_status: Mapped[str] = mapped_column(String(16), default=ScanStatus.PENDING.value)
    signature: Mapped[str | None] = mapped_column(String(200))
    scan_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    scan_error: Mapped[str | None] = mapped_column(Text)
    scanned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
