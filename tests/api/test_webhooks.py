"""The admin API for webhooks: secret once, SSRF guard, rotation, delivery log, redeliver."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from helpdesk.db import utcnow
from helpdesk.models import Delivery, OutboxEvent, Ticket, WebhookEndpoint
from helpdesk.services import api_tokens, webhook_http
from helpdesk.tenancy import tenant_scope, unscoped
from tests.factories import make_ticket

BASE = "/api/v1/orgs/alpha"
PUBLIC = "https://93.184.215.14/hooks"
NEW = {"url": PUBLIC, "events": ["ticket.created", "comment.created"], "description": "CRM"}


def bearer(session: Session, member: Any) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "test token")
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
def headers(session: Session, world: dict[str, Any]) -> dict[str, str]:
    return bearer(session, world["alpha"]["admin"])


@pytest.fixture
def check(client: FlaskClient):
    """Validate a JSON value against one of the OpenAPI document's component schemas."""
    doc = client.get("/api/v1/openapi.json").json
    registry = Registry().with_resource(
        "urn:api", Resource.from_contents(doc, default_specification=DRAFT202012)
    )

    def _check(value: Any, name: str) -> None:
        schema = {"$ref": f"urn:api#/components/schemas/{name}"}
        validator = Draft202012Validator(schema, registry=registry)
        assert [e.message for e in validator.iter_errors(value)] == [], name

    return _check


def endpoints(session: Session) -> list[WebhookEndpoint]:
    session.expire_all()
    with unscoped(session):
        return list(session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def make_delivery(session: Session, endpoint_id: int, org_id: int, status: str) -> int:
    with tenant_scope(session, org_id):
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == 1))
        event = OutboxEvent(kind="ticket.created", ticket_id=ticket_id, payload={})
        session.add(event)
        session.flush()
        delivery = Delivery(event_id=event.id, channel="webhook", endpoint_id=endpoint_id,
                            target=f"webhook:{endpoint_id}", status=status, attempts=6,
                            last_error="HTTP 503")  # fmt: skip
        session.add(delivery)
        session.commit()
        return delivery.id


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_create_shows_the_secret_once(
    client: FlaskClient, session: Session, headers: dict[str, str], check: Any
) -> None:
    check(NEW, "NewWebhook")
    created = client.post(f"{BASE}/webhooks", json=NEW, headers=headers)
    assert created.status_code == 201, created.json
    check(created.json, "WebhookWithSecret")
    [row] = endpoints(session)
    assert created.json["secret"] == row.secret and row.secret.startswith("whsec_")
    assert (created.json["events"], created.json["active"]) == (NEW["events"], True)
    for response in (client.get(f"{BASE}/webhooks", headers=headers),
                     client.get(f"{BASE}/webhooks/{row.id}", headers=headers)):  # fmt: skip
        assert response.status_code == 200
        assert "secret" not in json.dumps(response.json).replace("previous_secret_expires_at", "")
    check(client.get(f"{BASE}/webhooks", headers=headers).json, "WebhookList")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({**NEW, "url": "http://127.0.0.1/hook"}, "url", "not a public address (loopback)"),
        ({**NEW, "url": "http://localhost:5000/x"}, "url", "which is not a public address"),
        ({**NEW, "url": "http://172.16.0.9/"}, "url", "not a public address (private)"),
        ({**NEW, "url": "http://[fd00::1]/"}, "url", "not a public address (private)"),
        ({**NEW, "url": "javascript:alert(1)"}, "url", "javascript: is not allowed"),
        ({**NEW, "events": ["ticket.created", "ticket.exploded"]}, "events",
         "unknown event ticket.exploded"),
        ({**NEW, "events": []}, "events", "choose at least one event"),
        ({**NEW, "events": "ticket.created"}, "events", "must be a list"),
        ({**NEW, "secret": "whsec_mine"}, "secret", "unknown field"),
    ],
)  # fmt: skip
def test_bad_webhooks_are_422_and_nothing_is_saved(
    client: FlaskClient,
    session: Session,
    headers: dict[str, str],
    body: Any,
    field: str,
    message: str,
) -> None:
    response = client.post(f"{BASE}/webhooks", json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert list(response.json["errors"]) == [field]
    assert message in response.json["errors"][field]
    assert endpoints(session) == []


def test_rotation_keeps_both_secrets_valid_for_a_day(
    client: FlaskClient, session: Session, headers: dict[str, str], check: Any
) -> None:
    old = client.post(f"{BASE}/webhooks", json=NEW, headers=headers).json
    rotated = client.post(f"{BASE}/webhooks/{old['id']}/rotate-secret", headers=headers)
    assert rotated.status_code == 200
    check(rotated.json, "WebhookWithSecret")
    new_secret = rotated.json["secret"]
    assert new_secret != old["secret"]
    until = parse_time(rotated.json["previous_secret_expires_at"])
    assert timedelta(hours=23, minutes=59) < until - utcnow() <= timedelta(hours=24)
    [row] = endpoints(session)
    assert (row.secret, row.previous_secret) == (new_secret, old["secret"])
    assert row.previous_expires_at is not None and row.previous_expires_at > utcnow()

    # What the sender signs during the overlap verifies with either secret.
    body = b'{"type": "ticket.created"}'
    signed = webhook_http.signature_headers([row.secret, row.previous_secret], "dlv_1",
                                            datetime.now(UTC), body)  # fmt: skip
    for secret in (new_secret, old["secret"]):
        assert Webhook(secret).verify(body, signed) == {"type": "ticket.created"}
    fetched = client.get(f"{BASE}/webhooks/{old['id']}", headers=headers).json
    assert "secret" not in fetched and fetched["previous_secret_expires_at"] is not None


def test_patch_disable_re_enable_and_delete(
    client: FlaskClient, session: Session, headers: dict[str, str], check: Any
) -> None:
    hook = client.post(f"{BASE}/webhooks", json=NEW, headers=headers).json
    url = f"{BASE}/webhooks/{hook['id']}"
    check({"active": False, "events": ["*"]}, "WebhookPatch")
    off = client.patch(url, json={"active": False, "events": ["*"]}, headers=headers)
    assert off.status_code == 200
    assert (off.json["active"], off.json["events"], off.json["url"]) == (False, ["*"], PUBLIC)
    with unscoped(session):
        session.get(WebhookEndpoint, hook["id"]).disabled_reason = "5 dead deliveries"  # type: ignore[union-attr]
        session.commit()
    assert client.get(url, headers=headers).json["disabled_reason"] == "5 dead deliveries"
    on = client.patch(url, json={"active": True}, headers=headers)
    assert (on.json["active"], on.json["disabled_reason"]) == (True, None)
    refused = client.patch(url, json={"url": "http://10.0.0.1/"}, headers=headers)
    assert refused.status_code == 422 and "(private)" in refused.json["errors"]["url"]
    assert endpoints(session)[0].url == PUBLIC
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert endpoints(session) == []


def test_delivery_log_pages_and_redeliver_queues(
    app: Flask,
    client: FlaskClient,
    session: Session,
    world: dict[str, Any],
    headers: dict[str, str],
    check: Any,
) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"])
    hook = client.post(f"{BASE}/webhooks", json=NEW, headers=headers).json
    made = [make_delivery(session, hook["id"], alpha["org"].id, "dead") for _ in range(3)]
    url = f"{BASE}/webhooks/{hook['id']}/deliveries"
    first = client.get(f"{url}?limit=2", headers=headers)
    check(first.json, "DeliveryList")
    assert [d["id"] for d in first.json["items"]] == [made[2], made[1]]
    assert first.json["items"][0]["ticket"] == 1 and first.json["items"][0]["event"] == (
        "ticket.created")  # fmt: skip
    rest = client.get(f"{url}?limit=2&before={first.json['next_before']}", headers=headers)
    assert [d["id"] for d in rest.json["items"]] == [made[0]] and rest.json["next_before"] is None
    bad = client.get(f"{url}?limit=500&before=x&sort=id", headers=headers)
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"sort"}
    bad = client.get(f"{url}?limit=500&before=x", headers=headers)
    assert set(bad.json["errors"]) == {"limit", "before"}

    queue = Queue("notify", connection=app.extensions["helpdesk.redis"])
    queued = queue.count
    again = client.post(f"{BASE}/deliveries/{made[0]}/redeliver", headers=headers)
    assert again.status_code == 202, again.json
    check(again.json, "Delivery")
    assert (again.json["status"], again.json["attempts"], again.json["last_error"]) == (
        "pending", 0, None)  # fmt: skip
    assert queue.count == queued + 1
    client.patch(f"{BASE}/webhooks/{hook['id']}", json={"active": False}, headers=headers)
    refused = client.post(f"{BASE}/deliveries/{made[1]}/redeliver", headers=headers)
    assert refused.status_code == 409 and "enable it, then redeliver" in refused.json["detail"]
    missing = client.post(f"{BASE}/deliveries/999999/redeliver", headers=headers)
    assert missing.status_code == 404
    assert queue.count == queued + 1


def test_only_admins_and_only_their_own_org(
    client: FlaskClient, session: Session, world: dict[str, Any], headers: dict[str, str]
) -> None:
    beta = world["beta"]
    make_ticket(session, beta["org"], beta["agent"])
    beta_hook = client.post("/api/v1/orgs/beta/webhooks", json=NEW,
                            headers=bearer(session, beta["admin"])).json  # fmt: skip
    beta_delivery = make_delivery(session, beta_hook["id"], beta["org"].id, "dead")
    mine = client.post(f"{BASE}/webhooks", json=NEW, headers=headers).json
    for role in ("agent", "requester"):
        who = bearer(session, world["alpha"][role])
        for method, url in (("GET", f"{BASE}/webhooks"), ("POST", f"{BASE}/webhooks"),
                            ("GET", f"{BASE}/webhooks/{mine['id']}"),
                            ("POST", f"{BASE}/webhooks/{mine['id']}/rotate-secret"),
                            ("DELETE", f"{BASE}/webhooks/{mine['id']}"),
                            ("POST", f"{BASE}/deliveries/{beta_delivery}/redeliver")):  # fmt: skip
            response = client.open(url, method=method, json=NEW, headers=who)
            assert response.status_code == 403, (role, method, url)
            assert "secret" not in response.json
    for method, url in (("GET", f"{BASE}/webhooks/{beta_hook['id']}"),
                        ("POST", f"{BASE}/webhooks/{beta_hook['id']}/rotate-secret"),
                        ("GET", f"{BASE}/webhooks/{beta_hook['id']}/deliveries"),
                        ("DELETE", f"{BASE}/webhooks/{beta_hook['id']}"),
                        ("POST", f"{BASE}/deliveries/{beta_delivery}/redeliver")):  # fmt: skip
        assert client.open(url, method=method, headers=headers).status_code == 404, url
    assert client.get("/api/v1/orgs/beta/webhooks", headers=headers).status_code == 404
    rows = endpoints(session)
    expected = [(beta_hook["id"], beta_hook["secret"]), (mine["id"], mine["secret"])]
    assert [(r.id, r.secret) for r in rows] == expected
    assert [r.previous_secret for r in rows] == [None, None]
    with unscoped(session):
        assert session.get(Delivery, beta_delivery).status == "dead"  # type: ignore[union-attr]
