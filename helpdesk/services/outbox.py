"""Write outbox events in the caller's transaction; dispatch follows the commit.

A domain change and the event announcing it commit together or not at all. After the
commit, `jobs.notify.dispatch` is enqueued for the event; if that enqueue is lost (Redis
down, process killed) the relay re-dispatches undispatched events a few seconds later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import EventKind, OutboxEvent, Ticket
from helpdesk.services import tasks

DISPATCH_JOB = "jobs.notify.dispatch"
DISPATCH_BATCH = 100  # events per dispatch job when a caller queues many at once


def emit(
    session: Session,
    org_id: int,
    kind: EventKind,
    *,
    ticket: Ticket | None = None,
    actor_id: int | None = None,
    payload: dict[str, Any] | None = None,
    dispatch: bool = True,
) -> OutboxEvent:
    """Add an outbox event to the session and queue its dispatch for after the commit.

    The event's id exists once the session flushes (at the latest, at commit). A caller
    writing many events passes `dispatch=False` and hands them to `dispatch_after_commit`.
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
    if dispatch:
        tasks.after_commit(session, DISPATCH_JOB, org_id, lambda: event.id, queue="notify")
    return event


def dispatch_after_commit(session: Session, events: Iterable[OutboxEvent]) -> None:
    """Queue one dispatch job per org and DISPATCH_BATCH events, for after the commit.

    A sweep announcing 1,000 alerts queues ten jobs instead of a thousand.
    """
    by_org: defaultdict[int, list[OutboxEvent]] = defaultdict(list)
    for event in events:
        by_org[event.org_id].append(event)
    for org_id, mine in by_org.items():
        for start in range(0, len(mine), DISPATCH_BATCH):
            ids = [_id_of(event) for event in mine[start : start + DISPATCH_BATCH]]
            tasks.after_commit(session, DISPATCH_JOB, org_id, *ids, queue="notify")


def _id_of(event: OutboxEvent) -> Callable[[], int]:
    return lambda: event.id
