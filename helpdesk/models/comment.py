"""Comments on a ticket: public replies and internal notes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped

if TYPE_CHECKING:
    from helpdesk.models.user import User


class Channel(StrEnum):
    WEB = "web"
    EMAIL = "email"
    API = "api"


BODY_MAX = 50_000


class Comment(OrgScoped, Base):
    """A message in a ticket's conversation; `body_html` is rendered once, at write time."""

    __tablename__ = "comments"
    __table_args__ = (
        CheckConstraint("channel IN ('web', 'email', 'api')", name="channel"),
        Index("ix_comments_ticket_created", "ticket_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body_md: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    internal: Mapped[bool] = mapped_column(default=False)
    channel: Mapped[str] = mapped_column(String(8), default=Channel.WEB.value)
    # The Message-ID of the email this comment came from (threading and de-duplication).
    message_id: Mapped[str | None] = mapped_column(String(998), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    author: Mapped[User] = relationship(lazy="joined")
