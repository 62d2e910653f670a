"""Notification jobs: dispatch outbox events, deliver one message, relay, digests, notices.

Each job takes ids only (org id first) and runs one service call in its org's tenant scope;
the periodic ones (`relay`, `send_digests`, listed in jobs/cron.py) loop over orgs from a
`system_session()` and handle each org in its own scoped session, so one bad row is logged
and skipped rather than stopping the loop. `now` exists for tests; cron passes nothing.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import JobRun, OutboxEvent
from helpdesk.services import deliveries, delivery_channels, digests
from helpdesk.services import dispatch as dispatching
from jobs.context import org_session, system_session

log = logging.getLogger(__name__)
RELAY_LIMIT = 500


def dispatch(org_id: int, *event_ids: int) -> None:
    """Turn outbox events of one org into deliveries (idempotent) and queue them."""
    with org_session(org_id) as session:
        for event_id in event_ids:
            event = session.get(OutboxEvent, event_id)
            if event is None:
                log.warning("dispatch_missing org_id=%s event_id=%s", org_id, event_id)
                continue
            queued = dispatching.dispatch_event(session, event)
            log.info("dispatched event_id=%s kind=%s queued=%s", event_id, event.kind, len(queued))


def deliver(org_id: int, delivery_id: int) -> None:
    """Make one attempt at a delivery (a duplicate or early job does nothing)."""
    with org_session(org_id) as session:
        deliveries.attempt(session, delivery_id)


def endpoint_disabled(org_id: int, endpoint_id: int) -> None:
    """Email the org's admins that a webhook endpoint was switched off."""
    with org_session(org_id) as session:
        told = delivery_channels.notify_endpoint_disabled(session, endpoint_id)
        log.info("endpoint_disabled_notice endpoint_id=%s admins=%s", endpoint_id, told)


def relay(now: datetime | None = None) -> dict[str, int]:
    """Dispatch overdue outbox events and re-queue due, lost and abandoned deliveries."""
    now = now or utcnow()
    started = time.monotonic()
    with system_session() as session:
        pending = dispatching.undispatched_events(session, now, RELAY_LIMIT)
        session.rollback()
    dispatched = failed = 0
    for org_id, event_id in pending:
        try:
            with org_session(org_id) as session:
                event = session.get(OutboxEvent, event_id)
                if event is not None:
                    dispatching.dispatch_event(session, event)
                    dispatched += 1
        except Exception:
            failed += 1
            log.exception("relay_dispatch_failed org_id=%s event_id=%s", org_id, event_id)
    with system_session() as session:
        counts = deliveries.relay_deliveries(session, now, RELAY_LIMIT)
        info = {"events": dispatched, "event_errors": failed, **counts}
        _record_run(session, "notify.relay", now, started, info)
    return info


def send_digests(now: datetime | None = None) -> dict[str, int]:
    """Send every digest that is due (one email per user and org)."""
    now = now or utcnow()
    started = time.monotonic()
    with system_session() as session:
        due = digests.due_digests(session, now)
        session.rollback()
    outcomes: dict[str, int] = {}
    for org_id, user_id in due:
        try:
            with org_session(org_id) as session:
                status = digests.send_digest(session, user_id, now) or "taken"
        except Exception:
            status = "error"
            log.exception("digest_failed org_id=%s user_id=%s", org_id, user_id)
        outcomes[status] = outcomes.get(status, 0) + 1
    with system_session() as session:
        _record_run(session, "notify.digests", now, started, {"due": len(due), **outcomes})
    return outcomes


def _record_run(
    session: Session, name: str, now: datetime, started: float, info: dict[str, Any]
) -> None:
    elapsed = time.monotonic() - started
    session.merge(
        JobRun(
            name=name,
            started_at=now,
            finished_at=now + timedelta(seconds=elapsed),
            duration_ms=round(elapsed * 1000),
            info=info,
        )
    )
    session.commit()
