"""Fixtures for the job tests: a settable clock for the ticket services and SLA policies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from helpdesk.models import BusinessCalendar, Organization, SlaPolicy
from helpdesk.services import tickets
from helpdesk.tenancy import tenant_scope

# A Friday in winter (Europe/Berlin is UTC+1): far from any DST change.
T0 = datetime(2027, 1, 15, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The time the ticket services see; move it with `at` or `advance`."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, when: datetime) -> datetime:
        self.now = when
        return when

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Freeze the clock of services/tickets.py (created_at, hook `now`) at T0."""
    frozen = Clock()
    monkeypatch.setattr(tickets, "utcnow", frozen)
    return frozen


MakePolicy = Callable[..., SlaPolicy]


@pytest.fixture
def sla_policy(session: Session) -> MakePolicy:
    """Return a builder: add an SLA policy (and optionally a calendar) to an org."""

    def build(
        org: Organization,
        priority: str = "normal",
        first_response: int = 60,
        resolution: int = 240,
        warn_at_percent: Sequence[int] = (),
        warn_before_minutes: Sequence[int] = (),
        calendar: dict[str, Any] | None = None,
    ) -> SlaPolicy:
        with tenant_scope(session, org.id):
            cal = None
            if calendar is not None:
                cal = BusinessCalendar(name=f"{priority} hours", **calendar)
                session.add(cal)
                session.flush()
            policy = SlaPolicy(
                priority=priority,
                first_response_minutes=first_response,
                resolution_minutes=resolution,
                calendar_id=cal.id if cal else None,
                warn_at_percent=list(warn_at_percent),
                warn_before_minutes=list(warn_before_minutes),
            )
            session.add(policy)
            session.commit()
        return policy

    return build
