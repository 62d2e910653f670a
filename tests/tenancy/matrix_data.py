"""The route matrix's tables: allow-lists, request bodies, markers and the id table."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

# Routes that serve no org's data. Everything else must take an org_slug.
NOT_ORG_DATA = {
    "static": "/static/<path:filename>",
    "auth.home": "/",
    "auth.login": "/login",
    "auth.logout": "/logout",
    # Account actions, not org data: ending every session of the caller (the button is on
    # the profile page), and the forgotten-password form and its emailed link.
    # tests/auth/ covers them.
    "auth.logout_everywhere": "/logout/everywhere",
    "auth.forgot_password": "/reset",
    "auth.reset_password": "/reset/<path:token>",
    "ops.healthz": "/healthz",
    "ops.readyz": "/readyz",
    "ops.metrics": "/metrics",
    "ops_rq.index": "/ops/rq/",
    "ops_rq.page": "/ops/rq/<path:subpath>",
    # Site-wide feature flags, operators only (tests/flags/test_ops_page.py).
    "ops_flags.index": "/ops/flags",
    "ops_flags.set_flag": "/ops/flags/<name>",
    "api.openapi_document": "/api/v1/openapi.json",
    # The emailed link itself: it names no org (the token does); the token-free requester
    # pages it redirects to, /r/<org_slug>/<number>, are org routes covered below.
    "links.open_link": "/t/<path:token>",
    # Raw email from the inbound-mail service (bearer secret, no session): it names no org;
    # the job finds the org. tests/web/test_inbound_endpoint.py covers it.
    "inbound.receive": "/inbound/email",
}
# Public org routes: no login, and the only org data they show is the org's display name
# (the public request form). The gate scenarios (A to E) do not apply to them; they are driven
# by `public_cases` in test_public_org_routes_show_only_the_org_name instead.
PUBLIC_ORG_ROUTES = {
    "request_form.show": "/o/<org_slug>/request",
    "request_form.submit": "/o/<org_slug>/request",
    "request_form.thanks": "/o/<org_slug>/request/thanks",
}
NOT_EXERCISED_METHODS = {"HEAD", "OPTIONS"}
MISSING_SLUG = "no-such-org"

# A public address (no DNS lookup needed) that the webhook SSRF guard accepts.
PUBLIC_HOOK_URL = "https://93.184.215.14/matrix-hook"

# Admin-only routes: agents and requesters of the org get 403 (a role check, made before
# any object is looked up); everything else about them is tested like any other route.
ADMIN_ONLY_PREFIXES = (
    "/o/<org_slug>/admin/",
    "/api/v1/orgs/<org_slug>/sla-policies",
    "/api/v1/orgs/<org_slug>/calendars",
    "/api/v1/orgs/<org_slug>/webhooks",
    "/api/v1/orgs/<org_slug>/deliveries",
)
# Path arguments that name a fixed key (a priority), not an object that belongs to an org.
KEY_ARGS = {"org_slug", "priority"}

# A valid body for every state-changing (method, endpoint): the gate, not validation,
# must be what refuses a request. A new mutating route needs an entry here.
WEB_FORMS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "tickets.create"): {
        "subject": "matrix subject",
        "body": "matrix body",
        "priority": "high",
        "requester_email": "matrix.requester@example.test",
    },
    ("POST", "tickets.comment"): {"body": "matrix reply"},
    ("POST", "tickets.fields"): {"priority": "urgent", "tags": "matrix"},
    ("POST", "profile.create_token"): {"name": "matrix token"},
    ("POST", "profile.revoke_token"): {},
    ("POST", "profile.change_password"): {
        "current_password": "correct horse battery staple",
        "new_password": "matrix new password 1",
        "confirm_password": "matrix new password 1",
    },
    ("POST", "tickets.bulk"): {"tickets": "1", "priority": "urgent"},
    ("POST", "tickets.save_view"): {"name": "matrix view", "filter_status": "open"},
    ("POST", "tickets.delete_view"): {},
    ("POST", "tickets.presence_beat"): {"replying": "1"},
    ("POST", "tickets.preview"): {"body": "**matrix preview**"},
    ("POST", "tickets.insert_canned"): {"body": "draft", "canned_id": ""},
    ("POST", "canned.create"): {"title": "matrix canned", "body": "Hi {requester_name}"},
    ("POST", "canned.delete"): {},
    ("POST", "profile.save_notifications"): {
        "events": "sla.breached",
        "mode": "digest",
        "digest_minutes": "30",
    },
    ("POST", "admin.save_policy"): {
        "first_response_minutes": "60",
        "resolution_minutes": "480",
        "calendar": "24x7",
        "warn_at_percent": "75, 90",
        "warn_before_minutes": "30",
    },
    ("POST", "admin.delete_policy"): {},
    ("POST", "admin.create_calendar"): {
        "name": "matrix calendar",
        "timezone": "Europe/Berlin",
        "hours_mon": "09:00-17:00",
        "holidays": "2030-12-25",
    },
    ("POST", "admin.update_calendar"): {
        "name": "matrix calendar renamed",
        "timezone": "UTC",
        "hours_tue": "08:00-16:00",
    },
    ("POST", "admin.delete_calendar"): {},
    ("POST", "admin.create_webhook"): {"url": PUBLIC_HOOK_URL, "events": "ticket.created"},
    ("POST", "admin.update_webhook"): {"url": PUBLIC_HOOK_URL, "events": "*", "active": "1"},
    ("POST", "admin.rotate_webhook_secret"): {},
    ("POST", "admin.enable_webhook"): {},
    ("POST", "admin.delete_webhook"): {},
    ("POST", "admin.redeliver"): {},
    ("POST", "admin.verify_audit"): {},
    ("POST", "admin.export_audit"): {},
    ("POST", "tickets.revoke_links"): {},
    ("POST", "links.reply"): {"body": "matrix requester-page reply"},
    ("POST", "links.solve"): {},
    ("POST", "request_form.submit"): {
        "name": "Matrix Public",
        "email": "matrix.public@example.test",
        "subject": "matrix public subject",
        "description": "matrix public body",
    },
}
API_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "api.create_ticket"): {
        "subject": "matrix subject",
        "body": "matrix body",
        "requester_email": "matrix.requester@example.test",
    },
    ("PATCH", "api.patch_ticket"): {"priority": "urgent", "tags": ["matrix"]},
    ("POST", "api.create_comment"): {"body": "matrix reply"},
    ("POST", "api.bulk_update"): {"numbers": [1], "priority": "urgent"},
    ("POST", "api.create_view"): {"name": "matrix api view", "filters": {"status": "open"}},
    ("POST", "api.create_canned"): {"title": "matrix api canned", "body": "Hi"},
    ("PUT", "api.put_sla_policy"): {
        "first_response_minutes": 60,
        "resolution_minutes": 480,
        "calendar": "24x7",
        "warn_at_percent": [75],
    },
    ("POST", "api.create_calendar"): {
        "name": "matrix api calendar",
        "timezone": "UTC",
        "hours": {"mon": [["09:00", "17:00"]]},
    },
    ("PATCH", "api.patch_calendar"): {"name": "matrix api calendar renamed"},
    ("POST", "api.create_webhook"): {"url": PUBLIC_HOOK_URL, "events": ["*"]},
    ("PATCH", "api.patch_webhook"): {"description": "matrix api"},
    ("POST", "api.rotate_webhook_secret"): {},
    ("POST", "api.redeliver_delivery"): {},
    ("POST", "api.revoke_links"): {},
    ("POST", "api.solve_ticket"): {},
}

# Multipart bodies for the API's upload routes: a fresh one per request (streams are read).
API_UPLOADS: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {
    ("POST", "api.upload_attachments"): lambda: {"file": (io.BytesIO(b"matrix file\n"),
                                                          "matrix.txt")},
}  # fmt: skip

# Text that exists only in beta (or only on another alpha requester's ticket).
BETA_MARKERS = ("beta-secret", "@beta.test")
OTHER_REQUESTER_MARKERS = ("alpha-other-subject", "alpha-other-body")

# Columns a refused request may still touch (API authentication records token use).
VOLATILE_COLUMNS = {("api_tokens", "last_used_at")}


def targets(
    org_slug: str,
    number: int,
    token_id: int,
    view_id: int,
    canned_id: int,
    admin_ids: dict[str, int],
) -> dict[str, Any]:
    """The id table: a value for every path argument. A new argument must be added here.

    admin_ids holds calendar_id, webhook_id and delivery_id, and attachment_id (a clean file
    on ticket `number`).
    """
    return {"org_slug": org_slug, "number": number, "token_id": token_id, "view_id": view_id,
            "canned_id": canned_id, "priority": "high", **admin_ids}  # fmt: skip
