"""Tickets and their field-change history."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from helpdesk.db import Base, utcnow
from helpdesk.tenancy import OrgScoped

if TYPE_CHECKING:
    from helpdesk.models.user import User


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


SUBJECT_MAX = 200


def _in(values: type[StrEnum]) -> str:
    return ", ".join(f"'{v.value}'" for v in values)


class Ticket(OrgScoped, Base):
    """A request from a requester, numbered per org."""

    __tablename__ = "tickets"
    __table_args__ = (
        UniqueConstraint("org_id", "number"),
        CheckConstraint(f"status IN ({_in(Status)})", name="status"),
        CheckConstraint(f"priority IN ({_in(Priority)})", name="priority"),
        # The list is ordered by (updated_at, number) within an org: keyset pages and
        # cursors never involve global row ids (which would hint at other orgs' volume).
        Index("ix_tickets_org_updated", "org_id", "updated_at", "number"),
        Index("ix_tickets_org_status_updated", "org_id", "status", "updated_at", "number"),
        Index("ix_tickets_org_assignee_updated", "org_id", "assignee_id", "updated_at", "number"),
        # An agent's own queue; priority and tags ride along so views such as "my urgent"
        # are counted and listed from the index alone (docs/performance.md, F14).
        Index(
            "ix_tickets_org_assignee_status_updated",
            "org_id",
            "assignee_id",
            "status",
            "updated_at",
            "number",
            postgresql_include=["priority", "tags"],
        ),
        Index("ix_tickets_org_requester_updated", "org_id", "requester_id", "updated_at", "number"),
        Index("ix_tickets_org_priority_updated", "org_id", "priority_rank", "updated_at", "number"),
        Index("ix_tickets_tags", "tags", postgresql_using="gin"),
        Index("ix_tickets_search_all", "search_all", postgresql_using="gin"),
        Index("ix_tickets_search_public", "search_public", postgresql_using="gin"),
        # The SLA sweep reads only tickets whose next check is due: O(due), not O(open).
        Index(
            "ix_tickets_sla_next_check",
            "sla_next_check_at",
            postgresql_where=text("sla_next_check_at IS NOT NULL"),
        ),
        Index(
            "ix_tickets_org_sla_due",
            "org_id",
            "sla_due_at",
            "number",
            postgresql_where=text("sla_due_at IS NOT NULL"),
        ),
        # Only tickets with a running SLA target: "Breaching soon" and the due sort never
        # read the warned-about history of solved tickets (docs/performance.md F2).
        Index(
            "ix_tickets_org_sla_running",
            "org_id",
            "sla_state",
            "sla_due_at",
            "number",
            postgresql_where=text("sla_due_at IS NOT NULL"),
        ),
        # The open queue, with what its views filter on: counters and open lists stay
        # index-only whatever the size of the closed history.
        Index(
            "ix_tickets_org_open_queue",
            "org_id",
            "updated_at",
            "number",
            postgresql_include=["priority", "assignee_id", "tags"],
            postgresql_where=text("status IN ('new', 'open', 'pending', 'on_hold')"),
        ),
        Index(
            "ix_tickets_org_sla_state_updated",
            "org_id",
            "sla_state",
            "updated_at",
            "number",
            postgresql_where=text("sla_state IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[int]
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    status: Mapped[str] = mapped_column(String(16), default=Status.NEW.value)
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL.value)
    # Sortable form of priority (urgent 3 … low 0), kept by PostgreSQL itself.
    priority_rank: Mapped[int] = mapped_column(
        SmallInteger,
        Computed(
            "CASE priority WHEN 'urgent' THEN 3 WHEN 'high' THEN 2 WHEN 'normal' THEN 1 ELSE 0 END",
            persisted=True,
        ),
    )
    requester_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    tags: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Full-text search (services/search.py keeps them): subject weighted A, messages B.
    # search_all includes internal notes (agents search it); search_public does not, so a
    # requester's search can never reveal what an internal note says.
    # SLA (services/sla.py keeps them). Due times are NULL when no policy applies or the
    # target is met; while paused (pending/on_hold) sla_paused_at is set and the next
    # check is NULL. sla_due_at = the earliest unmet due time (list sort "due").
    first_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    first_responded_at: Mapped[datetime | None]
    solved_at: Mapped[datetime | None]
    sla_paused_at: Mapped[datetime | None]
    sla_next_check_at: Mapped[datetime | None]
    sla_due_at: Mapped[datetime | None]
    sla_state: Mapped[str | None] = mapped_column(String(16))
    # Minted on the first outgoing email: the plus-address part of the ticket's reply
    # address (lower-case base32, so mail systems that fold case keep it intact).
    reply_token: Mapped[str | None] = mapped_column(String(40), unique=True)
    search_all: Mapped[str] = mapped_column(
        TSVECTOR, server_default="", deferred=True, nullable=False
    )
    search_public: Mapped[str] = mapped_column(
        TSVECTOR, server_default="", deferred=True, nullable=False
    )
    # What search ranks by: the subject alone, weighted A, kept by PostgreSQL itself. It is
    # small and stays in the row, so ranking reads no out-of-line vector (decision 0013).
    # Its text search configuration is services/search.py's CONFIG.
    search_subject: Mapped[str] = mapped_column(
        TSVECTOR,
        Computed("setweight(to_tsvector('english'::regconfig, subject), 'A')", persisted=True),
        deferred=True,
    )

    requester: Mapped[User] = relationship(foreign_keys=[requester_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")


class TicketEvent(OrgScoped, Base):
    """One field change on a ticket: who changed what from what to what."""

    __tablename__ = "ticket_events"
    __table_args__ = (Index("ix_ticket_events_ticket_created", "ticket_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    actor: Mapped[User | None] = relationship(lazy="joined")
