"""Who hears about an outbox event: one Delivery row per email recipient and webhook endpoint.

Why a separate step after the commit: the request only writes the event; choosing recipients
reads memberships, preferences and endpoints, and the sending itself is slow network I/O.
Dispatch is idempotent: it locks the event row, does nothing once `dispatched_at` is set, and
inserts deliveries with ON CONFLICT DO NOTHING on (event, channel, target), so the dispatch job
and the relay may both run for the same event without duplicating a single message.

Email recipients (channel "email", target "user:<id>"), never the person who acted, except
that a requester always gets their own acknowledgement of a new ticket:

* Staff with no NotificationPreference row get the defaults: ticket.created → the assignee;
  comment.created → the assignee; ticket.updated → the newly assigned person and, on a status
  change, the assignee; sla.warning/sla.breached → the assignee, or every admin when nobody
  is assigned; attachment.infected → the admins.
* Staff with a preference row get exactly the kinds listed in its `events`, for every ticket
  of the org (the row is a subscription, like a watcher), in its `mode`: immediate → a pending
  delivery, digest → a "digest" delivery for the next digest email, off → nothing.
* The requester (always immediate): ticket.created, and public replies written by staff.
  Internal notes never produce a requester delivery.

Webhooks (channel "webhook", target "webhook:<id>"): every active endpoint of the org whose
`events` contains the kind or "*".
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import (
    Comment,
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    EventKind,
    Membership,
    NotificationMode,
    NotificationPreference,
    OutboxEvent,
    Role,
    Ticket,
    User,
    WebhookEndpoint,
)
from helpdesk.services import tasks

DELIVER_JOB = "jobs.notify.deliver"
DISPATCH_JOB = "jobs.notify.dispatch"
RELAY_DELAY_SECONDS = 3  # an event younger than this still has its own dispatch job coming


def dispatch_event(session: Session, event: OutboxEvent, now: datetime | None = None) -> list[int]:
    """Create the event's deliveries once, commit, and queue the new pending ones.

    Returns the ids of deliveries queued for sending now (empty when the event was already
    dispatched). The caller's session must be in the event's tenant scope.
    """
    now = now or utcnow()
    dispatched_at = session.scalar(
        select(OutboxEvent.dispatched_at).where(OutboxEvent.id == event.id).with_for_update()
    )
    if dispatched_at is not None:
        session.rollback()
        return []
    ticket = session.get(Ticket, event.ticket_id) if event.ticket_id is not None else None
    rows = [
        _row(event, DeliveryChannel.EMAIL, f"user:{uid}", now, user_id=uid, mode=mode)
        for uid, mode in sorted(email_recipients(session, event, ticket).items())
    ]
    rows += [
        _row(event, DeliveryChannel.WEBHOOK, f"webhook:{eid}", now, endpoint_id=eid)
        for eid in webhook_endpoint_ids(session, event.org_id, event.kind)
    ]
    queued: list[int] = []
    if rows:
        inserted = session.execute(
            insert(Delivery)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["event_id", "channel", "target"])
            .returning(Delivery.id, Delivery.status)
        ).all()
        queued = sorted(i for i, status in inserted if status == DeliveryStatus.PENDING)
    session.execute(
        update(OutboxEvent)
        .where(OutboxEvent.id == event.id)
        .values(dispatched_at=now)
        .execution_options(synchronize_session=False)
    )
    for delivery_id in queued:
        tasks.after_commit(session, DELIVER_JOB, event.org_id, delivery_id, queue="notify")
    session.commit()
    event.dispatched_at = now
    return queued


def undispatched_events(session: Session, now: datetime, limit: int = 500) -> list[tuple[int, int]]:
    """Return (org_id, event_id) of events whose dispatch is overdue, oldest first (all orgs)."""
    cutoff = now - timedelta(seconds=RELAY_DELAY_SECONDS)
    rows = session.execute(
        select(OutboxEvent.org_id, OutboxEvent.id)
        .where(
            OutboxEvent.dispatched_at.is_(None),
            OutboxEvent.created_at < cutoff,
        )
        .order_by(OutboxEvent.created_at)
        .limit(limit)
    ).all()
    return [(org_id, event_id) for org_id, event_id in rows]


def email_recipients(session: Session, event: OutboxEvent, ticket: Ticket | None) -> dict[int, str]:
    """Map user id → "immediate" or "digest" for everyone who gets an email about the event."""
    staff = _staff_roles(session, event.org_id)
    prefs = {
        p.user_id: p
        for p in session.scalars(
            select(NotificationPreference).where(NotificationPreference.org_id == event.org_id)
        )
    }
    defaults = _default_staff(event, ticket, staff)
    chosen: dict[int, str] = {}
    for user_id in staff:
        pref = prefs.get(user_id)
        if pref is None:
            if user_id in defaults:
                chosen[user_id] = NotificationMode.IMMEDIATE.value
        elif (
            (user_id in defaults or pref.watch_all)
            and event.kind in pref.events
            and pref.mode != NotificationMode.OFF
        ):
            chosen[user_id] = pref.mode
    if event.actor_id is not None:
        chosen.pop(event.actor_id, None)
    if ticket is not None and _requester_hears(session, event, ticket, staff):
        chosen[ticket.requester_id] = NotificationMode.IMMEDIATE.value
    return chosen


def webhook_endpoint_ids(session: Session, org_id: int, kind: str) -> list[int]:
    """Return the ids of the org's active endpoints subscribed to this kind (or to "*")."""
    return list(
        session.scalars(
            select(WebhookEndpoint.id)
            .where(
                WebhookEndpoint.org_id == org_id,
                WebhookEndpoint.active.is_(True),
                or_(
                    WebhookEndpoint.events.contains([kind]), WebhookEndpoint.events.contains(["*"])
                ),
            )
            .order_by(WebhookEndpoint.id)
        )
    )


def _row(
    event: OutboxEvent,
    channel: DeliveryChannel,
    target: str,
    now: datetime,
    *,
    user_id: int | None = None,
    endpoint_id: int | None = None,
    mode: str = NotificationMode.IMMEDIATE.value,
) -> dict[str, Any]:
    digest = mode == NotificationMode.DIGEST
    return {
        "org_id": event.org_id,
        "event_id": event.id,
        "channel": channel.value,
        "target": target,
        "user_id": user_id,
        "endpoint_id": endpoint_id,
        "status": (DeliveryStatus.DIGEST if digest else DeliveryStatus.PENDING).value,
        "attempts": 0,
        "next_attempt_at": None if digest else now,
        "created_at": now,
        "updated_at": now,
    }


def _staff_roles(session: Session, org_id: int) -> dict[int, str]:
    """Active admins and agents of the org: user id → role."""
    rows = session.execute(
        select(Membership.user_id, Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.org_id == org_id,
            Membership.role.in_([Role.ADMIN.value, Role.AGENT.value]),
            User.active.is_(True),
        )
    ).all()
    return {user_id: role for user_id, role in rows}


def _default_staff(event: OutboxEvent, ticket: Ticket | None, staff: dict[int, str]) -> set[int]:
    """Staff who hear about the event when they have set no preferences."""
    admins = {uid for uid, role in staff.items() if role == Role.ADMIN}
    assignee = ticket.assignee_id if ticket is not None else None
    wanted: set[int] = set()
    if event.kind in (EventKind.TICKET_CREATED, EventKind.COMMENT_CREATED) and assignee:
        wanted.add(assignee)
    elif event.kind == EventKind.TICKET_UPDATED:
        changes = event.payload.get("changes") or {}
        assigned = changes.get("assignee_id")
        if isinstance(assigned, list) and len(assigned) == 2 and isinstance(assigned[1], int):
            wanted.add(assigned[1])
        if "status" in changes and assignee:
            wanted.add(assignee)
    elif event.kind in (EventKind.SLA_WARNING, EventKind.SLA_BREACHED):
        wanted = {assignee} if assignee in staff else admins
    elif event.kind == EventKind.ATTACHMENT_INFECTED:
        wanted = admins
    return wanted & staff.keys()


def _requester_hears(
    session: Session, event: OutboxEvent, ticket: Ticket, staff: dict[int, str]
) -> bool:
    """The requester gets their ticket's acknowledgement and public replies from staff."""
    requester = session.get(User, ticket.requester_id)
    if requester is None or not requester.active:
        return False
    if event.kind == EventKind.TICKET_CREATED:
        return True
    if event.kind != EventKind.COMMENT_CREATED:
        return False
    if event.actor_id is None or event.actor_id == ticket.requester_id:
        return False
    if event.actor_id not in staff or event.payload.get("internal") is not False:
        return False
    comment_id = event.payload.get("comment_id")
    comment = session.get(Comment, comment_id) if isinstance(comment_id, int) else None
    return comment is not None and comment.ticket_id == ticket.id and not comment.internal
