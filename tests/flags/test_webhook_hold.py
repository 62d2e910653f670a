"""The webhooks flag: deliveries are held (pending, no attempt counted, never dead) while it
is off, the relay keeps them queued, and they go out once it is on; email is not affected."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Delivery
from helpdesk.services import deliveries
from helpdesk.tenancy import tenant_scope, unscoped
from tests.factories import make_ticket
from tests.flags.helpers import switch
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
    queued,
    reply,
    run_jobs,
)


def _hook(session: Session) -> Delivery:
    (hook,) = all_deliveries(session, channel="webhook")
    return hook


def _attempt(session: Session, org_id: int, delivery_id: int, when) -> str | None:
    with tenant_scope(session, org_id):
        return deliveries.attempt(session, delivery_id, when)


def test_held_while_off_then_delivered_once_on(
    app: Flask, session: Session, world, receiver: Receiver, smtp: SmtpSink
) -> None:
    alpha = world["alpha"]
    add_endpoint(session, alpha["org"], receiver.url())
    switch(app, session, "webhooks", False, "receiver compromised")
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    started = utcnow()
    run_jobs(app)
    hook = _hook(session)
    assert (hook.status, hook.attempts, hook.response_status) == ("pending", 0, None)
    assert hook.last_error == deliveries.HELD
    assert hook.next_attempt_at is not None and hook.next_attempt_at >= started + timedelta(
        seconds=deliveries.HOLD_SECONDS
    )
    assert receiver.hits == []
    emails = all_deliveries(session, channel="email")
    assert emails and all(e.status == "delivered" for e in emails)  # email is not held
    assert smtp.delivered()

    # Far more due times than the retry ladder has steps: still pending, never dead.
    when = hook.next_attempt_at
    for _ in range(deliveries.MAX_ATTEMPTS + 2):
        when += timedelta(seconds=deliveries.HOLD_SECONDS)
        assert _attempt(session, alpha["org"].id, hook.id, when) == "pending"
    hook = _hook(session)
    assert (hook.status, hook.attempts) == ("pending", 0) and receiver.hits == []

    # The relay keeps queuing it while it waits.
    when += timedelta(seconds=deliveries.HOLD_SECONDS + 1)
    with unscoped(session):
        counts = deliveries.relay_deliveries(session, when)
    assert counts["lost"] == 1
    assert ("jobs.notify.deliver", (alpha["org"].id, hook.id)) in queued(app)

    switch(app, session, "webhooks", True)
    assert _attempt(session, alpha["org"].id, hook.id, when) == "delivered"
    hook = _hook(session)
    assert (hook.status, hook.attempts, hook.last_error) == ("delivered", 1, None)
    (hit,) = receiver.hits
    assert hit.headers["webhook-id"] == f"dlv_{hook.id}"


def test_a_failing_delivery_keeps_its_attempts_while_held(
    app: Flask, session: Session, world, receiver: Receiver
) -> None:
    alpha = world["alpha"]
    add_endpoint(session, alpha["org"], receiver.url())
    receiver.plan = [reply(500, b"down")]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)
    hook = _hook(session)
    assert (hook.status, hook.attempts) == ("failed", 1)
    switch(app, session, "webhooks", False)
    assert hook.next_attempt_at is not None
    when = hook.next_attempt_at + timedelta(seconds=1)
    assert _attempt(session, alpha["org"].id, hook.id, when) == "pending"
    hook = _hook(session)
    assert (hook.status, hook.attempts, hook.last_error) == ("pending", 1, deliveries.HELD)
    assert len(receiver.hits) == 1
    switch(app, session, "webhooks", True)
    later = when + timedelta(seconds=deliveries.HOLD_SECONDS)
    assert _attempt(session, alpha["org"].id, hook.id, later) == "delivered"
    assert _hook(session).attempts == 2 and len(receiver.hits) == 2


def test_a_hold_never_takes_a_delivery_that_is_not_due(
    app: Flask, session: Session, world, receiver: Receiver
) -> None:
    alpha = world["alpha"]
    add_endpoint(session, alpha["org"], receiver.url())
    switch(app, session, "webhooks", False)
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    run_jobs(app)
    hook = _hook(session)
    with unscoped(session):
        session.execute(update(Delivery).where(Delivery.id == hook.id).values(status="sending"))
        session.commit()
    assert _attempt(session, alpha["org"].id, hook.id, utcnow()) is None  # another worker's
    assert _hook(session).status == "sending"
