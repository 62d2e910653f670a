"""Webhook deliveries to a real HTTP receiver: signing, retries, redirects, disabling."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from helpdesk.db import utcnow
from helpdesk.models import Delivery, EventKind, OutboxEvent, WebhookEndpoint
from helpdesk.services import deliveries, outbox, tickets
from helpdesk.services import dispatch as dispatching
from helpdesk.services.webhook_http import new_secret
from helpdesk.tenancy import tenant_scope, unscoped
from tests.factories import make_ticket
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    Receiver,
    SmtpSink,
    _app_context,
    _notify_app,
    _receiver,
    _receiver_server,
    _smtp,
    _smtp_server,
    add_endpoint,
    all_deliveries,
    events_of,
    hang,
    reply,
    run_jobs,
)


def _hooks(session: Session) -> list[Delivery]:
    return all_deliveries(session, channel="webhook")


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    session.expire_all()
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    assert endpoint is not None
    return endpoint


def test_500_then_200_keeps_the_id_and_signs_every_attempt(
    app: Flask, session: Session, world, receiver: Receiver
) -> None:
    alpha = world["alpha"]
    endpoint = add_endpoint(session, alpha["org"], receiver.url())
    receiver.plan = [reply(500, b"database is down")]
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    with unscoped(session):
        session.execute(update(OutboxEvent).values(request_id="req-0123456789abcdef"))
        session.commit()
    run_jobs(app)
    (hook,) = _hooks(session)
    assert (hook.status, hook.attempts, hook.response_status) == ("failed", 1, 500)
    assert hook.last_error == "the receiver answered HTTP 500: database is down"
    assert hook.next_attempt_at is not None
    with tenant_scope(session, alpha["org"].id):
        later = hook.next_attempt_at + timedelta(seconds=1)
        assert deliveries.attempt(session, hook.id, later) == "delivered"
    (hook,) = _hooks(session)
    assert (hook.status, hook.attempts, hook.response_status) == ("delivered", 2, 200)
    first, second = receiver.hits
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"dlv_{hook.id}"
    assert first.body == second.body
    for hit in (first, second):
        assert hit.headers["X-Request-ID"] == "req-0123456789abcdef"
        assert hit.headers["Content-Type"] == "application/json"
    with tenant_scope(session, alpha["org"].id):
        secret = _endpoint(session, endpoint.id).secret
    body = Webhook(secret).verify(second.body, second.headers)
    assert body["type"] == "ticket.created" and body["version"] == 1
    assert body["data"]["org"] == "alpha" and body["data"]["ticket"] == ticket.number
    assert "requester@alpha.test" not in second.body.decode()


def test_timeout_and_transport_errors_are_retried(
    app: Flask, session: Session, world, receiver: Receiver
) -> None:
    alpha = world["alpha"]
    add_endpoint(session, alpha["org"], receiver.url())
    receiver.default = hang  # WEBHOOK_TIMEOUT is 1 s in the test app
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)
    (hook,) = _hooks(session)
    assert hook.status == "failed" and "timed out after 1 s" in (hook.last_error or "")
    assert hook.response_status is None


def test_redirect_is_not_followed(app: Flask, session: Session, world, receiver: Receiver) -> None:
    alpha = world["alpha"]
    add_endpoint(session, alpha["org"], receiver.url())
    receiver.plan = [reply(302, b"", {"Location": receiver.url("/elsewhere")})]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)
    (hook,) = _hooks(session)
    assert (hook.status, hook.response_status) == ("failed", 302)
    assert "redirects are not followed" in (hook.last_error or "")
    assert [hit.path for hit in receiver.hits] == ["/hook"]


def test_refused_url_is_dead_at_once(app: Flask, session: Session, world) -> None:
    alpha = world["alpha"]
    add_endpoint(session, alpha["org"], "http://10.20.30.40/hook")  # private, not allowed
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)
    (hook,) = _hooks(session)
    assert (hook.status, hook.attempts) == ("dead", 1)
    assert "not a public address (private)" in (hook.last_error or "")


def test_gone_disables_the_endpoint_and_tells_the_admins(
    app: Flask, session: Session, world, receiver: Receiver, smtp: SmtpSink
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    gone = add_endpoint(session, alpha["org"], receiver.url("/gone"))
    other = add_endpoint(session, beta["org"], receiver.url("/beta"))
    receiver.plan = [reply(410, b"unsubscribed")]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)  # dispatch, deliver, then the endpoint_disabled notice
    (hook,) = _hooks(session)
    assert (hook.status, hook.attempts, hook.response_status) == ("dead", 1, 410)
    with tenant_scope(session, alpha["org"].id):
        endpoint = _endpoint(session, gone.id)
        assert not endpoint.active and "410" in (endpoint.disabled_reason or "")
    with tenant_scope(session, beta["org"].id):
        assert _endpoint(session, other.id).active
    (notice,) = smtp.delivered("admin@alpha.test")
    assert "Webhook endpoint disabled" in notice.message["Subject"]
    assert receiver.url("/gone") in notice.text() and "410 Gone" in notice.text()
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)
    assert len(_hooks(session)) == 1  # a disabled endpoint gets no new deliveries


def _dead_delivery(session: Session, side: dict[str, Any], ticket: Any) -> str | None:
    """Emit an event, dispatch it and fail its webhook for the 6th and last time."""
    org_id = side["org"].id
    with tenant_scope(session, org_id):
        event = outbox.emit(session, org_id, EventKind.SLA_WARNING, ticket=ticket)
        session.commit()
        dispatching.dispatch_event(session, event)
        session.execute(update(Delivery).where(Delivery.event_id == event.id).values(attempts=5))
        session.commit()
        hook = next(d for d in _hooks(session) if d.event_id == event.id)
        return deliveries.attempt(session, hook.id)


def test_five_dead_in_a_row_disable_the_endpoint(
    app: Flask, session: Session, world, receiver: Receiver
) -> None:
    alpha = world["alpha"]
    endpoint = add_endpoint(session, alpha["org"], receiver.url(), ["sla.warning"])
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    receiver.default = reply(503, b"maintenance")
    for _ in range(2):
        assert _dead_delivery(session, alpha, ticket) == "dead"
    receiver.plan = [reply(204, b"")]
    with tenant_scope(session, alpha["org"].id):
        assert _endpoint(session, endpoint.id).consecutive_dead == 2
        event = outbox.emit(session, alpha["org"].id, EventKind.SLA_WARNING, ticket=ticket)
        session.commit()
        dispatching.dispatch_event(session, event)
        hook = next(d for d in _hooks(session) if d.event_id == event.id)
        assert deliveries.attempt(session, hook.id) == "delivered"
        assert _endpoint(session, endpoint.id).consecutive_dead == 0  # a success resets it
    for n in range(1, 6):
        assert _dead_delivery(session, alpha, ticket) == "dead"
        with tenant_scope(session, alpha["org"].id):
            assert _endpoint(session, endpoint.id).active is (n < 5)
    with tenant_scope(session, alpha["org"].id):
        reason = _endpoint(session, endpoint.id).disabled_reason or ""
    assert reason.startswith("5 deliveries in a row failed") and "HTTP 503" in reason


def test_bodies_only_for_public_replies(
    app: Flask, session: Session, world, receiver: Receiver
) -> None:
    alpha = world["alpha"]
    add_endpoint(session, alpha["org"], receiver.url(), ["comment.created"])
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["agent"], ticket.number, "Public answer")
        tickets.add_comment(session, alpha["agent"], ticket.number, "Secret note", internal=True)
    run_jobs(app)
    public, internal = (json.loads(hit.body)["data"] for hit in receiver.hits)
    assert (public["internal"], public["body"]) == (False, "Public answer")
    assert internal["internal"] is True and "body" not in internal
    assert isinstance(internal["comment_id"], int)
    assert all(b"Secret note" not in hit.body for hit in receiver.hits)


def test_rotation_signs_with_both_secrets_until_expiry(
    app: Flask, session: Session, world, receiver: Receiver
) -> None:
    alpha = world["alpha"]
    endpoint = add_endpoint(session, alpha["org"], receiver.url())
    old = new_secret()
    with tenant_scope(session, alpha["org"].id):
        session.execute(
            update(WebhookEndpoint).values(
                previous_secret=old, previous_expires_at=utcnow() + timedelta(hours=24)
            )
        )
        session.commit()
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)
    (hit,) = receiver.hits
    assert len(hit.headers["webhook-signature"].split()) == 2
    Webhook(old).verify(hit.body, hit.headers)
    Webhook(endpoint.secret).verify(hit.body, hit.headers)
    with tenant_scope(session, alpha["org"].id):
        session.execute(update(WebhookEndpoint).values(previous_expires_at=utcnow()))
        session.commit()
        tickets.add_comment(session, alpha["agent"], ticket.number, "Later")
    run_jobs(app)
    assert all(len(h.headers["webhook-signature"].split()) == 1 for h in receiver.hits[1:])
