"""What a notification says: email subject/text/html per event kind, digests, webhook bodies.

Why one module: every outgoing word about an event is decided here, so the rules that keep
data where it belongs are checked in one place. Internal notes never reach a requester
(`NothingToSend` is raised before any text is rendered); comment bodies go out as the
author's markdown in the text part and as the already-sanitized `body_html` (made by
`rendering.py`) in the HTML part — every other value is autoescaped by the `.html`
templates. Webhook bodies carry ids and small facts, never internal note bodies or emails.
A requester's email links to a freshly minted `/t/<token>` (services/access_links.py), never
to an agent URL; staff get the agent page.
Content is rendered at delivery time from current rows, so a retry shows current data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask import current_app
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import (
    BREACH_LEVEL,
    Comment,
    EventKind,
    Organization,
    OutboxEvent,
    SlaTarget,
    Ticket,
    User,
    WebhookEndpoint,
)

WEBHOOK_VERSION = 1
_TEMPLATES = {
    EventKind.TICKET_CREATED.value: "ticket_created",
    EventKind.COMMENT_CREATED.value: "comment_created",
    EventKind.TICKET_UPDATED.value: "ticket_updated",
    EventKind.SLA_WARNING.value: "sla_alert",
    EventKind.SLA_BREACHED.value: "sla_alert",
    EventKind.ATTACHMENT_INFECTED.value: "attachment_infected",
}
_TARGETS = {
    SlaTarget.FIRST_RESPONSE.value: "first response",
    SlaTarget.RESOLUTION.value: "resolution",
}
_FIELDS = {"status": "Status", "priority": "Priority", "assignee_id": "Assignee", "tags": "Tags"}


class NothingToSend(Exception):
    """This message no longer applies (ticket gone, note is internal); str(exc) says why."""


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def ticket_url(base_url: str, org_slug: str, number: int) -> str:
    """Return the ticket's page address under BASE_URL."""
    return f"{base_url.rstrip('/')}/o/{org_slug}/tickets/{number}"


def subject_tag(org_slug: str, number: int) -> str:
    """Return the subject prefix that names the ticket, like "[acme #123]"."""
    return f"[{org_slug} #{number}]"


def event_email(
    session: Session,
    event: OutboxEvent,
    org: Organization,
    recipient: User,
    *,
    staff: bool,
    base_url: str,
    requester_link: Callable[[Ticket], str] | None = None,
) -> EmailContent:
    """Render the email telling `recipient` (staff or the requester) about one event.

    Staff get the agent page's address. A requester gets `requester_link(ticket)` instead —
    never an agent URL — called only once nothing stops the email, since it mints a link.
    """
    template = _TEMPLATES.get(event.kind)
    if template is None:
        raise NothingToSend(f"no email is defined for {event.kind!r} events")
    ticket = _ticket(session, event)
    if ticket is None:
        raise NothingToSend("the ticket no longer exists")
    if not staff and event.kind not in (EventKind.TICKET_CREATED, EventKind.COMMENT_CREATED):
        raise NothingToSend(f"requesters are not told about {event.kind} events")
    names = _names(session, [event.actor_id, *_assignee_ids(event)])
    ctx: dict[str, Any] = {
        "org_name": org.name,
        "ticket": ticket,
        "url": ticket_url(base_url, org.slug, ticket.number) if staff else None,
        "staff": staff,
        "actor": names.get(event.actor_id or 0, "Someone"),
        "is_actor": event.actor_id == recipient.id,
        "summary": summarize(event, names),
        "settings_url": f"{base_url.rstrip('/')}/o/{org.slug}/profile/notifications",
        "comment": _comment_for(session, event, ticket, staff),
        "changes": _changes(event, names),
        "sla": _sla(event),
        "payload": event.payload,
    }
    if not staff:
        if requester_link is None:
            raise ValueError("requester emails need requester_link: never an agent URL")
        ctx["url"] = requester_link(ticket)
        ctx["link_days"] = int(current_app.config["ACCESS_LINK_DAYS"])
    label = _subject_label(event)
    subject = f"{subject_tag(org.slug, ticket.number)} {label}{ticket.subject}"
    return _render(template, subject, ctx)


def fresh_link_email(org: Organization, ticket: Ticket, url: str, days: int) -> EmailContent:
    """Render the email bringing a requester a fresh link after an old one expired."""
    ctx = {"org_name": org.name, "ticket": ticket, "url": url, "link_days": days, "staff": False}
    subject = f"{subject_tag(org.slug, ticket.number)} A new link to your request: {ticket.subject}"
    return _render("fresh_link", subject, ctx)


def digest_email(
    session: Session,
    org: Organization,
    recipient: User,
    events: Sequence[OutboxEvent],
    base_url: str,
) -> EmailContent:
    """Render one email listing every waiting event for a digest recipient."""
    if not events:
        raise NothingToSend("the digest is empty")
    ticket_ids = {e.ticket_id for e in events if e.ticket_id is not None}
    tickets: dict[int, Ticket] = {}
    if ticket_ids:
        tickets = {
            t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))
        }
    actor_ids = [e.actor_id for e in events] + [i for e in events for i in _assignee_ids(e)]
    names = _names(session, actor_ids)
    items = []
    for event in sorted(events, key=lambda e: (e.created_at, e.id)):
        ticket = tickets.get(event.ticket_id or 0)
        items.append(
            {
                "when": _when(event.created_at),
                "number": ticket.number if ticket else event.payload.get("number"),
                "subject": ticket.subject if ticket else "(ticket deleted)",
                "url": ticket_url(base_url, org.slug, ticket.number) if ticket else None,
                "summary": summarize(event, names),
            }
        )
    count = len(items)
    subject = f"{count} update{'s' if count != 1 else ''} in {org.name}"
    ctx = {
        "org_name": org.name,
        "recipient": recipient.display_name,
        "items": items,
        "settings_url": f"{base_url.rstrip('/')}/o/{org.slug}/profile/notifications",
    }
    return _render("digest", subject, ctx)


def endpoint_disabled_email(
    org: Organization, endpoint: WebhookEndpoint, base_url: str
) -> EmailContent:
    """Render the notice to an org's admins that a webhook endpoint was switched off."""
    ctx = {
        "org_name": org.name,
        "endpoint": endpoint,
        "reason": endpoint.disabled_reason or "repeated delivery failures",
        "admin_url": f"{base_url.rstrip('/')}/o/{org.slug}/admin/webhooks/{endpoint.id}",
    }
    subject = f"[{org.slug}] Webhook endpoint disabled: {endpoint.description or endpoint.url}"
    return _render("endpoint_disabled", subject[:200], ctx)


def webhook_payload(session: Session, event: OutboxEvent, org: Organization) -> dict[str, Any]:
    """Return the JSON body for an event: type, timestamp, version and ids/facts as data."""
    data: dict[str, Any] = {"org": org.slug}
    ticket = _ticket(session, event)
    if ticket is not None:
        data.update(
            ticket=ticket.number,
            subject=ticket.subject,
            status=ticket.status,
            priority=ticket.priority,
        )
    elif "number" in event.payload:
        data["ticket"] = event.payload["number"]
    for key, value in event.payload.items():
        if key != "number":
            data.setdefault(key, value)
    if event.kind == EventKind.COMMENT_CREATED:
        comment = _load_comment(session, event)
        internal = comment is None or comment.internal or bool(event.payload.get("internal"))
        data["internal"] = internal
        if not internal and comment is not None:
            data["body"] = comment.body_md  # public replies only; notes stay inside
    return {
        "type": event.kind,
        "timestamp": event.created_at.isoformat(),
        "version": WEBHOOK_VERSION,
        "data": data,
    }


def summarize(event: OutboxEvent, names: dict[int, str]) -> str:
    """Return one line saying what happened (digest rows and email intros)."""
    actor = names.get(event.actor_id or 0, "Someone")
    kind, payload = event.kind, event.payload
    if kind == EventKind.TICKET_CREATED:
        return f"New ticket, opened by {actor}"
    if kind == EventKind.COMMENT_CREATED:
        return f"{actor} added an internal note" if payload.get("internal") else f"{actor} replied"
    if kind == EventKind.TICKET_UPDATED:
        parts = [f"{label} {old} → {new}" for label, old, new in _changes(event, names)]
        return f"{actor} changed " + ("; ".join(parts) or "the ticket")
    if kind in (EventKind.SLA_WARNING, EventKind.SLA_BREACHED):
        sla = _sla(event)
        verb = "was due" if sla["breached"] else "is due"
        head = "SLA breached" if sla["breached"] else "SLA warning"
        return f"{head}: {sla['target']} {verb} {sla['due']}"
    if kind == EventKind.ATTACHMENT_INFECTED:
        return "An attachment was found to contain malware and was quarantined"
    return kind


def _render(template: str, subject: str, ctx: dict[str, Any]) -> EmailContent:
    env = current_app.jinja_env
    text = env.get_template(f"emails/{template}.txt").render(**ctx)
    html = env.get_template(f"emails/{template}.html").render(subject=subject, **ctx)
    return EmailContent(subject=subject, text=text, html=html)


def _ticket(session: Session, event: OutboxEvent) -> Ticket | None:
    if event.ticket_id is None:
        return None
    return session.get(Ticket, event.ticket_id)


def _names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u.display_name for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def _assignee_ids(event: OutboxEvent) -> list[int]:
    change = (event.payload.get("changes") or {}).get("assignee_id")
    if not isinstance(change, list):
        return []
    return [v for v in change if isinstance(v, int)]


def _load_comment(session: Session, event: OutboxEvent) -> Comment | None:
    comment_id = event.payload.get("comment_id")
    if not isinstance(comment_id, int):
        return None
    comment = session.get(Comment, comment_id)
    return comment if comment is not None and comment.ticket_id == event.ticket_id else None


def _comment_for(
    session: Session, event: OutboxEvent, ticket: Ticket, staff: bool
) -> dict[str, Any] | None:
    """The comment an email quotes: the new one, or a new ticket's first public message."""
    if event.kind == EventKind.COMMENT_CREATED:
        comment = _load_comment(session, event)
        if comment is None:
            raise NothingToSend("the comment no longer exists")
    elif event.kind == EventKind.TICKET_CREATED:
        comment = session.scalar(
            select(Comment)
            .where(Comment.ticket_id == ticket.id, Comment.internal.is_(False))
            .order_by(Comment.created_at, Comment.id)
            .limit(1)
        )
        if comment is None:
            return None
    else:
        return None
    if comment.internal and not staff:
        raise NothingToSend("internal notes are never emailed to requesters")
    return {
        "author": comment.author.display_name,
        "internal": comment.internal,
        "text": comment.body_md,
        "html": Markup(comment.body_html),  # noqa: S704 - sanitized by rendering.py at write
    }


def _changes(event: OutboxEvent, names: dict[int, str]) -> list[tuple[str, str, str]]:
    changes = event.payload.get("changes") or {}
    rows = []
    for field, values in changes.items():
        if not isinstance(values, list) or len(values) != 2:
            continue
        old, new = (_show(field, v, names) for v in values)
        rows.append((_FIELDS.get(field, field), old, new))
    return rows


def _show(field: str, value: Any, names: dict[int, str]) -> str:
    if value is None or value == []:
        return "(none)"
    if field == "assignee_id":
        return names.get(value, f"user {value}") if isinstance(value, int) else str(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value).replace("_", " ")


def _sla(event: OutboxEvent) -> dict[str, Any]:
    payload = event.payload
    level = str(payload.get("level") or "")
    breached = event.kind == EventKind.SLA_BREACHED or level == BREACH_LEVEL
    target = str(payload.get("target") or "")
    return {
        "breached": breached,
        "target": _TARGETS.get(target, target.replace("_", " ") or "target"),
        "level": level,
        "due": _when(payload.get("due_at")),
    }


def _when(value: object) -> str:
    """Format a datetime or ISO string as "2024-05-01 14:30 UTC"; other values as given."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "an unknown time" if value is None else str(value)


def _subject_label(event: OutboxEvent) -> str:
    if event.kind == EventKind.SLA_WARNING:
        return "SLA warning: "
    if event.kind == EventKind.SLA_BREACHED:
        return "SLA breached: "
    if event.kind == EventKind.ATTACHMENT_INFECTED:
        return "Attachment quarantined: "
    return ""
