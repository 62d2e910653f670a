"""People: agents, admins and requesters share one account table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, String, func
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow


class User(Base):
    """An account. Emails are stored lower-cased; requesters may have no password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120), default="", server_default="")
    # Deferred: loaded only when checked at login, never with every joined requester.
    password_hash: Mapped[str | None] = mapped_column(String(255), deferred=True)
    session_version: Mapped[int] = mapped_column(default=1, server_default="1")
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    # Site operators (not an org role) see /ops/rq and the job tooling.
    is_operator: Mapped[bool] = mapped_column(default=False, server_default="false")
    # Set when a delivery-failure report (bounce) for this address arrives.
    email_bounced_at: Mapped[datetime | None]
    email_bounce_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @hybrid_property
    def display_name(self) -> str:
        """The name, else the address's local part ("dana" for dana@example.com)."""
        return self.name or self.email.split("@", 1)[0]

    @display_name.inplace.expression
    @classmethod
    def _display_name_sql(cls) -> ColumnElement[str]:
        # The same rule in SQL, for list rows that read only the name (ticket_rows.py).
        return func.coalesce(func.nullif(cls.name, ""), func.split_part(cls.email, "@", 1))

    # flask-login protocol -------------------------------------------------------------
    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """Session identity: id plus session_version, so bumping the version logs out."""
        return f"{self.id}:{self.session_version}"
