"""Admin pages for webhooks: the secret shown once, the SSRF guard, rotation, the delivery
log with redelivery, and the org's deliveries page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Delivery, OutboxEvent, Ticket, WebhookEndpoint
from helpdesk.services import webhooks
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser, as_user
from tests.factories import make_ticket

HOOKS = "/o/alpha/admin/webhooks"
PUBLIC = "https://93.184.215.14/hooks/helpdesk"
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


@pytest.fixture
def admin(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "admin@alpha.test", password)


def endpoints(session: Session) -> list[WebhookEndpoint]:
    session.expire_all()
    with unscoped(session):
        return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def make_endpoint(session: Session, member: Any, url: str = PUBLIC) -> WebhookEndpoint:
    with tenant_scope(session, member.org_id):
        data = webhooks.WebhookInput(url, ["*"], "made in a test")
        endpoint, _secret = webhooks.create_endpoint(session, member, data, (), utcnow())
    return endpoint


def make_delivery(
    session: Session, endpoint: WebhookEndpoint, number: int | None, status: str, **kw: Any
) -> int:
    """A delivery of a ticket.created event (for ticket `number`) to the endpoint."""
    with tenant_scope(session, endpoint.org_id):
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == number))
        event = OutboxEvent(kind="ticket.created", ticket_id=ticket_id, payload={})
        session.add(event)
        session.flush()
        delivery = Delivery(event_id=event.id, channel="webhook", endpoint_id=endpoint.id,
                            target=f"webhook:{endpoint.id}", status=status, **kw)  # fmt: skip
        session.add(delivery)
        session.commit()
        return delivery.id


def test_the_secret_is_shown_once_on_creation(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    form = {"url": PUBLIC, "description": "CRM sync", "events": ["ticket.created", "sla.breached"]}
    created = admin.post(HOOKS, form)
    html = created.get_data(as_text=True)
    assert created.status_code == 201
    [endpoint] = endpoints(session)
    assert (endpoint.url, endpoint.description, endpoint.events, endpoint.active) == (
        PUBLIC, "CRM sync", ["ticket.created", "sla.breached"], True)  # fmt: skip
    assert SECRET.findall(html) == [endpoint.secret]
    assert "it will not be shown again" in html
    assert endpoint.org_id == world["alpha"]["org"].id
    for page in (admin.get(HOOKS), admin.get(f"{HOOKS}/{endpoint.id}")):
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert "whsec_" not in text and endpoint.secret[6:16] not in text
        assert PUBLIC in text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is not a public address (loopback)"),
        ("http://10.1.2.3/hook", "10.1.2.3 is not a public address (private)"),
        ("http://169.254.169.254/latest", "link-local, incl. cloud metadata"),
        ("http://[::1]/hook", "::1 is not a public address (loopback)"),
        ("ftp://93.184.215.14/x", "use an https:// (or http://) URL; ftp: is not allowed"),
        ("https://user:pw@93.184.215.14/x", "remove the user name and password"),
        ("", "enter the URL to send webhooks to"),
    ],
)
def test_unsafe_urls_are_refused_with_a_422(
    admin: Browser, session: Session, url: str, message: str
) -> None:
    response = admin.post(HOOKS, {"url": url, "events": "*", "description": "x"})
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert endpoints(session) == []


def test_events_are_checked(admin: Browser, session: Session) -> None:
    unknown = admin.post(HOOKS, {"url": PUBLIC, "events": ["ticket.created", "ticket.deleted",
                                                           "user.created"]})  # fmt: skip
    html = unknown.get_data(as_text=True)
    assert unknown.status_code == 422
    assert "unknown events ticket.deleted, user.created" in html
    assert 'value="https://93.184.215.14/hooks/helpdesk"' in html  # the form comes back
    none = admin.post(HOOKS, {"url": PUBLIC, "description": "d" * 201})
    html = none.get_data(as_text=True)
    assert none.status_code == 422
    assert "choose at least one event" in html and "keep the description to 200" in html
    assert endpoints(session) == []
    everything = admin.post(HOOKS, {"url": PUBLIC, "events": ["*", "ticket.created"]})
    assert everything.status_code == 201
    assert [e.events for e in endpoints(session)] == [["*"]]


def test_allowed_networks_open_the_guard_for_development(
    app: Flask, admin: Browser, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8")
    assert admin.post(HOOKS, {"url": "http://127.0.0.1:9/hook", "events": "*"}).status_code == 201
    assert [e.url for e in endpoints(session)] == ["http://127.0.0.1:9/hook"]


def test_rotation_shows_the_new_secret_once_and_keeps_the_old_one_for_a_day(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    endpoint = make_endpoint(session, world["alpha"]["admin"])
    old = endpoint.secret
    before = utcnow()
    rotated = admin.post(f"{HOOKS}/{endpoint.id}/rotate-secret")
    html = rotated.get_data(as_text=True)
    assert rotated.status_code == 200
    [after] = endpoints(session)
    assert SECRET.findall(html) == [after.secret] and after.secret != old
    assert after.previous_secret == old
    assert after.previous_expires_at is not None
    overlap = after.previous_expires_at - before
    assert timedelta(hours=23, minutes=59) < overlap <= timedelta(hours=24, seconds=5)
    assert "The previous secret keeps signing" in html
    later = admin.get(f"{HOOKS}/{endpoint.id}").get_data(as_text=True)
    assert "whsec_" not in later and "A secret rotation is in progress" in later


def test_edit_turn_off_and_re_enable(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    endpoint = make_endpoint(session, world["alpha"]["admin"])
    url = f"{HOOKS}/{endpoint.id}"
    edited = admin.post(url, {"url": PUBLIC + "/v2", "events": "comment.created",
                              "description": "v2"})  # fmt: skip
    assert edited.status_code == 303
    [row] = endpoints(session)
    assert (row.url, row.events, row.description, row.active) == (
        PUBLIC + "/v2", ["comment.created"], "v2", False)  # fmt: skip
    assert "Turned off." in admin.get(url).get_data(as_text=True)
    bad = admin.post(url, {"url": "http://192.168.1.1/", "events": "*", "active": "1"})
    assert bad.status_code == 422 and "(private)" in bad.get_data(as_text=True)
    assert endpoints(session)[0].url == PUBLIC + "/v2"

    with unscoped(session):  # the sender gave up on it
        session.get(WebhookEndpoint, endpoint.id).disabled_reason = "HTTP 410 Gone"  # type: ignore[union-attr]
        session.get(WebhookEndpoint, endpoint.id).consecutive_dead = 5  # type: ignore[union-attr]
        session.commit()
    assert "Disabled: HTTP 410 Gone" in admin.get(url).get_data(as_text=True)
    assert admin.post(f"{url}/enable").status_code == 303
    [row] = endpoints(session)
    assert (row.active, row.disabled_reason, row.consecutive_dead) == (True, None, 0)
    assert admin.post(f"{url}/delete").status_code == 303
    assert endpoints(session) == []
    assert admin.get(url).status_code == 404


def test_delivery_log_and_redeliver(
    app: Flask, admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"])
    endpoint = make_endpoint(session, alpha["admin"])
    ok = make_delivery(session, endpoint, 1, "delivered", attempts=1, response_status=204)
    dead = make_delivery(session, endpoint, 1, "dead", attempts=6, response_status=500,
                         last_error="HTTP 500 from receiver")  # fmt: skip
    page = admin.get(f"{HOOKS}/{endpoint.id}").get_data(as_text=True)
    assert page.index(f"/deliveries/{dead}/redeliver") < page.index(f"/deliveries/{ok}/redeliver")
    assert "HTTP 500 from receiver" in page and ">#1</a>" in page and "ticket.created" in page

    queue = Queue("notify", connection=app.extensions["helpdesk.redis"])
    queued = queue.count
    response = admin.post(f"/o/alpha/admin/deliveries/{dead}/redeliver",
                          {"endpoint": str(endpoint.id)})  # fmt: skip
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/admin/webhooks/{endpoint.id}")
    session.expire_all()
    with unscoped(session):
        row = session.get(Delivery, dead)
        assert row is not None and (row.status, row.attempts, row.last_error) == (
            "pending",
            0,
            None,
        )
    assert queue.count == queued + 1

    with unscoped(session):
        session.get(WebhookEndpoint, endpoint.id).active = False  # type: ignore[union-attr]
        session.commit()
    refused = admin.post(f"/o/alpha/admin/deliveries/{ok}/redeliver")
    assert refused.status_code == 409
    assert "enable it, then redeliver" in refused.get_data(as_text=True)
    assert queue.count == queued + 1


def test_deliveries_page_counts_by_hour_and_lists_dead(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    make_ticket(session, alpha["org"], alpha["agent"])
    make_ticket(session, beta["org"], beta["agent"])
    hook = make_endpoint(session, alpha["admin"])
    now = utcnow()
    for _ in range(3):
        make_delivery(session, hook, 1, "delivered", updated_at=now)
    make_delivery(session, hook, 1, "failed", updated_at=now - timedelta(hours=2))
    make_delivery(session, hook, 1, "dead", updated_at=now - timedelta(hours=2),
                  last_error="alpha receiver said 500")  # fmt: skip
    make_delivery(session, hook, 1, "delivered", updated_at=now - timedelta(hours=30))
    beta_hook = make_endpoint(session, beta["admin"], PUBLIC + "/beta-secret")
    make_delivery(session, beta_hook, 1, "dead", last_error="beta-secret error")

    page = admin.get("/o/alpha/admin/deliveries")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    totals = re.search(r'class="delivery-totals">(.*?)</table>', html, re.S).group(1)  # type: ignore[union-attr]
    cells = dict(zip(re.findall(r"<th>(\w+)</th>", totals), re.findall(r"<td>(\d+)</td>", totals),
                     strict=True))  # fmt: skip
    assert (cells["delivered"], cells["failed"], cells["dead"], cells["pending"]) == (
        "4", "1", "1", "0")  # fmt: skip
    hours = re.findall(r"<tr><td>\d\d-\d\d \d\d:00</td><td>(\d+)</td><td>(\d+)</td>", html)
    assert len(hours) == 24
    assert hours[0] == ("3", "0") and hours[2] == ("0", "2")  # newest hour first
    assert sum(int(d) for d, _e in hours) == 3  # the 30-hour-old one is outside the window
    assert "alpha receiver said 500" in html and "beta-secret" not in html
    with unscoped(session):
        assert session.scalar(select(func.count()).select_from(Delivery)) == 7


def test_agents_get_403_and_other_orgs_ids_404(
    app: Flask, admin: Browser, session: Session, world: dict[str, Any], password: str
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    make_ticket(session, beta["org"], beta["agent"])
    mine = make_endpoint(session, alpha["admin"])
    theirs = make_endpoint(session, beta["admin"], PUBLIC + "/beta-secret")
    their_delivery = make_delivery(session, theirs, 1, "dead")
    agent = as_user(app, "agent@alpha.test", password)
    for url in (HOOKS, f"{HOOKS}/{mine.id}", "/o/alpha/admin/deliveries"):
        assert agent.get(url).status_code == 403
    assert agent.post(HOOKS, {"url": PUBLIC, "events": "*"}).status_code == 403
    assert agent.post(f"{HOOKS}/{mine.id}/rotate-secret").status_code == 403
    assert agent.post(f"{HOOKS}/{mine.id}/delete").status_code == 403

    assert admin.get(f"{HOOKS}/{theirs.id}").status_code == 404
    assert admin.post(f"{HOOKS}/{theirs.id}/rotate-secret").status_code == 404
    assert admin.post(f"{HOOKS}/{theirs.id}/delete").status_code == 404
    assert admin.post(f"/o/alpha/admin/deliveries/{their_delivery}/redeliver").status_code == 404
    assert admin.get("/o/beta/admin/webhooks").status_code == 404
    rows = endpoints(session)
    assert [(e.id, e.secret) for e in rows] == [(mine.id, mine.secret), (theirs.id, theirs.secret)]
    with unscoped(session):
        assert session.get(Delivery, their_delivery).status == "dead"  # type: ignore[union-attr]
