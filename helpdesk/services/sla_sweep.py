"""The SLA sweep: fire due warnings and breaches exactly once, in O(due) work.

Why it is built this way:

* It reads only tickets whose `sla_next_check_at` has come (a partial index holds just the
  tickets with a next check), oldest first, in batches locked `FOR UPDATE SKIP LOCKED`:
  two sweeps running at once take disjoint batches instead of waiting on each other.
* Each due threshold becomes an `SlaEvent` through `INSERT … ON CONFLICT DO NOTHING
  RETURNING`; only rows really inserted are announced with an outbox event, in the same
  transaction. The unique (ticket, target, level) makes a second firing impossible even if
  the row locks were ever bypassed.
* After an outage several levels of one target may be due at once. All are recorded (the
  history is true), but only the most severe new level per target is announced: people get
  one "breached" message, not a stale "75%" and "90%" in the same second.
* Set-based writes: a batch costs a fixed handful of statements, whatever its size. The
  tickets are read as plain rows of their SLA columns (no ORM entities to build, track and
  flush one by one); the SlaEvents, the outbox events (`outbox.emit_many`) and the new
  next check / state of the changed tickets are each written by one statement whose rows
  travel as one JSON parameter (`json_to_recordset`). These are Core statements on
  org-owned tables, allowed only because the sweep runs `unscoped`; every row carries
  its ticket's org_id.
* Per-run caches: policies per org (loaded for all new orgs of a batch at once), parsed
  calendars per calendar id. Nothing is cached across runs, so edited policies and
  calendars apply at the next run.
* A ticket whose plan cannot be computed (a calendar without hours for years) loses its
  next check and is logged, so it can never block the tickets queued behind it.
* The run is recorded in `JobRun("sla.sweep")` for /readyz and metrics (staleness).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    String,
    TableValuedAlias,
    bindparam,
    column,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSON, insert
from sqlalchemy.orm import Session

from helpdesk.db import UtcDateTime, utcnow
from helpdesk.models import EventKind, JobRun, SlaEvent, SlaPolicy, Ticket
from helpdesk.services import outbox
from helpdesk.services.business_time import Calendar
from helpdesk.services.sla import FiredKey, Threshold, calendar_of, refresh, thresholds_of
from helpdesk.tenancy import unscoped

JOB_NAME = "sla.sweep"
BATCH_SIZE = 500
BUDGET_SECONDS = 8.0  # the cron interval is 10 s: leave the next run a clean start
log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    """What one run did: tickets looked at, alerts fired and announced, batches."""

    due: int = 0
    fired: int = 0
    announced: int = 0
    batches: int = 0


@dataclass(slots=True)
class DueTicket:
    """The columns of one due ticket that the sweep reads and writes (an `SlaClock`).

    Not an ORM entity: nothing is tracked or flushed; `_write_tickets` stores the three
    columns the sweep changes, for the tickets where they did change.
    """

    id: int
    org_id: int
    number: int
    priority: str
    created_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_responded_at: datetime | None
    solved_at: datetime | None
    sla_paused_at: datetime | None
    sla_next_check_at: datetime | None
    sla_due_at: datetime | None
    sla_state: str | None

    def written(self) -> tuple[datetime | None, datetime | None, str | None]:
        """The columns the sweep may change."""
        return (self.sla_next_check_at, self.sla_due_at, self.sla_state)


DUE_COLUMNS = (
    Ticket.id,
    Ticket.org_id,
    Ticket.number,
    Ticket.priority,
    Ticket.created_at,
    Ticket.first_response_due_at,
    Ticket.resolution_due_at,
    Ticket.first_responded_at,
    Ticket.solved_at,
    Ticket.sla_paused_at,
    Ticket.sla_next_check_at,
    Ticket.sla_due_at,
    Ticket.sla_state,
)  # in the order of DueTicket's fields


@dataclass
class _RunCache:
    policies: dict[tuple[int, str], SlaPolicy] = field(default_factory=dict)
    orgs_loaded: set[int] = field(default_factory=set)
    calendars: dict[int | None, Calendar] = field(default_factory=dict)

    def load(self, session: Session, org_ids: Iterable[int]) -> None:
        """Read the policies (and their calendars) of the orgs not seen yet, in one query."""
        new = set(org_ids) - self.orgs_loaded
        if not new:
            return
        for row in session.scalars(select(SlaPolicy).where(SlaPolicy.org_id.in_(sorted(new)))):
            self.policies[(row.org_id, row.priority)] = row
        self.orgs_loaded |= new

    def policy(self, session: Session, ticket: DueTicket) -> SlaPolicy | None:
        if ticket.org_id not in self.orgs_loaded:
            self.load(session, (ticket.org_id,))
        return self.policies.get((ticket.org_id, ticket.priority))

    def calendar(self, policy: SlaPolicy | None) -> Calendar:
        key = policy.calendar_id if policy is not None else None
        if key not in self.calendars:
            self.calendars[key] = calendar_of(policy)
        return self.calendars[key]


def due_tickets_query(now: datetime, limit: int) -> Select[*tuple[Any, ...]]:
    """Return the sweep's select: tickets whose next check has come, locked, skip locked.

    Columns, not entities: every batch reads the rows as they are now, even when the
    session already holds some of these tickets from earlier work.
    """
    return (
        select(*DUE_COLUMNS)
        .where(Ticket.sla_next_check_at <= now)
        .order_by(Ticket.sla_next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Ticket)
    )


def run_sweep(
    session: Session,
    now: datetime,
    *,
    batch_size: int = BATCH_SIZE,
    budget_seconds: float = BUDGET_SECONDS,
) -> SweepResult:
    """Fire every SLA threshold due at `now`, committing per batch; record the run."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware UTC, e.g. datetime.now(UTC)")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    started_at, clock = utcnow(), time.monotonic()
    result, cache = SweepResult(), _RunCache()
    with unscoped(session):
        while True:
            rows = session.execute(due_tickets_query(now, batch_size))
            batch = [DueTicket(*row) for row in rows]
            if batch:
                _sweep_batch(session, batch, now, cache, result)
                result.batches += 1
            session.commit()
            if len(batch) < batch_size or time.monotonic() - clock > budget_seconds:
                break
        elapsed_ms = int((time.monotonic() - clock) * 1000)
        _record_run(session, started_at, elapsed_ms, result)
        session.commit()
    log.info(
        "sla_sweep due=%d fired=%d announced=%d batches=%d ms=%d",
        result.due, result.fired, result.announced, result.batches, elapsed_ms,
    )  # fmt: skip
    return result


def _sweep_batch(
    session: Session, batch: list[DueTicket], now: datetime, cache: _RunCache, result: SweepResult
) -> None:
    # Each SlaEvent and outbox row is checked by its foreign-key triggers (a few thousand
    # lookups per batch), which run cached plans. The app forces a fresh plan for every
    # execution (db.py, for searches): here that would re-plan every check, 3-4 times the
    # cost of the inserts. SET LOCAL: for this batch's transaction only.
    session.execute(text("SET LOCAL plan_cache_mode TO auto"))
    cache.load(session, {ticket.org_id for ticket in batch})
    fired = _fired(session, [t.id for t in batch])
    before = {ticket.id: ticket.written() for ticket in batch}
    plans: dict[int, list[Threshold]] = {}
    due: dict[int, list[Threshold]] = {}
    for ticket in batch:
        thresholds = _thresholds(session, ticket, cache)
        if thresholds is None:
            continue
        plans[ticket.id] = thresholds
        if ticket.sla_paused_at is None:  # never selected while paused; be safe anyway
            seen = fired[ticket.id]
            due[ticket.id] = [t for t in thresholds if t.at <= now and t.key not in seen]
    inserted = _insert_events(session, batch, due, now)
    result.due += len(batch)
    result.fired += len(inserted)
    events: list[outbox.NewEvent] = []
    for ticket in batch:
        mine = due.get(ticket.id, [])
        new = [t for t in mine if (ticket.id, *t.key) in inserted]
        fired[ticket.id].update(t.key for t in mine)  # inserted or already there: fired
        events += _announce(ticket, new)
        if ticket.id in plans:
            refresh(ticket, plans[ticket.id], fired[ticket.id], now)
    # One INSERT; a few dispatch jobs per batch after the commit, not one per alert.
    result.announced += len(outbox.emit_many(session, events))
    _write_tickets(session, [t for t in batch if t.written() != before[t.id]])


def _thresholds(session: Session, ticket: DueTicket, cache: _RunCache) -> list[Threshold] | None:
    """Return the ticket's thresholds, or None after taking it off the sweep's list."""
    if ticket.sla_state is None:  # no SLA: nothing should be scheduled
        ticket.sla_next_check_at = None
        return None
    policy = cache.policy(session, ticket)
    try:
        return thresholds_of(ticket, policy, cache.calendar(policy))
    except ValueError:
        log.exception("sla_thresholds_failed ticket_id=%s; parked", ticket.id)
        ticket.sla_next_check_at = None
        return None


def _fired(session: Session, ids: list[int]) -> defaultdict[int, set[FiredKey]]:
    rows = session.execute(
        select(SlaEvent.ticket_id, SlaEvent.target, SlaEvent.level).where(
            SlaEvent.ticket_id.in_(ids)
        )
    )
    fired: defaultdict[int, set[FiredKey]] = defaultdict(set)
    for ticket_id, target, level in rows:
        fired[ticket_id].add((target, level))
    return fired


def _recordset(rows: list[dict[str, Any]], *columns: Any) -> TableValuedAlias:
    """`json_to_recordset(:rows) AS anon(col type, …)`: many rows in one JSON parameter.

    The statement stays the same whatever the number of rows (compiled once, cached), and
    psycopg sends one string instead of parsing and quoting thousands of parameters.
    """
    return (
        func.json_to_recordset(bindparam("rows", rows, type_=JSON))
        .table_valued(*columns)
        .render_derived(with_types=True)
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None  # microseconds and offset kept


SLA_EVENT_COLUMNS = ("org_id", "ticket_id", "target", "level", "due_at", "threshold_at", "fired_at")


def _insert_events(
    session: Session, batch: list[DueTicket], due: dict[int, list[Threshold]], now: datetime
) -> set[tuple[int, str, str]]:
    """Insert the due SlaEvents; return (ticket_id, target, level) of the rows really added."""
    fired_at = now.isoformat()
    rows: list[dict[str, Any]] = [
        {
            "org_id": ticket.org_id,
            "ticket_id": ticket.id,
            "target": threshold.target,
            "level": threshold.level,
            "due_at": threshold.due_at.isoformat(),
            "threshold_at": threshold.at.isoformat(),
            "fired_at": fired_at,
        }
        for ticket in batch
        for threshold in due.get(ticket.id, [])
    ]
    if not rows:
        return set()
    source = _recordset(
        rows,
        column("org_id", Integer),
        column("ticket_id", BigInteger),
        column("target", String),
        column("level", String),
        column("due_at", UtcDateTime()),
        column("threshold_at", UtcDateTime()),
        column("fired_at", UtcDateTime()),
    )
    stmt = (
        insert(SlaEvent)
        .from_select(SLA_EVENT_COLUMNS, select(*(source.c[name] for name in SLA_EVENT_COLUMNS)))
        .on_conflict_do_nothing()
        .returning(SlaEvent.ticket_id, SlaEvent.target, SlaEvent.level)
    )
    return {(ticket_id, target, level) for ticket_id, target, level in session.execute(stmt)}


def _announce(ticket: DueTicket, new: list[Threshold]) -> list[outbox.NewEvent]:
    """One outbox event per target: the most severe of the levels just fired."""
    worst: dict[str, Threshold] = {}
    for threshold in new:
        current = worst.get(threshold.target)
        if current is None or threshold.minutes_left < current.minutes_left:
            worst[threshold.target] = threshold
    events: list[outbox.NewEvent] = []
    for threshold in sorted(worst.values(), key=lambda t: (t.at, t.target)):
        kind = EventKind.SLA_BREACHED if threshold.is_breach else EventKind.SLA_WARNING
        payload = {
            "target": threshold.target,
            "level": threshold.level,
            "due_at": threshold.due_at.isoformat(),
        }
        new_event = outbox.NewEvent(
            ticket.org_id, kind, ticket_id=ticket.id, ticket_number=ticket.number, payload=payload
        )
        events.append(new_event)
    return events


def _write_tickets(session: Session, changed: list[DueTicket]) -> None:
    """Store next check, due time and state of the changed tickets in one UPDATE."""
    if not changed:
        return
    rows = [
        {
            "id": t.id,
            "sla_next_check_at": _iso(t.sla_next_check_at),
            "sla_due_at": _iso(t.sla_due_at),
            "sla_state": t.sla_state,
        }
        for t in changed
    ]
    source = _recordset(
        rows,
        column("id", BigInteger),
        column("sla_next_check_at", UtcDateTime()),
        column("sla_due_at", UtcDateTime()),
        column("sla_state", String),
    )
    stmt = (
        update(Ticket)
        .where(Ticket.id == source.c.id)
        .values(
            sla_next_check_at=source.c.sla_next_check_at,
            sla_due_at=source.c.sla_due_at,
            sla_state=source.c.sla_state,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(stmt)
    # A Ticket the caller's session already holds must not keep the old values.
    for ticket in changed:
        held = session.identity_map.get(session.identity_key(Ticket, ticket.id))
        if held is not None:
            session.expire(held, ["sla_next_check_at", "sla_due_at", "sla_state"])


def _record_run(
    session: Session, started_at: datetime, elapsed_ms: int, result: SweepResult
) -> None:
    """Upsert the JobRun row that /readyz and metrics read."""
    values = {
        "name": JOB_NAME,
        "started_at": started_at,
        "finished_at": utcnow(),
        "duration_ms": elapsed_ms,
        "info": {"due": result.due, "fired": result.fired, "announced": result.announced},
    }
    stmt = insert(JobRun).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[JobRun.name],
        set_={key: stmt.excluded[key] for key in values if key != "name"},
    )
    session.execute(stmt)
