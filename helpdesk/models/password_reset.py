"""Password reset links: one row per emailed link, keeping only the token's SHA-256.

The token (≥128 random bits) is minted by the job that sends the email and exists only in
that email; a database or Redis leak hands out no working link. A link works once, until
`expires_at`; using one marks every other open link of the account used too.
Accounts belong to no org, so neither does this table (no tenancy scope).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class PasswordReset(Base):
    """An emailed password reset link: single use, expiring."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
