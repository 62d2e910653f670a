"""Write outbox events in the caller's transaction; dispatch follows the commit.

A domain change and the event announcing it commit together or not at all. After the
commit, `jobs.notify.dispatch` is enqueued for the event; if that enqueue is lost (Redis
down, process killed) the relay re-dispatches undispatched events a few seconds later.

Two ways in: `emit` adds one ORM row to the session (a request announcing its change);
`emit_many` writes many events with one INSERT statement and knows their ids at once (the
SLA sweep announcing a thousand alerts). Both build the same row: kind, org, ticket, actor,
payload (with the ticket's number), request id, created_at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Integer, String, bindparam, column, func, select
from sqlalchemy.dialects.postgresql import JSON, JSONB, insert
from sqlalchemy.orm import Session

from helpdesk.db import UtcDateTime, utcnow
from helpdesk.models import EventKind, OutboxEvent, Ticket
from helpdesk.services import tasks

DISPATCH_JOB = "jobs.notify.dispatch"
DISPATCH_BATCH = 100  # events per dispatch job when a caller queues many at once


@dataclass(frozen=True)
class NewEvent:
    """One event for `emit_many`: what `emit` takes, with the ticket as id and number."""

    org_id: int
    kind: EventKind
    ticket_id: int | None = None
    ticket_number: int | None = None  # goes into the payload as "number", as emit does
    actor_id: int | None = None
    payload: dict[str, Any] | None = None


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
    writing many events uses `emit_many` instead (one statement, ids known at once).
    """
    number = ticket.number if ticket is not None else None
    event = OutboxEvent(
        org_id=org_id,
        kind=kind.value,
        ticket_id=ticket.id if ticket is not None else None,
        actor_id=actor_id,
        payload=_payload(payload, ticket is not None, number),
        request_id=tasks.correlation_id(),
        created_at=utcnow(),
    )
    session.add(event)  # no flush here: the caller's commit inserts it with its other rows
    if dispatch:
        tasks.after_commit(session, DISPATCH_JOB, org_id, lambda: event.id, queue="notify")
    return event


def emit_many(session: Session, events: Sequence[NewEvent], *, dispatch: bool = True) -> list[int]:
    """Insert the events with one statement in the caller's transaction; return their ids.

    The ids come back ascending, in the order of `events`. With `dispatch`, one dispatch
    job per org and DISPATCH_BATCH events is queued for after the commit. A Core INSERT:
    the caller runs it `unscoped` (a cross-org job); every row carries its own org_id.
    """
    if not events:
        return []
    request_id, now = tasks.correlation_id(), utcnow().isoformat()
    rows = [
        {
            "ordinal": n,
            "org_id": e.org_id,
            "kind": e.kind.value,
            "ticket_id": e.ticket_id,
            "actor_id": e.actor_id,
            "payload": _payload(e.payload, e.ticket_id is not None, e.ticket_number),
            "request_id": request_id,
            "created_at": now,
        }
        for n, e in enumerate(events)
    ]
    # One JSON parameter rather than ~8 bind parameters per row: the statement text and
    # its compiled form stay the same whatever the number of events (cached), and psycopg
    # neither parses a huge query nor quotes thousands of values one by one.
    source = (
        func.json_to_recordset(bindparam("rows", rows, type_=JSON))
        .table_valued(
            column("ordinal", Integer),
            column("org_id", Integer),
            column("kind", String),
            column("ticket_id", BigInteger),
            column("actor_id", Integer),
            column("payload", JSONB),
            column("request_id", String),
            column("created_at", UtcDateTime()),
        )
        .render_derived(with_types=True)
    )
    names = ("org_id", "kind", "ticket_id", "actor_id", "payload", "request_id", "created_at")
    stmt = (
        insert(OutboxEvent)
        .from_select(names, select(*(source.c[name] for name in names)).order_by(source.c.ordinal))
        .returning(OutboxEvent.id, OutboxEvent.org_id)
    )
    # The sequence is drawn row by row in the select's order: ascending ids follow `events`.
    inserted = sorted((event_id, org_id) for event_id, org_id in session.execute(stmt))
    if dispatch:
        dispatch_ids_after_commit(session, [(org_id, event_id) for event_id, org_id in inserted])
    return [event_id for event_id, _org_id in inserted]


def dispatch_ids_after_commit(session: Session, events: Iterable[tuple[int, int]]) -> None:
    """Queue one dispatch job per org and DISPATCH_BATCH of these (org_id, event id) pairs.

    A sweep announcing 1,000 alerts queues ten jobs instead of a thousand.
    """
    by_org: defaultdict[int, list[int]] = defaultdict(list)
    for org_id, event_id in events:
        by_org[org_id].append(event_id)
    for org_id, mine in by_org.items():
        for start in range(0, len(mine), DISPATCH_BATCH):
            ids = mine[start : start + DISPATCH_BATCH]
            tasks.after_commit(session, DISPATCH_JOB, org_id, *ids, queue="notify")


def _payload(payload: dict[str, Any] | None, of_ticket: bool, number: int | None) -> dict[str, Any]:
    """The event's payload: the caller's facts, plus the ticket's number for a ticket event."""
    data = dict(payload or {})
    if of_ticket:
        data.setdefault("number", number)
    return data
