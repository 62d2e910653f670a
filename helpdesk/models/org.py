"""Organizations (the tenants) and who belongs to them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped

if TYPE_CHECKING:
    from helpdesk.models.user import User


class Role(StrEnum):
    ADMIN = "admin"
    AGENT = "agent"
    REQUESTER = "requester"


STAFF_ROLES = frozenset({Role.ADMIN, Role.AGENT})


class Organization(Base):
    """A tenant. Not org-scoped itself: it is the scope."""

    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    ticket_seq: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(OrgScoped, Base):
    """A user's role in one organization."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id"),
        CheckConstraint("role IN ('admin', 'agent', 'requester')", name="role"),
        # Every agent page lists the org's staff (assignee pickers): without this it is a
        # scan of every membership of every org (docs/performance.md F1).
        Index("ix_memberships_org_role", "org_id", "role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
    org: Mapped[Organization] = relationship(lazy="joined", innerjoin=True)

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES
