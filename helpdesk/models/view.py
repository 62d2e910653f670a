"""Saved views: a named set of list filters, personal or shared with the whole org."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped


class SavedView(OrgScoped, Base):
    """Filters kept by name. `owner_id` NULL means shared with the org (made by an admin)."""

    __tablename__ = "saved_views"
    __table_args__ = (
        # One name per owner (or per org for shared views), compared case-insensitively.
        UniqueConstraint("org_id", "owner_id", "name_key", postgresql_nulls_not_distinct=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(60))
    name_key: Mapped[str] = mapped_column(String(60))
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
