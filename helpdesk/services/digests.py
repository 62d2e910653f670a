"""Digest emails: one message per period listing everything a digest-mode user missed.

Why: fifty SLA alerts in a burst should be one email, not fifty. Dispatch parks a digest
user's deliveries in status "digest"; `send_digests` (every minute) finds the (org, user)
pairs whose period has passed since their last digest — for a first digest, since the
oldest waiting item — claims all of their waiting rows in one UPDATE (so two runs never
send the same digest), sends one email, and marks the rows delivered together. A failed
send puts them back to wait as a unit, with the same backoff ladder as single deliveries
(next_attempt_at on the rows says "not before"); after the last attempt, or a permanent
SMTP error, they are dead. Rows a killed run left in "sending" are picked up by the relay
and sent one by one: late, but never lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import and_, func, select, update
from sqlalchemy.orm import Session

from helpdesk.models import (
    Delivery,
    DeliveryStatus,
    NotificationMode,
    NotificationPreference,
    Organization,
    OutboxEvent,
)
from helpdesk.services import delivery_channels, notification_content
from helpdesk.services.deliveries import MAX_ATTEMPTS, backoff, short_error
from helpdesk.services.delivery_channels import MailNotConfigured, Outcome
from helpdesk.services.mail_transport import make_message_id
from helpdesk.tenancy import unscoped


def due_digests(session: Session, now: datetime) -> list[tuple[int, int]]:
    """Return (org_id, user_id) pairs whose digest is due now, across all orgs."""
    pref = NotificationPreference
    with unscoped(session):
        rows = session.execute(
            select(
                Delivery.org_id,
                Delivery.user_id,
                func.min(Delivery.created_at),
                func.max(Delivery.next_attempt_at),
                pref.mode,
                pref.digest_minutes,
                pref.last_digest_at,
            )
            .outerjoin(pref, and_(pref.org_id == Delivery.org_id, pref.user_id == Delivery.user_id))
            .where(Delivery.status == DeliveryStatus.DIGEST)
            .group_by(Delivery.org_id, Delivery.user_id, pref.id)
            .order_by(Delivery.org_id, Delivery.user_id)
        ).all()
    due: list[tuple[int, int]] = []
    for org_id, user_id, oldest, not_before, mode, minutes, last in rows:
        if user_id is None:
            continue
        if not_before is not None and not_before > now:
            continue  # a failed digest waits for its backoff
        if mode == NotificationMode.DIGEST and now < (last or oldest) + timedelta(minutes=minutes):
            continue
        due.append((org_id, user_id))
    return due


def send_digest(session: Session, user_id: int, now: datetime) -> str | None:
    """Send one user's waiting digest in the session's org; return the rows' new status."""
    claimed = list(
        session.execute(
            update(Delivery)
            .where(Delivery.user_id == user_id, Delivery.status == DeliveryStatus.DIGEST)
            .values(
                status=DeliveryStatus.SENDING.value,
                attempts=Delivery.attempts + 1,
                next_attempt_at=now,
                updated_at=now,
            )
            .returning(Delivery.id, Delivery.org_id, Delivery.event_id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    if not claimed:
        session.rollback()
        return None
    session.commit()  # the claim is durable before any network I/O
    ids = [row.id for row in claimed]
    outcome = _send(session, claimed[0].org_id, user_id, ids, [r.event_id for r in claimed])
    return _finish(session, user_id, ids, outcome, now)


def _send(
    session: Session, org_id: int, user_id: int, ids: list[int], event_ids: list[int]
) -> Outcome:
    member = delivery_channels.recipient_member(session, org_id, user_id)
    if member is None or not member.is_staff:
        return Outcome(DeliveryStatus.SKIPPED, "the recipient left, was deactivated or is no staff")
    pref = session.scalar(
        select(NotificationPreference).where(NotificationPreference.user_id == user_id)
    )
    if pref is not None and pref.mode == NotificationMode.OFF:
        return Outcome(DeliveryStatus.SKIPPED, "the recipient turned notifications off")
    org = session.get(Organization, org_id)
    events = list(session.scalars(select(OutboxEvent).where(OutboxEvent.id.in_(event_ids))))
    if org is None or not events:
        return Outcome(DeliveryStatus.SKIPPED, "the events no longer exist")
    try:
        settings = delivery_channels.mail_settings()
    except MailNotConfigured as exc:
        return Outcome(DeliveryStatus.FAILED, str(exc))
    content = notification_content.digest_email(
        session, org, member.user, events, str(current_app.config["BASE_URL"])
    )
    message_id = make_message_id("digest", f"{user_id}-{min(ids)}", settings.domain)
    mail = delivery_channels.build_mail(settings, org, member.user.email, content, message_id)
    session.commit()  # end the read transaction: none stays open during network I/O
    return delivery_channels.smtp_outcome(settings, mail)


def _finish(session: Session, user_id: int, ids: list[int], outcome: Outcome, now: datetime) -> str:
    """Record the digest's outcome on all its rows at once; a retry keeps them together."""
    values: dict[str, Any] = {"updated_at": now, "last_error": short_error(outcome.error)}
    status = outcome.status
    if status == DeliveryStatus.FAILED:
        attempts = session.scalar(select(func.max(Delivery.attempts)).where(Delivery.id.in_(ids)))
        if (attempts or 0) >= MAX_ATTEMPTS:
            status = DeliveryStatus.DEAD
        else:
            values["next_attempt_at"] = now + backoff(attempts or 1)
            status = DeliveryStatus.DIGEST  # waits for the next run, as a unit
    values["status"] = status.value
    if status == DeliveryStatus.DELIVERED:
        values["delivered_at"] = now
    elif status in (DeliveryStatus.DEAD, DeliveryStatus.SKIPPED):
        values["next_attempt_at"] = None
    session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status == DeliveryStatus.SENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if status == DeliveryStatus.DELIVERED:
        session.execute(
            update(NotificationPreference)
            .where(NotificationPreference.user_id == user_id)
            .values(last_digest_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return status.value
