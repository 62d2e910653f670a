"""SLA policies, business calendars, pauses and fired SLA events.

Due times live on the ticket (models/ticket.py); these rows say how they are computed
(policy + calendar), when the clock stood still (pauses) and which warnings and breaches
have fired. `SlaEvent` is unique per (ticket, target, level): two sweeps racing can never
fire the same alert twice.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped


class SlaTarget(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"


class SlaState(StrEnum):
    """Stored on the ticket for the list filter; NULL means no SLA applies."""

    OK = "ok"
    WARNING = "warning"
    BREACHED = "breached"


BREACH_LEVEL = "breach"


class BusinessCalendar(OrgScoped, Base):
    """Opening hours of an org: timezone, weekly intervals and holidays (see business_time)."""

    __tablename__ = "business_calendars"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": [["09:00", "17:00"]], …}: the shape business_time.Calendar.from_json reads.
    hours: Mapped[dict[str, Any]] = mapped_column(JSONB)
    holidays: Mapped[list[str]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SlaPolicy(OrgScoped, Base):
    """Targets for one priority in one org; calendar NULL means around the clock (24x7)."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("org_id", "priority"),
        CheckConstraint("first_response_minutes > 0", name="first_response_positive"),
        CheckConstraint("resolution_minutes > 0", name="resolution_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    priority: Mapped[str] = mapped_column(String(16))
    first_response_minutes: Mapped[int]
    resolution_minutes: Mapped[int]
    calendar_id: Mapped[int | None] = mapped_column(
        ForeignKey("business_calendars.id", ondelete="RESTRICT")
    )
    # Warnings at these percentages of the target (e.g. [75, 90]) and/or these many
    # business minutes before the due time (e.g. [30]).
    warn_at_percent: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), default=list, server_default="{}"
    )
    warn_before_minutes: Mapped[list[int]] = mapped_column(
        ARRAY(SmallInteger), default=list, server_default="{}"
    )
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    calendar: Mapped[BusinessCalendar | None] = relationship(lazy="joined")


class SlaPause(OrgScoped, Base):
    """A stretch of time in pending/on_hold during which the SLA clock stood still."""

    __tablename__ = "sla_pauses"
    __table_args__ = (Index("ix_sla_pauses_ticket_started", "ticket_id", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class SlaEvent(OrgScoped, Base):
    """A warning or breach that fired; unique per (ticket, target, level)."""

    __tablename__ = "sla_events"
    __table_args__ = (UniqueConstraint("ticket_id", "target", "level"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(16))
    # "75%" / "30m" for warnings, "breach" for the breach.
    level: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime]
    threshold_at: Mapped[datetime]
    fired_at: Mapped[datetime] = mapped_column(default=utcnow)
