"""Sending one delivery reliably: a state machine on its row, backoff, dead letters, digests.

Why the state lives on the row and not in RQ: a queue entry can be lost (Redis restarted, a
worker killed mid-job), a row cannot. Every attempt first *claims* the row —
``UPDATE … SET status='sending', attempts=attempts+1 WHERE id=… AND status IN ('pending',
'failed') AND next_attempt_at <= now RETURNING`` — and commits that claim before any network
I/O, so a duplicate job or a second worker finds nothing to claim. The outcome is written
only if the row is still in the claimed attempt (``status='sending' AND attempts=n``), so a
late writer never overwrites a newer attempt.

* Failure → ``failed`` with ``next_attempt_at`` = now + 10 s, 1 min, 5 min, 30 min, 2 h
  (±20 % jitter); the 6th failed attempt → ``dead`` (parked, never blocks others).
  Permanent errors (5xx from SMTP, a refused URL, HTTP 410) → ``dead`` at once.
* The relay (every 5 s, `relay_deliveries`) is the only retry driver: it re-enqueues
  failed rows that are due, pending rows whose job was lost (> 10 s), and rows a killed
  worker left in ``sending`` longer than the transport timeout + 60 s. It re-arms them as
  ``pending`` with ``updated_at`` = now, so each is queued once per 10 s at most.
* Webhook endpoints: HTTP 410 disables the endpoint at once; 5 dead deliveries in a row
  disable it; a delivered one resets the count. Disabling queues
  ``jobs.notify.endpoint_disabled``, which emails the org's admins directly (there is no
  event kind for it on purpose: it is about the integration, not about a ticket).
* Webhooks switched off (the ``webhooks`` feature flag): a due webhook delivery is *held*
  instead of claimed — back to ``pending``, ``next_attempt_at`` = now + 30 s, no attempt
  counted — so nothing is marked failed or dead while the flag is off; the relay keeps
  re-queuing it and it goes out once the flag is on. Email deliveries are not affected.
* Digests: ``digest`` rows wait for `send_digest`, which claims them as a unit, sends one
  email and marks them all delivered — or puts them back to wait (with backoff) as a unit.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Select, and_, case, or_, select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    EventKind,
    OutboxEvent,
    WebhookEndpoint,
)
from helpdesk.services import delivery_channels, flags, tasks
from helpdesk.services.delivery_channels import MailNotConfigured, Outcome, mail_settings
from helpdesk.services.errors import Conflict, NotFound, ValidationError
from helpdesk.tenancy import unscoped

BACKOFF_SECONDS = (10, 60, 300, 1800, 7200)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
JITTER = 0.2
DEAD_ENDPOINT_LIMIT = 5
LOST_AFTER_SECONDS = 10
ABANDON_GRACE_SECONDS = 60
ERROR_MAX = 500
DELIVER_JOB = "jobs.notify.deliver"
ENDPOINT_DISABLED_JOB = "jobs.notify.endpoint_disabled"
ABANDONED = "the worker stopped during this attempt (killed or crashed); retrying"
HOLD_SECONDS = 30  # how often a held webhook delivery looks at the flag again
HELD = "held: webhooks are switched off site-wide (flag webhooks); sent once they are back on"
_ACTIVE = [DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value, DeliveryStatus.FAILED.value]
_random = secrets.SystemRandom()
log = logging.getLogger(__name__)


def backoff(attempts: int) -> timedelta:
    """Return the wait after the `attempts`-th failure: the ladder step with ±20 % jitter."""
    step = BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]
    return timedelta(seconds=step * _random.uniform(1 - JITTER, 1 + JITTER))


def abandon_after() -> timedelta:
    """How long a row may sit in "sending" before it counts as abandoned by a dead worker."""
    timeout = float(current_app.config.get("WEBHOOK_TIMEOUT") or 10)
    with contextlib.suppress(MailNotConfigured):
        timeout = max(timeout, mail_settings().smtp.timeout)
    return timedelta(seconds=timeout + ABANDON_GRACE_SECONDS)


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Rows an attempt may take now: due (pending/failed) or abandoned in "sending"."""
    due = and_(
        Delivery.status.in_([DeliveryStatus.PENDING.value, DeliveryStatus.FAILED.value]),
        Delivery.next_attempt_at <= now,
    )
    abandoned = and_(
        Delivery.status == DeliveryStatus.SENDING, Delivery.updated_at < now - abandon_after()
    )
    return or_(due, abandoned)


def claim(session: Session, delivery_id: int, now: datetime) -> Delivery | None:
    """Take the row for one attempt (not committed); None when it is not due or taken."""
    stmt = (
        update(Delivery)
        .where(Delivery.id == delivery_id, _claimable(now))
        .values(status=DeliveryStatus.SENDING.value, attempts=Delivery.attempts + 1, updated_at=now)
        .returning(Delivery)
    )
    return session.scalars(stmt).one_or_none()


def hold(session: Session, delivery_id: int, now: datetime) -> bool:
    """Put a due webhook delivery back to pending for HOLD_SECONDS, counting no attempt; commits.

    The `webhooks` flag is off: the row keeps its attempts, says why it waits, and the relay
    queues it again once it is due, until the flag is back on. False if it is not a webhook
    delivery that is due (an email, or a row another worker took).
    """
    held = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery_id,
            Delivery.channel == DeliveryChannel.WEBHOOK.value,
            _claimable(now),
        )
        .values(
            status=DeliveryStatus.PENDING.value,
            next_attempt_at=now + timedelta(seconds=HOLD_SECONDS),
            updated_at=now,
            last_error=HELD,
        )
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).first()
    session.commit()
    if held is not None:
        held_fields = {"event": "delivery.held", "delivery_id": delivery_id, "flag": "webhooks"}
        log.info("delivery_held delivery_id=%s (webhooks off)", delivery_id, extra=held_fields)
    return held is not None


def attempt(session: Session, delivery_id: int, now: datetime | None = None) -> str | None:
    """Claim, send and record one delivery; return its new status, or None if not claimed.

    While the `webhooks` flag is off, a webhook delivery is held instead (still pending).
    """
    now = now or utcnow()
    if not flags.is_enabled(session, "webhooks") and hold(session, delivery_id, now):
        return DeliveryStatus.PENDING.value
    delivery = claim(session, delivery_id, now)
    if delivery is None:
        session.rollback()
        return None
    session.commit()  # the claim is durable before any network I/O
    started = time.monotonic()
    try:
        outcome = delivery_channels.send(session, delivery, now)
    except Exception as exc:  # a bug must not leave the row in "sending" until the relay
        log.exception("delivery_crashed delivery_id=%s", delivery.id)
        session.rollback()
        outcome = Outcome(DeliveryStatus.FAILED, f"internal error ({type(exc).__name__})")
    finished = now + timedelta(seconds=time.monotonic() - started)
    return _finish(session, delivery, outcome, finished)


def redeliver(session: Session, delivery_id: int, now: datetime) -> Delivery:
    """Send a delivery again from attempt 1 (any status but "sending"); commits and queues it."""
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"delivery {delivery_id} not found")
    if delivery.status == DeliveryStatus.SENDING:
        raise Conflict("this delivery is being sent right now; try again in a minute")
    if delivery.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint is None or not endpoint.active:
            raise Conflict("the webhook endpoint is disabled; enable it, then redeliver")
    delivery.status = DeliveryStatus.PENDING.value
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.updated_at = now
    delivery.last_error = None
    tasks.after_commit(session, DELIVER_JOB, delivery.org_id, delivery.id, queue="notify")
    session.commit()
    return delivery


def retry_dead(
    session: Session, *, kind: str | None = None, endpoint_id: int | None = None, now: datetime
) -> int:
    """Put dead deliveries (all orgs, optionally one kind/endpoint) back to pending; commits."""
    if kind is not None and kind not in {k.value for k in EventKind}:
        known = ", ".join(k.value for k in EventKind)
        raise ValidationError({"event": f"unknown event kind {kind!r}; use one of {known}"})
    with unscoped(session):
        stmt = update(Delivery).where(Delivery.status == DeliveryStatus.DEAD)
        if kind is not None:
            stmt = stmt.where(
                Delivery.event_id.in_(select(OutboxEvent.id).where(OutboxEvent.kind == kind))
            )
        if endpoint_id is not None:
            stmt = stmt.where(Delivery.endpoint_id == endpoint_id)
        rows = session.execute(
            stmt.values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                updated_at=now,
                last_error=None,
            )
            .returning(Delivery.org_id, Delivery.id)
            .execution_options(synchronize_session=False)
        ).all()
        for org_id, delivery_id in rows:
            tasks.after_commit(session, DELIVER_JOB, org_id, delivery_id, queue="notify")
        session.commit()
    return len(rows)


def relay_query(now: datetime, limit: int = 500) -> Select[int, int, str]:
    """Select (id, org_id, status) of rows the relay must re-queue, on ix_deliveries_due."""
    lost, abandoned = now - timedelta(seconds=LOST_AFTER_SECONDS), now - abandon_after()
    return (
        select(Delivery.id, Delivery.org_id, Delivery.status)
        .where(
            Delivery.status.in_(_ACTIVE),  # the partial index's own predicate
            Delivery.next_attempt_at <= now,
            or_(
                Delivery.status == DeliveryStatus.FAILED,
                and_(Delivery.status == DeliveryStatus.PENDING, Delivery.updated_at < lost),
                and_(Delivery.status == DeliveryStatus.SENDING, Delivery.updated_at < abandoned),
            ),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def relay_deliveries(session: Session, now: datetime, limit: int = 500) -> dict[str, int]:
    """Re-arm and queue deliveries that are due, lost or abandoned (all orgs); commits.

    `now` decides what is overdue; in production it is the current time.
    """
    with unscoped(session):
        rows = session.execute(relay_query(now, limit)).all()
        if rows:
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_([r.id for r in rows]))
                .values(
                    status=DeliveryStatus.PENDING.value,
                    updated_at=now,
                    last_error=case(
                        (Delivery.status == DeliveryStatus.SENDING, ABANDONED),
                        else_=Delivery.last_error,
                    ),
                )
                .execution_options(synchronize_session=False)
            )
            for row in rows:
                tasks.after_commit(session, DELIVER_JOB, row.org_id, row.id, queue="notify")
        session.commit()
    counts = {"due": 0, "lost": 0, "abandoned": 0}
    names = {"failed": "due", "pending": "lost", "sending": "abandoned"}
    for row in rows:
        counts[names[row.status]] += 1
    return counts


def _finish(session: Session, delivery: Delivery, outcome: Outcome, now: datetime) -> str | None:
    """Write the attempt's outcome if the row is still ours; update the endpoint's health."""
    status = outcome.status
    if status == DeliveryStatus.FAILED and delivery.attempts >= MAX_ATTEMPTS:
        status = DeliveryStatus.DEAD
    values: dict[str, Any] = {
        "status": status.value,
        "updated_at": now,
        "last_error": short_error(outcome.error),
        "response_status": outcome.response_status,
    }
    if status == DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    elif status == DeliveryStatus.FAILED:
        values["next_attempt_at"] = now + backoff(delivery.attempts)
    mine = session.execute(
        update(Delivery)
        .where(
            Delivery.id == delivery.id,
            Delivery.status == DeliveryStatus.SENDING,
            Delivery.attempts == delivery.attempts,
        )
        .values(**values)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).first()
    if mine is None:
        session.rollback()
        log.warning("delivery_outcome_dropped delivery_id=%s (row moved on)", delivery.id)
        return None
    if delivery.endpoint_id is not None:
        _track_endpoint(session, delivery, status, outcome, now)
    session.commit()
    log.log(logging.INFO if status == DeliveryStatus.DELIVERED else logging.WARNING,
            "delivery_%s delivery_id=%s attempts=%s", status.value, delivery.id, delivery.attempts,
            extra={"event": f"delivery.{status.value}", "delivery_id": delivery.id,
                   "org_id": delivery.org_id, "channel": delivery.channel,
                   "attempts": delivery.attempts, "response_status": outcome.response_status,
                   "error": short_error(outcome.error)})  # fmt: skip
    return status.value


def _track_endpoint(
    session: Session, delivery: Delivery, status: DeliveryStatus, outcome: Outcome, now: datetime
) -> None:
    endpoint_id = delivery.endpoint_id
    if status == DeliveryStatus.DELIVERED:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.consecutive_dead != 0)
            .values(consecutive_dead=0)
            .execution_options(synchronize_session=False)
        )
        return
    if status != DeliveryStatus.DEAD or endpoint_id is None:
        return
    count = session.scalar(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id)
        .values(consecutive_dead=WebhookEndpoint.consecutive_dead + 1, updated_at=now)
        .returning(WebhookEndpoint.consecutive_dead)
        .execution_options(synchronize_session=False)
    )
    if outcome.gone:
        disable_endpoint(
            session, delivery.org_id, endpoint_id, "the receiver answered 410 Gone", now
        )
    elif count is not None and count >= DEAD_ENDPOINT_LIMIT:
        reason = f"{count} deliveries in a row failed after every retry (last: {outcome.error})"
        disable_endpoint(session, delivery.org_id, endpoint_id, reason, now)


def disable_endpoint(
    session: Session, org_id: int, endpoint_id: int, reason: str, now: datetime
) -> bool:
    """Switch an active endpoint off and queue the admin notice after commit; False if off."""
    changed = session.scalar(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.active.is_(True))
        .values(active=False, disabled_reason=short_error(reason), updated_at=now)
        .returning(WebhookEndpoint.id)
        .execution_options(synchronize_session=False)
    )
    if changed is None:
        return False
    tasks.after_commit(session, ENDPOINT_DISABLED_JOB, org_id, endpoint_id, queue="notify")
    return True


def short_error(text: str | None) -> str | None:
    """Flatten an error to one line of at most ERROR_MAX characters (None stays None)."""
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= ERROR_MAX else flat[: ERROR_MAX - 1] + "…"
