"""SLA engine: due times in business minutes, pauses, and the thresholds the sweep fires.

Why it is built this way:

* The due times stored on the ticket are the promise. They are computed from the policy for
  the ticket's priority when it opens (business time on the policy's calendar from
  `created_at`), and computed again only when its priority changes or it is reopened after
  solving (then: target + the business time of every ended pause). Editing or deleting a
  policy leaves the promises of open tickets alone (services/sla_admin.py says so to admins).
* Pauses: pending/on_hold start an `SlaPause`; leaving them ends it and moves every unmet
  due time by the paused business time: `add_business_seconds(cal, old_due, paused)`.
  Solving stops the clocks (due times and next check NULL, `sla_state` kept as history);
  reopening a solved ticket records the solved stretch as an ended pause and recomputes, so
  the clocks resume where they stood. Closed is final: a ticket reopened after closing has
  no clock.
* Thresholds are walked back from the stored due time with the current policy's target and
  warnings: "p%" when (100-p)% of the target is left, "mm" m business minutes before the
  due time, the breach at the due time. With the policy deleted only the breach is left.
  `sla_next_check_at` is the earliest threshold not fired yet; NULL when none is left,
  while paused, and once solved/closed.
* Clock facts (`first_responded_at`, `solved_at`, `sla_paused_at`, `SlaPause` rows) are kept
  for every ticket, with or without a policy, so a priority change onto a policy starts from
  the truth (a reply already given is not reported as a missed first response). Due times,
  next check and `sla_state` are NULL when no SLA applies; `sla_state` NULL *means* that.
* Hooks never fire alerts: only the sweep (services/sla_sweep.py) writes `SlaEvent`s and
  their outbox events, so exactly-once has one home. A hook locks the ticket row first and
  reads fired events after the lock, so what it stores counts every alert a concurrent sweep
  has committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import (
    BREACH_LEVEL,
    Comment,
    Membership,
    SlaEvent,
    SlaPause,
    SlaPolicy,
    SlaState,
    SlaTarget,
    Status,
    Ticket,
    TicketEvent,
)
from helpdesk.services.business_time import (
    Calendar,
    CalendarError,
    add_business_seconds,
    business_seconds_between,
)

PAUSE_STATUSES = frozenset({Status.PENDING.value, Status.ON_HOLD.value})
DONE_STATUSES = frozenset({Status.SOLVED.value, Status.CLOSED.value})
FIRST_RESPONSE, RESOLUTION = SlaTarget.FIRST_RESPONSE.value, SlaTarget.RESOLUTION.value
# Re-read under the row lock before a hook changes the ticket's SLA columns.
SLA_FIELDS = (
    "first_response_due_at",
    "resolution_due_at",
    "first_responded_at",
    "solved_at",
    "sla_paused_at",
    "sla_next_check_at",
    "sla_due_at",
    "sla_state",
)

FiredKey = tuple[str, str]  # (target, level)
log = logging.getLogger(__name__)


class SlaClock(Protocol):
    """The SLA columns of a ticket: a `Ticket`, or the sweep's plain row of them."""

    created_at: datetime
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_responded_at: datetime | None
    solved_at: datetime | None
    sla_paused_at: datetime | None
    sla_next_check_at: datetime | None
    sla_due_at: datetime | None
    sla_state: str | None


@dataclass(frozen=True)
class Threshold:
    """One alert instant of one target: a warning level or the breach."""

    target: str
    level: str
    at: datetime
    due_at: datetime
    minutes_left: float  # business minutes before the due time; 0 for the breach

    @property
    def key(self) -> FiredKey:
        return (self.target, self.level)

    @property
    def is_breach(self) -> bool:
        return self.level == BREACH_LEVEL


def calendar_of(policy: SlaPolicy | None) -> Calendar:
    """Return the policy's business calendar (24x7 without one or without a policy)."""
    row = policy.calendar if policy is not None else None
    if row is None:
        return Calendar.always()
    try:
        return Calendar.from_json(row.timezone, row.hours, row.holidays)
    except CalendarError as exc:  # stored calendars are validated on save; never block tickets
        log.error("sla_calendar_invalid calendar_id=%s errors=%s; using 24x7", row.id, exc.errors)
        return Calendar.always()


def unmet_due_times(ticket: SlaClock) -> dict[str, datetime]:
    """Return the stored due times of the targets still running."""
    if ticket.solved_at is not None:
        return {}
    due: dict[str, datetime] = {}
    if ticket.first_responded_at is None and ticket.first_response_due_at is not None:
        due[FIRST_RESPONSE] = ticket.first_response_due_at
    if ticket.resolution_due_at is not None:
        due[RESOLUTION] = ticket.resolution_due_at
    return due


def target_minutes(policy: SlaPolicy, target: str) -> int:
    """Return the policy's target for first response or resolution, in business minutes."""
    if target == FIRST_RESPONSE:
        return policy.first_response_minutes
    return policy.resolution_minutes


def warning_levels(policy: SlaPolicy, minutes: int) -> list[tuple[str, float]]:
    """Return (level, business minutes left) for the policy's warnings on a target."""
    percents = sorted({p for p in policy.warn_at_percent if 0 < p < 100})
    befores = sorted({m for m in policy.warn_before_minutes if 0 < m < minutes})
    return [(f"{p}%", minutes * (100 - p) / 100) for p in percents] + [
        (f"{m}m", float(m)) for m in befores
    ]


def thresholds_of(ticket: SlaClock, policy: SlaPolicy | None, cal: Calendar) -> list[Threshold]:
    """Return every threshold of the ticket's unmet targets, earliest first."""
    result: list[Threshold] = []
    for target, due_at in unmet_due_times(ticket).items():
        result.append(Threshold(target, BREACH_LEVEL, due_at, due_at, 0.0))
        levels = warning_levels(policy, target_minutes(policy, target)) if policy else []
        if not levels:
            continue
        span = business_seconds_between(cal, ticket.created_at, due_at)
        for level, left in levels:
            at = add_business_seconds(cal, ticket.created_at, max(0.0, span - left * 60))
            result.append(Threshold(target, level, at, due_at, left))
    result.sort(key=lambda t: (t.at, -t.minutes_left, t.target))
    return result


def state_of(due: dict[str, datetime], fired: set[FiredKey], clock: datetime) -> SlaState:
    """Breached, warning or ok, from fired alerts and the unmet due times at `clock`."""
    if any(level == BREACH_LEVEL for _target, level in fired):
        return SlaState.BREACHED
    if any(due_at <= clock for due_at in due.values()):
        return SlaState.BREACHED
    if any(target in due for target, _level in fired):
        return SlaState.WARNING
    return SlaState.OK


def refresh(
    ticket: SlaClock, thresholds: list[Threshold], fired: set[FiredKey], now: datetime
) -> None:
    """Set `sla_due_at`, `sla_next_check_at` and `sla_state` of a ticket under an SLA."""
    due = unmet_due_times(ticket)
    ticket.sla_due_at = min(due.values(), default=None)
    if ticket.solved_at is not None:  # done: the state stays as history
        ticket.sla_next_check_at = None
        ticket.sla_state = ticket.sla_state or SlaState.OK.value
        return
    paused = ticket.sla_paused_at
    pending = [t.at for t in thresholds if t.key not in fired]
    ticket.sla_next_check_at = None if paused is not None else min(pending, default=None)
    # While paused the clock stands at the pause start: a due time after it has not passed.
    ticket.sla_state = state_of(due, fired, paused or now).value


def clear(ticket: Ticket) -> None:
    """Remove due times, next check and state: no SLA applies."""
    ticket.first_response_due_at = ticket.resolution_due_at = None
    ticket.sla_due_at = ticket.sla_next_check_at = None
    ticket.sla_state = None


# --- hooks (called by services/tickets.py inside the request's transaction) ----------------


def ticket_opened(session: Session, ticket: Ticket, now: datetime) -> None:
    """Set due times for a new ticket from its org's policy for its priority."""
    policy = _policy(session, ticket.org_id, ticket.priority)
    if policy is None:
        clear(ticket)
        return
    _apply(session, ticket, policy, now, recompute=True, fired=set())


def fields_changed(
    session: Session, ticket: Ticket, changes: dict[str, tuple[object, object]], now: datetime
) -> None:
    """React to status/priority changes: pause, resume, recompute, solve."""
    status_change, priority_change = changes.get("status"), changes.get("priority")
    if status_change is None and priority_change is None:
        return
    _lock(session, ticket)
    old, new = (str(v) for v in status_change or (ticket.status, ticket.status))
    if _closed_for_good(session, ticket, old):
        return
    had_sla = ticket.sla_state is not None
    pause_start = _move_clock(session, ticket, old, new, now)
    if not had_sla and priority_change is None:
        return  # no SLA: only the clock facts were recorded
    reopened = old == Status.SOLVED and new not in DONE_STATUSES
    recompute = priority_change is not None or reopened
    priority = str(priority_change[1]) if priority_change else ticket.priority
    policy = _policy(session, ticket.org_id, priority)
    if policy is None and recompute:
        clear(ticket)  # nothing to compute new due times from
        return
    _apply(session, ticket, policy, now, recompute=recompute, resumed_from=pause_start)


def comment_added(
    session: Session, ticket: Ticket, comment: Comment, actor: Membership, now: datetime
) -> None:
    """Record the first public agent reply as the first response."""
    if comment.internal or not actor.is_staff or ticket.first_responded_at is not None:
        return
    _lock(session, ticket)
    if ticket.first_responded_at is not None:  # someone answered while we waited for the lock
        return
    ticket.first_responded_at = now
    if ticket.sla_state is None:
        return
    ticket.first_response_due_at = None
    _apply(session, ticket, _policy(session, ticket.org_id, ticket.priority), now)


def _policy(session: Session, org_id: int, priority: str) -> SlaPolicy | None:
    return session.scalar(
        select(SlaPolicy).where(SlaPolicy.org_id == org_id, SlaPolicy.priority == priority)
    )


def _lock(session: Session, ticket: Ticket) -> None:
    """Lock the ticket row and re-read its SLA columns (a sweep may have just written them).

    Pending changes are flushed first: a refresh would otherwise discard what this same
    transaction set a moment ago (the first response, then a status change in one reply).
    """
    session.flush()
    session.refresh(ticket, attribute_names=SLA_FIELDS, with_for_update=True)


def _closed_for_good(session: Session, ticket: Ticket, old: str) -> bool:
    """Whether the ticket was ever closed: its SLA is over, whatever its status is now."""
    if old == Status.CLOSED:
        return True
    if ticket.solved_at is None:
        return False
    if old not in DONE_STATUSES:
        return True  # solved_at outlives only a reopen after closing
    closed = select(TicketEvent.id).where(
        TicketEvent.ticket_id == ticket.id,
        TicketEvent.field == "status",
        TicketEvent.new_value == Status.CLOSED.value,
    )
    return session.scalar(closed.limit(1)) is not None


def _move_clock(
    session: Session, ticket: Ticket, old: str, new: str, now: datetime
) -> datetime | None:
    """Record pausing, resuming, solving and reopening; return the start of an ended pause."""
    if new in DONE_STATUSES:
        if old not in DONE_STATUSES:
            _end_pause(session, ticket, now)
            ticket.solved_at = now
            ticket.first_response_due_at = ticket.resolution_due_at = None
        return None
    if old == Status.SOLVED and ticket.solved_at is not None:
        # Reopened: the solved stretch counts like a pause; due times are recomputed.
        session.add(
            SlaPause(
                org_id=ticket.org_id, ticket_id=ticket.id, started_at=ticket.solved_at, ended_at=now
            )
        )
        ticket.solved_at = None
    if new in PAUSE_STATUSES:
        if ticket.sla_paused_at is None:
            session.add(SlaPause(org_id=ticket.org_id, ticket_id=ticket.id, started_at=now))
            ticket.sla_paused_at = now
        return None
    return _end_pause(session, ticket, now)


def _end_pause(session: Session, ticket: Ticket, now: datetime) -> datetime | None:
    started = ticket.sla_paused_at
    if started is None:
        return None
    open_pauses = select(SlaPause).where(
        SlaPause.ticket_id == ticket.id, SlaPause.ended_at.is_(None)
    )
    for pause in session.scalars(open_pauses):
        pause.ended_at = now
    ticket.sla_paused_at = None
    return started


def _apply(
    session: Session,
    ticket: Ticket,
    policy: SlaPolicy | None,
    now: datetime,
    *,
    recompute: bool = False,
    resumed_from: datetime | None = None,
    fired: set[FiredKey] | None = None,
) -> None:
    """Recompute or shift the due times as asked, then store next check and state."""
    cal = calendar_of(policy)
    try:
        if recompute and policy is not None:
            _recompute_due_times(session, ticket, policy, cal)
        elif resumed_from is not None:
            paused = business_seconds_between(cal, resumed_from, now)
            ticket.first_response_due_at = _later(cal, ticket.first_response_due_at, paused)
            ticket.resolution_due_at = _later(cal, ticket.resolution_due_at, paused)
        thresholds = thresholds_of(ticket, policy, cal)
    except ValueError:  # a calendar with no hours for years, a due time past year 9999
        log.exception("sla_plan_failed ticket_id=%s; the ticket has no SLA now", ticket.id)
        clear(ticket)
        return
    if fired is None:
        rows = session.execute(
            select(SlaEvent.target, SlaEvent.level).where(SlaEvent.ticket_id == ticket.id)
        )
        fired = {(target, level) for target, level in rows}
    refresh(ticket, thresholds, fired, now)


def _recompute_due_times(
    session: Session, ticket: Ticket, policy: SlaPolicy, cal: Calendar
) -> None:
    """Due = created_at + target + business time of every ended pause (none once done)."""
    if ticket.solved_at is not None:
        return
    rows = session.execute(
        select(SlaPause.started_at, SlaPause.ended_at).where(
            SlaPause.ticket_id == ticket.id, SlaPause.ended_at.is_not(None)
        )
    )
    paused = sum(business_seconds_between(cal, start, end) for start, end in rows if end)

    def due(target: str) -> datetime:
        seconds = target_minutes(policy, target) * 60 + paused
        return add_business_seconds(cal, ticket.created_at, seconds)

    met = ticket.first_responded_at is not None
    ticket.first_response_due_at = None if met else due(FIRST_RESPONSE)
    ticket.resolution_due_at = due(RESOLUTION)


def _later(cal: Calendar, due_at: datetime | None, seconds: float) -> datetime | None:
    return None if due_at is None else add_business_seconds(cal, due_at, seconds)
