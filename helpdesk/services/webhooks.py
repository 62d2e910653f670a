"""Webhook endpoints of an org: create, edit, rotate the secret, re-enable; delivery logs.

Why: the signing secret is a receiver's only proof that a call came from us, so it is shown
exactly once — in the response that created or rotated it — and never again: lists, pages
and the API show no part of it. A rotation keeps the previous secret signing for 24 hours
(the sender adds both signatures) so a receiver can switch without losing events; rotating
again inside that window retires the older secret at once. URLs go through the sender's own
SSRF guard (`webhook_http.check_url`) when saved, and the sender checks again on every call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import DateTime, Select, func, literal_column, select
from sqlalchemy.orm import Session

from helpdesk.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    EventKind,
    Membership,
    OutboxEvent,
    Ticket,
    User,
    WebhookEndpoint,
)
from helpdesk.services import audit, deliveries, webhook_http
from helpdesk.services.errors import NotFound, ValidationError
from helpdesk.services.sla_admin import ID_MAX, require_admin
from helpdesk.services.validation import one_line
from helpdesk.services.webhook_http import Network, UrlRefused

ALL_EVENTS = "*"
EVENTS = tuple(kind.value for kind in EventKind)
SECRET_OVERLAP = timedelta(hours=24)
DESCRIPTION_MAX = 200
LOG_LIMIT = 50
WHAT = "manage webhooks"


@dataclass
class WebhookInput:
    """An endpoint as sent; None means "not given" (required on create, kept on update)."""

    url: object = None
    events: object = None  # ["ticket.created", ...] or ["*"]
    description: object = None
    active: object = None  # True re-enables (clears the auto-disable state)


@dataclass(frozen=True)
class LogRow:
    """One delivery as the logs show it."""

    id: int
    created_at: datetime
    updated_at: datetime
    kind: str
    ticket_number: int | None
    channel: str
    recipient: str  # the endpoint URL or the user's email
    endpoint_id: int | None
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None


def list_endpoints(session: Session, actor: Membership) -> list[WebhookEndpoint]:
    """The org's endpoints, oldest first."""
    require_admin(actor, WHAT)
    return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def get_endpoint(session: Session, actor: Membership, endpoint_id: int) -> WebhookEndpoint:
    """Return one of the org's endpoints, or NotFound."""
    require_admin(actor, WHAT)
    found = session.get(WebhookEndpoint, endpoint_id) if 0 < endpoint_id <= ID_MAX else None
    if found is None:
        raise NotFound(f"webhook {endpoint_id} not found in this organization")
    return found


def create_endpoint(
    session: Session,
    actor: Membership,
    data: WebhookInput,
    allowed: Sequence[Network],
    now: datetime,
) -> tuple[WebhookEndpoint, str]:
    """Add an endpoint; returns it with its signing secret (the only time it is shown)."""
    require_admin(actor, WHAT)
    url, events, description = _checked(data, None, allowed)
    secret = webhook_http.new_secret()
    endpoint = WebhookEndpoint(url=url, events=events, description=description, active=True,
                               secret=secret, created_at=now, updated_at=now)  # fmt: skip
    session.add(endpoint)
    session.flush()
    _audit(session, actor, "webhook.created", endpoint, events=events, active=True)
    session.commit()
    return endpoint, secret


def update_endpoint(
    session: Session,
    actor: Membership,
    endpoint_id: int,
    data: WebhookInput,
    allowed: Sequence[Network],
    now: datetime,
) -> WebhookEndpoint:
    """Change url, events, description or active; fields not given keep their values."""
    endpoint = get_endpoint(session, actor, endpoint_id)
    if data.active is not None and not isinstance(data.active, bool):
        raise ValidationError({"active": "must be true or false"})
    before = _audited_fields(endpoint)
    endpoint.url, endpoint.events, endpoint.description = _checked(data, endpoint, allowed)
    if data.active is True and not endpoint.active:
        _enable(endpoint)
    elif data.active is False:
        endpoint.active = False
    endpoint.updated_at = now
    _audit_update(session, actor, endpoint, before)
    session.commit()
    return endpoint


def delete_endpoint(session: Session, actor: Membership, endpoint_id: int) -> None:
    """Remove an endpoint and its delivery log."""
    endpoint = get_endpoint(session, actor, endpoint_id)
    _audit(session, actor, "webhook.deleted", endpoint)
    session.delete(endpoint)
    session.commit()


def rotate_secret(
    session: Session, actor: Membership, endpoint_id: int, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """Issue a new secret; the current one keeps signing for 24 hours. Returns the new one."""
    endpoint = get_endpoint(session, actor, endpoint_id)
    secret = webhook_http.new_secret()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_expires_at = now + SECRET_OVERLAP
    endpoint.secret = secret
    endpoint.updated_at = now
    _audit(session, actor, "webhook.secret_rotated", endpoint)
    session.commit()
    return endpoint, secret


def enable_endpoint(
    session: Session, actor: Membership, endpoint_id: int, now: datetime
) -> WebhookEndpoint:
    """Turn an endpoint back on after it was disabled (by failures or by an admin)."""
    endpoint = get_endpoint(session, actor, endpoint_id)
    before = _audited_fields(endpoint)
    _enable(endpoint)
    endpoint.updated_at = now
    _audit_update(session, actor, endpoint, before)
    session.commit()
    return endpoint


def rotating_until(endpoint: WebhookEndpoint, now: datetime) -> datetime | None:
    """When the previous secret stops signing, if a rotation is still in its overlap."""
    expires = endpoint.previous_expires_at
    return expires if endpoint.previous_secret and expires and expires > now else None


def delivery_log(
    session: Session,
    actor: Membership,
    endpoint_id: int,
    before: int | None = None,
    limit: int = LOG_LIMIT,
) -> list[LogRow]:
    """The endpoint's deliveries, newest first; `before` (a delivery id) pages back."""
    endpoint = get_endpoint(session, actor, endpoint_id)
    stmt = log_query().where(
        Delivery.endpoint_id == endpoint.id, Delivery.channel == DeliveryChannel.WEBHOOK.value
    )
    if before is not None:
        stmt = stmt.where(Delivery.id < before)
    return log_rows(session, stmt.order_by(Delivery.id.desc()).limit(limit))


def redeliver(session: Session, actor: Membership, delivery_id: int, now: datetime) -> LogRow:
    """Send a delivery again from the first attempt (anything but one being sent now)."""
    require_admin(actor, "redeliver events")
    found = session.get(Delivery, delivery_id) if 0 < delivery_id < 2**63 else None
    if found is None:
        raise NotFound(f"delivery {delivery_id} not found in this organization")
    deliveries.redeliver(session, found.id, now)
    session.expire_all()
    rows = log_rows(session, log_query().where(Delivery.id == found.id))
    return rows[0]


@dataclass(frozen=True)
class HourCount:
    start: datetime
    delivered: int
    errors: int  # failed (will retry) or dead


@dataclass(frozen=True)
class DeliveryStats:
    hours: list[HourCount]  # the last 24 hours, oldest first
    totals: dict[str, int]  # every status -> count
    dead: list[LogRow]  # newest first, at most LOG_LIMIT


def delivery_stats(session: Session, actor: Membership, now: datetime) -> DeliveryStats:
    """Outcomes per hour over the last 24 h, totals by status, and the newest dead deliveries.

    A delivery counts in the hour of its last change, with its current status: one that
    failed twice and then went through shows as delivered.
    """
    require_admin(actor, "see deliveries")
    first = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    # Literal arguments, so GROUP BY repeats the select expression exactly.
    hour = func.date_trunc(
        literal_column("'hour'"), Delivery.updated_at, literal_column("'UTC'"),
        type_=DateTime(timezone=True),
    )  # fmt: skip
    delivered = Delivery.status == DeliveryStatus.DELIVERED.value
    failing = Delivery.status.in_((DeliveryStatus.FAILED.value, DeliveryStatus.DEAD.value))
    counted = session.execute(
        select(hour, func.count().filter(delivered), func.count().filter(failing))
        .where(Delivery.updated_at >= first, delivered | failing)
        .group_by(hour)
    )
    by_hour = {start.astimezone(UTC): (ok, bad) for start, ok, bad in counted}
    hours = []
    for n in range(24):
        start = first + timedelta(hours=n)
        ok, bad = by_hour.get(start, (0, 0))
        hours.append(HourCount(start, ok, bad))
    totals = dict.fromkeys((s.value for s in DeliveryStatus), 0)
    for status, count in session.execute(
        select(Delivery.status, func.count()).group_by(Delivery.status)
    ):
        totals[status] = count
    dead = log_query().where(Delivery.status == DeliveryStatus.DEAD.value)
    dead = dead.order_by(Delivery.updated_at.desc(), Delivery.id.desc()).limit(LOG_LIMIT)
    return DeliveryStats(hours, totals, log_rows(session, dead))


_LogSelect = Select[Delivery, str, int, str, str]  # ticket number, url and email may be NULL


def log_query() -> _LogSelect:
    """Deliveries with their event kind, ticket number and recipient (scoped by the gate)."""
    return (
        select(Delivery, OutboxEvent.kind, Ticket.number, WebhookEndpoint.url, User.email)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .outerjoin(Ticket, Ticket.id == OutboxEvent.ticket_id)
        .outerjoin(WebhookEndpoint, WebhookEndpoint.id == Delivery.endpoint_id)
        .outerjoin(User, User.id == Delivery.user_id)
    )


def log_rows(session: Session, stmt: _LogSelect) -> list[LogRow]:
    """Run a log_query() statement into rows."""
    rows: list[LogRow] = []
    for delivery, kind, number, url, email in session.execute(stmt):
        rows.append(LogRow(
            id=delivery.id, created_at=delivery.created_at, updated_at=delivery.updated_at,
            kind=kind, ticket_number=number, channel=delivery.channel,
            recipient=url or email or delivery.target, endpoint_id=delivery.endpoint_id,
            status=delivery.status, attempts=delivery.attempts,
            response_status=delivery.response_status, last_error=delivery.last_error,
        ))  # fmt: skip
    return rows


def _audit(
    session: Session, actor: Membership, action: str, endpoint: WebhookEndpoint, **data: Any
) -> None:
    """Audit an endpoint by id and host: a URL's path or query may carry the receiver's key."""
    data["host"] = urlsplit(endpoint.url).hostname
    audit.record(session, actor.org_id, action, actor_id=actor.user_id,
                 target_type="webhook", target_id=endpoint.id, data=data)  # fmt: skip


def _audited_fields(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {"url": endpoint.url, "events": list(endpoint.events),
            "description": endpoint.description, "active": endpoint.active}  # fmt: skip


def _audit_update(
    session: Session, actor: Membership, endpoint: WebhookEndpoint, before: dict[str, Any]
) -> None:
    """Audit what changed: events and active as old/new, url and description as "changed"."""
    after = _audited_fields(endpoint)
    changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
    if not changed:
        return
    data: dict[str, Any] = audit.changes(
        {k: v for k, v in changed.items() if k in ("events", "active")}
    )
    data["changed"] = sorted(changed)
    _audit(session, actor, "webhook.updated", endpoint, **data)


def _enable(endpoint: WebhookEndpoint) -> None:
    endpoint.active = True
    endpoint.disabled_reason = None
    endpoint.consecutive_dead = 0


def _checked(
    data: WebhookInput, current: WebhookEndpoint | None, allowed: Sequence[Network]
) -> tuple[str, list[str], str]:
    errors: dict[str, str] = {}
    url = current.url if current is not None and data.url is None else data.url
    url = url.strip() if isinstance(url, str) else url
    if current is None or url != current.url:
        try:
            webhook_http.check_url(url if isinstance(url, str) else "", allowed=allowed)
        except UrlRefused as exc:
            errors["url"] = str(exc)
    events: list[str] = list(current.events) if current is not None else []
    if data.events is not None or current is None:
        events, problem = parse_events(data.events)
        if problem:
            errors["events"] = problem
    description = current.description if current is not None else ""
    if data.description is not None:
        description = one_line(data.description)
        if not isinstance(data.description, str) or len(description) > DESCRIPTION_MAX:
            errors["description"] = f"keep the description to {DESCRIPTION_MAX} characters"
    if errors:
        raise ValidationError(errors)
    return str(url), events, description


def parse_events(value: object) -> tuple[list[str], str | None]:
    """Return the event names in canonical order (["*"] for all), or a problem."""
    usage = f"use * for every event, or any of: {', '.join(EVENTS)}"
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return [], f'give a list of event names, e.g. ["ticket.created"]; {usage}'
    names = {v.strip() for v in value}
    unknown = sorted(names - {*EVENTS, ALL_EVENTS})
    if unknown:
        return [], f"unknown event{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; {usage}"
    if not names:
        return [], f"choose at least one event; {usage}"
    if ALL_EVENTS in names:
        return [ALL_EVENTS], None
    return [e for e in EVENTS if e in names], None
