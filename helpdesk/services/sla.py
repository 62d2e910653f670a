"""SLA engine: due times in business minutes, pauses, and the O(due) sweep.

(Hooks called by services/tickets.py; the engine itself is filled in by the SLA work.)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from helpdesk.models import Comment, Membership, Ticket


def ticket_opened(session: Session, ticket: Ticket, now: datetime) -> None:
    """Set due times for a new ticket from its org's policy for its priority."""


def fields_changed(
    session: Session, ticket: Ticket, changes: dict[str, tuple[object, object]], now: datetime
) -> None:
    """React to status/priority changes: pause, resume, recompute, solve."""


def comment_added(
    session: Session, ticket: Ticket, comment: Comment, actor: Membership, now: datetime
) -> None:
    """Record the first public agent reply as the first response."""
