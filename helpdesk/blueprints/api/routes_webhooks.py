"""API v1 for org admins: webhook endpoints, their delivery logs, and redelivery.

Registered on the `api` blueprint (imported by its package). The signing secret appears in
exactly two responses: the 201 that created the endpoint and the 200 of a rotation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response, current_app, jsonify

from helpdesk.blueprints.api import payload
from helpdesk.blueprints.api.problems import invalid
from helpdesk.blueprints.api.routes import bp
from helpdesk.blueprints.api.routes_sla import admin_member
from helpdesk.blueprints.api.schemas_admin import NEW_WEBHOOK, WEBHOOK_PATCH
from helpdesk.blueprints.api.serialize import timestamp
from helpdesk.db import get_session, utcnow
from helpdesk.models import WebhookEndpoint
from helpdesk.services import webhooks
from helpdesk.services.validation import positive_int
from helpdesk.services.webhook_http import Network, parse_networks

WHAT = "manage webhooks"
LIMIT_MAX = 100


def _allowed() -> tuple[Network, ...]:
    return parse_networks(current_app.config["WEBHOOK_ALLOWED_NETWORKS"])


def webhook_json(
    endpoint: WebhookEndpoint, now: datetime, secret: str | None = None
) -> dict[str, Any]:
    """An endpoint as the API shows it; `secret` only when it was just created or rotated."""
    rotating = webhooks.rotating_until(endpoint, now)
    body: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "active": endpoint.active,
        "disabled_reason": endpoint.disabled_reason,
        "previous_secret_expires_at": timestamp(rotating) if rotating else None,
        "created_at": timestamp(endpoint.created_at),
        "updated_at": timestamp(endpoint.updated_at),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def delivery_json(row: webhooks.LogRow) -> dict[str, Any]:
    """A delivery as the API shows it."""
    return {
        "id": row.id,
        "event": row.kind,
        "ticket": row.ticket_number,
        "status": row.status,
        "attempts": row.attempts,
        "response_status": row.response_status,
        "last_error": row.last_error,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
    }


@bp.get("/orgs/<org_slug>/webhooks")
def list_webhooks(org_slug: str) -> Response:
    endpoints = webhooks.list_endpoints(get_session(), admin_member(WHAT))
    now = utcnow()
    return jsonify(items=[webhook_json(e, now) for e in endpoints])


@bp.post("/orgs/<org_slug>/webhooks")
def create_webhook(org_slug: str) -> tuple[Response, int]:
    member = admin_member(WHAT)
    data = payload.json_object()
    payload.check_fields(data, NEW_WEBHOOK)
    sent = webhooks.WebhookInput(url=data.get("url"), events=data.get("events"),
                                 description=data.get("description", ""))  # fmt: skip
    now = utcnow()
    endpoint, secret = webhooks.create_endpoint(get_session(), member, sent, _allowed(), now)
    return jsonify(webhook_json(endpoint, now, secret)), 201


@bp.get("/orgs/<org_slug>/webhooks/<int:webhook_id>")
def get_webhook(org_slug: str, webhook_id: int) -> Response:
    endpoint = webhooks.get_endpoint(get_session(), admin_member(WHAT), webhook_id)
    return jsonify(webhook_json(endpoint, utcnow()))


@bp.patch("/orgs/<org_slug>/webhooks/<int:webhook_id>")
def patch_webhook(org_slug: str, webhook_id: int) -> Response:
    member = admin_member(WHAT)
    data = payload.json_object()
    payload.check_fields(data, WEBHOOK_PATCH)
    sent = webhooks.WebhookInput(**{k: data.get(k) for k in WEBHOOK_PATCH["properties"]})
    now = utcnow()
    endpoint = webhooks.update_endpoint(get_session(), member, webhook_id, sent, _allowed(), now)
    return jsonify(webhook_json(endpoint, now))


@bp.delete("/orgs/<org_slug>/webhooks/<int:webhook_id>")
def delete_webhook(org_slug: str, webhook_id: int) -> tuple[str, int]:
    webhooks.delete_endpoint(get_session(), admin_member(WHAT), webhook_id)
    return "", 204


@bp.post("/orgs/<org_slug>/webhooks/<int:webhook_id>/rotate-secret")
def rotate_webhook_secret(org_slug: str, webhook_id: int) -> Response:
    now = utcnow()
    endpoint, secret = webhooks.rotate_secret(get_session(), admin_member(WHAT), webhook_id, now)
    return jsonify(webhook_json(endpoint, now, secret))


@bp.get("/orgs/<org_slug>/webhooks/<int:webhook_id>/deliveries")
def list_webhook_deliveries(org_slug: str, webhook_id: int) -> Response:
    member = admin_member(WHAT)
    args = payload.query_args(("before", "limit"))
    errors: dict[str, str] = {}
    before = positive_int(args["before"]) if "before" in args else None
    if "before" in args and before is None:
        errors["before"] = "use the `next_before` of the previous page (a delivery id)"
    limit = positive_int(args.get("limit", str(webhooks.LOG_LIMIT)))
    if limit is None or limit > LIMIT_MAX:
        errors["limit"] = f"use a whole number from 1 to {LIMIT_MAX}"
    if errors:
        raise invalid(errors)
    rows = webhooks.delivery_log(get_session(), member, webhook_id, before, limit or 1)
    next_before = rows[-1].id if rows and len(rows) == limit else None
    return jsonify(items=[delivery_json(r) for r in rows], next_before=next_before)


@bp.post("/orgs/<org_slug>/deliveries/<int:delivery_id>/redeliver")
def redeliver_delivery(org_slug: str, delivery_id: int) -> tuple[Response, int]:
    member = admin_member("redeliver events")
    row = webhooks.redeliver(get_session(), member, delivery_id, utcnow())
    return jsonify(delivery_json(row)), 202
