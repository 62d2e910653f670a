"""Transactional outbox, deliveries, webhook endpoints and notification preferences.

A domain change writes an `OutboxEvent` in its own transaction; dispatch turns each event
into `Delivery` rows, one per (event, channel, target) — unique, so dispatching twice is
harmless. A delivery is a small state machine on its row (pending → sending → delivered,
or failed → … → dead), so a killed worker or a lost queue entry never loses a message.
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
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped


class EventKind(StrEnum):
    """Outbox event names; also the public webhook event names."""

    TICKET_CREATED = "ticket.created"
    TICKET_UPDATED = "ticket.updated"
    COMMENT_CREATED = "comment.created"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    ATTACHMENT_INFECTED = "attachment.infected"


class DeliveryChannel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"  # will be retried at next_attempt_at
    DEAD = "dead"  # attempts exhausted: parked, never blocks others
    DIGEST = "digest"  # waiting for the recipient's next digest email
    SKIPPED = "skipped"  # nothing to send any more (endpoint disabled, user left)


def _in(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class OutboxEvent(OrgScoped, Base):
    """Something happened that people or systems may need to hear about."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # The relay looks only at events not yet dispatched: a tiny partial index.
        Index(
            "ix_outbox_events_undispatched",
            "created_at",
            postgresql_where=text("dispatched_at IS NULL"),
        ),
        Index("ix_outbox_events_org_created", "org_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ticket_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="SET NULL")
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Ids and small facts only (numbers, field names, targets), never bodies or emails:
    # deliveries load current data when they render.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    dispatched_at: Mapped[datetime | None]


class Delivery(OrgScoped, Base):
    """One message to one target for one event, with its retry state."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "channel", "target"),
        CheckConstraint(f"status IN ({_in(DeliveryStatus)})", name="status"),
        CheckConstraint(f"channel IN ({_in(DeliveryChannel)})", name="channel"),
        # The relay finds deliveries that are due (or stuck in sending) without a scan.
        Index(
            "ix_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status IN ('pending', 'sending', 'failed')"),
        ),
        Index("ix_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("ix_deliveries_org_status_updated", "org_id", "status", "updated_at"),
        Index(
            "ix_deliveries_digest_user",
            "user_id",
            postgresql_where=text("status = 'digest'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("outbox_events.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(16))
    # "user:<id>" or "webhook:<id>": the uniqueness key with (event, channel).
    target: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    endpoint_id: Mapped[int | None] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]


class WebhookEndpoint(OrgScoped, Base):
    """An org's HTTP receiver for events; the secret signs every request."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(String(200), default="", server_default="")
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))  # ["*"] = every event
    active: Mapped[bool] = mapped_column(default=True, server_default="true")
    # Signing needs the secret itself (HMAC), so it is stored, never shown again after
    # creation/rotation. During a rotation both secrets sign until previous_expires_at.
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_expires_at: Mapped[datetime | None]
    consecutive_dead: Mapped[int] = mapped_column(default=0, server_default="0")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationMode(StrEnum):
    IMMEDIATE = "immediate"
    DIGEST = "digest"
    OFF = "off"


class NotificationPreference(OrgScoped, Base):
    """Which events a staff member hears about by email in one org, and how often."""

    __tablename__ = "notification_preferences"
    __table_args__ = (
        UniqueConstraint("org_id", "user_id"),
        CheckConstraint(f"mode IN ({_in(NotificationMode)})", name="mode"),
        CheckConstraint("digest_minutes BETWEEN 5 AND 1440", name="digest_minutes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    events: Mapped[list[str]] = mapped_column(ARRAY(Text))
    mode: Mapped[str] = mapped_column(String(16), default=NotificationMode.IMMEDIATE.value)
    digest_minutes: Mapped[int] = mapped_column(default=60, server_default="60")
    # False: only tickets that concern the member (assigned to them; for admins also SLA
    # alerts on unassigned tickets and infected files). True: every ticket of the org.
    watch_all: Mapped[bool] = mapped_column(default=False, server_default="false")
    last_digest_at: Mapped[datetime | None]


class JobRun(Base):
    """Last run of a periodic job (the SLA sweep, the relay): for /readyz, metrics, ops."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[int | None]
    info: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
