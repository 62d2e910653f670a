"""Write outbox events in the caller's transaction; dispatch follows the commit.

A domain change and the event announcing it commit together or not at all. After the
commit, `jobs.notify.dispatch` is enqueued for the event; if that enqueue is lost (Redis
down, process killed) the relay re-dispatches undispatched events a few seconds later.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import EventKind, OutboxEvent, Ticket
from helpdesk.services import tasks

DISPATCH_JOB = "jobs.notify.dispatch"


def emit(
    session: Session,
    org_id: int,
    kind: EventKind,
    *,
    ticket: Ticket | None = None,
    actor_id: int | None = None,
    payload: dict[str, Any] | None = None,
) -> OutboxEvent:
    """Add an outbox event to the session and queue its dispatch for after the commit.

    The event's id exists once the session flushes (at the latest, at commit).
    """
    data = dict(payload or {})
    if ticket is not None:
        data.setdefault("number", ticket.number)
    event = OutboxEvent(
        org_id=org_id,
        kind=kind.value,
        ticket_id=ticket.id if ticket is not None else None,
        actor_id=actor_id,
        payload=data,
        request_id=tasks.correlation_id(),
        created_at=utcnow(),
    )
    session.add(event)  # no flush here: a sweep adds hundreds, inserted in one batch
    tasks.after_commit(session, DISPATCH_JOB, org_id, lambda: event.id, queue="notify")
    return event
