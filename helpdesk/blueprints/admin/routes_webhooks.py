"""Admin pages for webhook endpoints, their delivery logs, and the org's deliveries."""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from helpdesk.blueprints.admin import forms
from helpdesk.blueprints.admin.base import admin, allowed_networks, bp, page_context
from helpdesk.db import get_session, utcnow
from helpdesk.htmx import render
from helpdesk.services import webhooks
from helpdesk.services.errors import Conflict, ValidationError
from helpdesk.services.validation import positive_int


def _list_page(status: int = 200, **extra: Any) -> Response:
    ctx = page_context(
        "webhooks",
        endpoints=webhooks.list_endpoints(get_session(), admin()),
        events=webhooks.EVENTS,
        now=utcnow(),
        **{"form": forms.webhook_values(None), **extra},
    )
    return render("admin/webhooks.html", status=status, **ctx)


def _endpoint_page(webhook_id: int, status: int = 200, **extra: Any) -> Response:
    session, member = get_session(), admin()
    endpoint = webhooks.get_endpoint(session, member, webhook_id)
    before = positive_int(request.args.get("before", ""))
    log = webhooks.delivery_log(session, member, endpoint.id, before)
    now = utcnow()
    ctx = page_context(
        "webhooks",
        endpoint=endpoint,
        rotating_until=webhooks.rotating_until(endpoint, now),
        form=extra.pop("form", None) or forms.webhook_values(endpoint),
        events=webhooks.EVENTS,
        log=log,
        older=log[-1].id if len(log) == webhooks.LOG_LIMIT else None,
        now=now,
        **extra,
    )
    return render("admin/webhook.html", status=status, **ctx)


@bp.get("/webhooks")
def webhooks_index(org_slug: str) -> Response:
    return _list_page()


@bp.post("/webhooks")
def create_webhook(org_slug: str) -> Response:
    data = forms.webhook_input(request.form, with_active=False)
    try:
        endpoint, secret = webhooks.create_endpoint(
            get_session(), admin(), data, allowed_networks(), utcnow()
        )
    except ValidationError as exc:
        return _list_page(422, form=forms.webhook_form_values(request.form), errors=exc.errors)
    # The secret is shown in this response only; it is never put in a URL or shown again.
    return _endpoint_page(endpoint.id, 201, new_secret=secret)


@bp.get("/webhooks/<int:webhook_id>")
def webhook(org_slug: str, webhook_id: int) -> Response:
    return _endpoint_page(webhook_id)


@bp.post("/webhooks/<int:webhook_id>")
def update_webhook(org_slug: str, webhook_id: int) -> Response:
    data = forms.webhook_input(request.form, with_active=True)
    try:
        webhooks.update_endpoint(
            get_session(), admin(), webhook_id, data, allowed_networks(), utcnow()
        )
    except ValidationError as exc:
        typed = forms.webhook_form_values(request.form)
        return _endpoint_page(webhook_id, 422, form=typed, errors=exc.errors)
    return redirect(url_for("admin.webhook", org_slug=org_slug, webhook_id=webhook_id), code=303)


@bp.post("/webhooks/<int:webhook_id>/rotate-secret")
def rotate_webhook_secret(org_slug: str, webhook_id: int) -> Response:
    _endpoint, secret = webhooks.rotate_secret(get_session(), admin(), webhook_id, utcnow())
    return _endpoint_page(webhook_id, new_secret=secret, rotated=True)


@bp.post("/webhooks/<int:webhook_id>/enable")
def enable_webhook(org_slug: str, webhook_id: int) -> Response:
    webhooks.enable_endpoint(get_session(), admin(), webhook_id, utcnow())
    return redirect(url_for("admin.webhook", org_slug=org_slug, webhook_id=webhook_id), code=303)


@bp.post("/webhooks/<int:webhook_id>/delete")
def delete_webhook(org_slug: str, webhook_id: int) -> Response:
    webhooks.delete_endpoint(get_session(), admin(), webhook_id)
    return redirect(url_for("admin.webhooks_index", org_slug=org_slug), code=303)


@bp.post("/deliveries/<int:delivery_id>/redeliver")
def redeliver(org_slug: str, delivery_id: int) -> Response:
    from_webhook = positive_int(request.form.get("endpoint", ""))
    try:
        row = webhooks.redeliver(get_session(), admin(), delivery_id, utcnow())
    except Conflict as exc:  # being sent right now, or its endpoint is disabled
        if from_webhook is not None:
            return _endpoint_page(from_webhook, 409, conflict=str(exc))
        return _deliveries_page(409, conflict=str(exc))
    if from_webhook is not None and row.endpoint_id == from_webhook:
        target = url_for("admin.webhook", org_slug=org_slug, webhook_id=from_webhook)
    else:
        target = url_for("admin.deliveries", org_slug=org_slug)
    return redirect(target, code=303)


def _deliveries_page(status: int = 200, **extra: Any) -> Response:
    now = utcnow()
    stats = webhooks.delivery_stats(get_session(), admin(), now)
    busiest = max((h.delivered + h.errors for h in stats.hours), default=0)
    ctx = page_context("deliveries", stats=stats, busiest=max(busiest, 1), now=now, **extra)
    return render("admin/deliveries.html", status=status, **ctx)


@bp.get("/deliveries")
def deliveries(org_slug: str) -> Response:
    return _deliveries_page()
