"""One attempt over one channel: build the email or webhook for a delivery, send it, classify.

Why separate from the state machine (`deliveries.py`): this is the only code that talks to the
network, and every failure it sees is turned into an `Outcome` — FAILED (worth a retry: SMTP
4xx, timeouts, HTTP 5xx/4xx/3xx) or DEAD (never: SMTP 5xx, a URL the SSRF guard refuses, HTTP
410) — with a short error that names the cause and never a secret. Reads happen before the
network call and their transaction is committed first, so no database transaction stays
open while a slow server answers.

Email: From is the org's name at MAIL_FROM; the Message-ID is stable per delivery
(``make_message_id("delivery", id, domain)``), so a retry is recognisably the same message;
In-Reply-To/References name the ticket's thread (and the latest email received on it) so
clients group them, and Reply-To carries the ticket's reply token (services/threading.py).
Webhook: Standard Webhooks headers with ``webhook-id`` = ``dlv_<delivery id>`` on every
retry, signed with the endpoint's secret (and the previous one during a rotation), plus
``X-Request-ID``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import (
    Delivery,
    DeliveryStatus,
    Membership,
    Organization,
    OutboxEvent,
    Role,
    Ticket,
    User,
    WebhookEndpoint,
)
from helpdesk.services import access_links, notification_content, webhook_http
from helpdesk.services import threading as mail_threads
from helpdesk.services.mail_transport import (
    MailConfigError,
    OutgoingMail,
    PermanentMailError,
    SmtpConfig,
    TransientMailError,
    make_message_id,
    parse_smtp_url,
    send_mail,
    ticket_thread_id,
)
from helpdesk.services.notification_content import EmailContent, NothingToSend


class MailNotConfigured(Exception):
    """SMTP_URL is empty or unusable; str(exc) says what to set."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt achieved; FAILED means "worth retrying", DEAD means "never"."""

    status: DeliveryStatus
    error: str | None = None
    response_status: int | None = None
    gone: bool = False  # the webhook receiver answered 410: switch the endpoint off


@dataclass(frozen=True)
class MailSettings:
    smtp: SmtpConfig
    from_addr: str
    domain: str


def mail_settings() -> MailSettings:
    """Return the SMTP settings from the app config, or raise MailNotConfigured."""
    url = str(current_app.config.get("SMTP_URL") or "")
    if not url.strip():
        raise MailNotConfigured("SMTP_URL is not configured")
    try:
        smtp = parse_smtp_url(url)
    except MailConfigError as exc:
        raise MailNotConfigured(str(exc)) from None
    from_addr = str(current_app.config["MAIL_FROM"])
    return MailSettings(smtp, from_addr, from_addr.rsplit("@", 1)[-1])


def send(session: Session, delivery: Delivery, now: datetime) -> Outcome:
    """Make one attempt at a claimed delivery and say how it went."""
    event = session.get(OutboxEvent, delivery.event_id)
    org = session.get(Organization, delivery.org_id)
    if event is None or org is None:
        return Outcome(DeliveryStatus.SKIPPED, "the event no longer exists")
    if delivery.channel == "email":
        return _send_email(session, delivery, event, org)
    if delivery.channel == "webhook":
        return _send_webhook(session, delivery, event, org, now)
    return Outcome(DeliveryStatus.DEAD, f"unknown channel {delivery.channel!r}")


def build_mail(
    settings: MailSettings, org: Organization, to: str, content: EmailContent, message_id: str
) -> OutgoingMail:
    """Return the outgoing message for one recipient, from the org's name at MAIL_FROM."""
    return OutgoingMail(
        to=[to],
        subject=content.subject,
        text=content.text,
        html=content.html,
        from_addr=settings.from_addr,
        from_name=org.name,
        message_id=message_id,
    )


def smtp_outcome(settings: MailSettings, mail: OutgoingMail) -> Outcome:
    """Send through SMTP; a 4xx/connection problem is FAILED, a 5xx or bad message is DEAD."""
    try:
        send_mail(settings.smtp, mail)
    except TransientMailError as exc:
        return Outcome(DeliveryStatus.FAILED, str(exc))
    except PermanentMailError as exc:
        return Outcome(DeliveryStatus.DEAD, str(exc))
    return Outcome(DeliveryStatus.DELIVERED)


def recipient_member(session: Session, org_id: int, user_id: int | None) -> Membership | None:
    """Return the membership of an active user in the org, or None (left, deactivated)."""
    if user_id is None:
        return None
    member = session.scalar(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )
    return member if member is not None and member.user.active else None


def notify_endpoint_disabled(session: Session, endpoint_id: int) -> int:
    """Email each admin of the endpoint's org that it was disabled; return how many were told.

    Raises MailNotConfigured, TransientMailError or PermanentMailError so the job fails
    visibly (RQ's failed registry; `flask jobs requeue-failed`).
    """
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.active:
        return 0  # deleted or re-enabled since: nothing to say
    org = session.get(Organization, endpoint.org_id)
    admins = list(
        session.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(
                Membership.org_id == endpoint.org_id,
                Membership.role == Role.ADMIN.value,
                User.active.is_(True),
            )
            .order_by(User.id)
        )
    )
    if org is None or not admins:
        return 0
    settings = mail_settings()
    content = notification_content.endpoint_disabled_email(
        org, endpoint, str(current_app.config["BASE_URL"])
    )
    stamp = int(endpoint.updated_at.timestamp())
    mails = [
        build_mail(
            settings,
            org,
            admin.email,
            content,
            make_message_id("endpoint", f"{endpoint.id}-{stamp}-{admin.id}", settings.domain),
        )
        for admin in admins
    ]
    session.commit()
    for mail in mails:
        send_mail(settings.smtp, mail)
    return len(mails)


def _send_email(
    session: Session, delivery: Delivery, event: OutboxEvent, org: Organization
) -> Outcome:
    member = recipient_member(session, org.id, delivery.user_id)
    if member is None:
        return Outcome(DeliveryStatus.SKIPPED, "the recipient left or was deactivated")
    user = member.user
    base_url = str(current_app.config["BASE_URL"])
    try:
        settings = mail_settings()
        content = notification_content.event_email(
            session, event, org, user, staff=member.is_staff, base_url=base_url,
            requester_link=None if member.is_staff else _requester_link(session, user),
        )  # fmt: skip
    except NothingToSend as exc:
        return Outcome(DeliveryStatus.SKIPPED, str(exc))
    except MailNotConfigured as exc:
        return Outcome(DeliveryStatus.FAILED, str(exc))
    message_id = make_message_id("delivery", delivery.id, settings.domain)
    mail = build_mail(settings, org, user.email, content, message_id)
    ticket = session.get(Ticket, event.ticket_id) if event.ticket_id is not None else None
    if ticket is not None:
        root = ticket_thread_id(org.slug, ticket.number, settings.domain)
        reply_pattern = str(current_app.config["REPLY_ADDRESS"])
        thread = mail_threads.outgoing_thread(
            session, ticket, root, staff=member.is_staff, reply_pattern=reply_pattern
        )
        mail.in_reply_to, mail.references = thread.in_reply_to, thread.references
        mail.reply_to = thread.reply_to  # the ticket's reply token: replies thread back
    session.commit()  # end the read transaction: none stays open during network I/O
    return smtp_outcome(settings, mail)


def _requester_link(session: Session, user: User) -> Callable[[Ticket], str]:
    """Mint a fresh link per requester email (committed before the send); only for them."""

    def mint(ticket: Ticket) -> str:
        if ticket.requester_id != user.id:
            raise NothingToSend("only the ticket's requester gets a link to it")
        return access_links.link_url(access_links.mint_link(session, ticket)[1])

    return mint


def _send_webhook(
    session: Session, delivery: Delivery, event: OutboxEvent, org: Organization, now: datetime
) -> Outcome:
    endpoint = None
    if delivery.endpoint_id is not None:
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None:
        return Outcome(DeliveryStatus.SKIPPED, "the webhook endpoint was deleted")
    if not endpoint.active:
        return Outcome(DeliveryStatus.SKIPPED, "the webhook endpoint is disabled")
    payload = notification_content.webhook_payload(session, event, org)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    keys = [endpoint.secret]
    expires = endpoint.previous_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        keys.append(endpoint.previous_secret)
    try:
        headers = webhook_http.signature_headers(keys, f"dlv_{delivery.id}", now, body)
    except ValueError as exc:
        return Outcome(DeliveryStatus.DEAD, f"cannot sign: {exc}; rotate the endpoint's secret")
    try:
        allowed = webhook_http.parse_networks(str(current_app.config["WEBHOOK_ALLOWED_NETWORKS"]))
    except ValueError as exc:
        return Outcome(DeliveryStatus.FAILED, f"WEBHOOK_ALLOWED_NETWORKS is invalid: {exc}")
    if event.request_id:
        headers["X-Request-ID"] = event.request_id
    url, timeout = endpoint.url, float(current_app.config["WEBHOOK_TIMEOUT"])
    session.commit()  # end the read transaction: none stays open during network I/O
    try:
        response = webhook_http.send(url, body, headers, timeout=timeout, allowed=allowed)
    except webhook_http.UrlRefused as exc:
        return Outcome(DeliveryStatus.DEAD, f"URL refused: {exc}")
    except webhook_http.WebhookTransportError as exc:
        return Outcome(DeliveryStatus.FAILED, str(exc))
    return http_outcome(response.status, response.body_excerpt)


def http_outcome(status: int, excerpt: str) -> Outcome:
    """Classify a webhook response: 2xx delivered, 410 dead (gone), anything else retried."""
    if 200 <= status < 300:
        return Outcome(DeliveryStatus.DELIVERED, response_status=status)
    if status == 410:
        error = "the receiver answered HTTP 410 Gone (it asks senders to stop)"
        return Outcome(DeliveryStatus.DEAD, error, status, gone=True)
    error = f"the receiver answered HTTP {status}"
    if 300 <= status < 400:
        error += " (redirects are not followed; configure the final URL)"
    snippet = " ".join(excerpt.split())[:200]
    return Outcome(DeliveryStatus.FAILED, f"{error}: {snippet}" if snippet else error, status)
