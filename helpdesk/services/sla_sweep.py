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
* Per-run caches: policies per org, parsed calendars per calendar id. Nothing is cached
  across runs, so edited policies and calendars apply at the next run.
* A ticket whose plan cannot be computed (a calendar without hours for years) loses its
  next check and is logged, so it can never block the tickets queued behind it.
* The run is recorded in `JobRun("sla.sweep")` for /readyz and metrics (staleness).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, lazyload

from helpdesk.db import utcnow
from helpdesk.models import EventKind, JobRun, OutboxEvent, SlaEvent, SlaPolicy, Ticket
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


@dataclass
class _RunCache:
    policies: dict[tuple[int, str], SlaPolicy] = field(default_factory=dict)
    orgs_loaded: set[int] = field(default_factory=set)
    calendars: dict[int | None, Calendar] = field(default_factory=dict)

    def policy(self, session: Session, ticket: Ticket) -> SlaPolicy | None:
        if ticket.org_id not in self.orgs_loaded:
            rows = session.scalars(select(SlaPolicy).where(SlaPolicy.org_id == ticket.org_id))
            for row in rows:
                self.policies[(row.org_id, row.priority)] = row
            self.orgs_loaded.add(ticket.org_id)
        return self.policies.get((ticket.org_id, ticket.priority))

    def calendar(self, policy: SlaPolicy | None) -> Calendar:
        key = policy.calendar_id if policy is not None else None
        if key not in self.calendars:
            self.calendars[key] = calendar_of(policy)
        return self.calendars[key]


def due_tickets_query(now: datetime, limit: int) -> Select[Ticket]:
    """Return the sweep's select: tickets whose next check has come, locked, skip locked."""
    return (
        select(Ticket)
        .options(lazyload(Ticket.requester), lazyload(Ticket.assignee))
        .where(Ticket.sla_next_check_at <= now)
        .order_by(Ticket.sla_next_check_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Ticket)
        # The run keeps one session: a ticket seen in an earlier batch must be re-read.
        .execution_options(populate_existing=True)
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
            batch = list(session.scalars(due_tickets_query(now, batch_size)))
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
    session: Session, batch: list[Ticket], now: datetime, cache: _RunCache, result: SweepResult
) -> None:
    fired = _fired(session, [t.id for t in batch])
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
    events: list[OutboxEvent] = []
    for ticket in batch:
        mine = due.get(ticket.id, [])
        new = [t for t in mine if (ticket.id, *t.key) in inserted]
        fired[ticket.id].update(t.key for t in mine)  # inserted or already there: fired
        events += _announce(session, ticket, new)
        if ticket.id in plans:
            refresh(ticket, plans[ticket.id], fired[ticket.id], now)
    result.announced += len(events)
    outbox.dispatch_after_commit(session, events)  # a few jobs per batch, not one per alert


def _thresholds(session: Session, ticket: Ticket, cache: _RunCache) -> list[Threshold] | None:
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


def _insert_events(
    session: Session, batch: list[Ticket], due: dict[int, list[Threshold]], now: datetime
) -> set[tuple[int, str, str]]:
    """Insert the due SlaEvents; return (ticket_id, target, level) of the rows really added."""
    rows: list[dict[str, Any]] = [
        {
            "org_id": ticket.org_id,
            "ticket_id": ticket.id,
            "target": threshold.target,
            "level": threshold.level,
            "due_at": threshold.due_at,
            "threshold_at": threshold.at,
            "fired_at": now,
        }
        for ticket in batch
        for threshold in due.get(ticket.id, [])
    ]
    if not rows:
        return set()
    # Parameters passed separately (executemany with RETURNING), not baked into .values():
    # the statement compiles once and is cached, whatever the batch size.
    stmt = (
        insert(SlaEvent)
        .on_conflict_do_nothing()
        .returning(SlaEvent.ticket_id, SlaEvent.target, SlaEvent.level)
    )
    return {(ticket_id, target, level) for ticket_id, target, level in session.execute(stmt, rows)}


def _announce(session: Session, ticket: Ticket, new: list[Threshold]) -> list[OutboxEvent]:
    """Write one outbox event per target: the most severe of the levels just fired."""
    worst: dict[str, Threshold] = {}
    for threshold in new:
        current = worst.get(threshold.target)
        if current is None or threshold.minutes_left < current.minutes_left:
            worst[threshold.target] = threshold
    events: list[OutboxEvent] = []
    for threshold in sorted(worst.values(), key=lambda t: (t.at, t.target)):
        kind = EventKind.SLA_BREACHED if threshold.is_breach else EventKind.SLA_WARNING
        payload = {
            "target": threshold.target,
            "level": threshold.level,
            "due_at": threshold.due_at.isoformat(),
        }
        events.append(
            outbox.emit(
                session, ticket.org_id, kind, ticket=ticket, payload=payload, dispatch=False
            )
        )
    return events


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
