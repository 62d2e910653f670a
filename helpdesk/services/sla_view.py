"""The SLA timeline on the ticket page: targets, pauses, warnings, breaches, in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import BREACH_LEVEL, SlaEvent, SlaPause, Ticket

TARGET_LABELS = {"first_response": "first response", "resolution": "resolution"}


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # due | met | pause | resume | warning | breach | solved
    label: str


def _target(name: str) -> str:
    return TARGET_LABELS.get(name, name.replace("_", " "))


def timeline(session: Session, ticket: Ticket) -> list[TimelineEntry]:
    """What happened to the ticket's SLA so far, plus the due times still ahead.

    A due time is not repeated once its breach is on the timeline.
    """
    if ticket.sla_state is None:
        return []
    entries: list[TimelineEntry] = []
    pauses = session.scalars(select(SlaPause).where(SlaPause.ticket_id == ticket.id))
    for pause in pauses:
        entries.append(TimelineEntry(pause.started_at, "pause", "clock paused"))
        if pause.ended_at is not None:
            entries.append(TimelineEntry(pause.ended_at, "resume", "clock resumed"))
    fired = session.scalars(select(SlaEvent).where(SlaEvent.ticket_id == ticket.id))
    breached: set[str] = set()
    for event in fired:
        if event.level == BREACH_LEVEL:
            breached.add(event.target)
            label = f"{_target(event.target)} target breached"
            entries.append(TimelineEntry(event.threshold_at, "breach", label))
        else:
            label = f"{_target(event.target)} warning ({event.level} of target)"
            entries.append(TimelineEntry(event.threshold_at, "warning", label))
    if ticket.first_responded_at is not None:
        entries.append(TimelineEntry(ticket.first_responded_at, "met", "first response sent"))
    elif ticket.first_response_due_at is not None and "first_response" not in breached:
        entries.append(TimelineEntry(ticket.first_response_due_at, "due", "first response due"))
    if ticket.solved_at is not None:
        entries.append(TimelineEntry(ticket.solved_at, "solved", "solved"))
    elif ticket.resolution_due_at is not None and "resolution" not in breached:
        entries.append(TimelineEntry(ticket.resolution_due_at, "due", "resolution due"))
    return sorted(entries, key=lambda e: e.at)
