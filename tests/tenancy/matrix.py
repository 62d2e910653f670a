"""The route matrix: the route inventory, who asks, ids per org, and what to expect."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from helpdesk.blueprints.api.auth import NOT_FOUND as API_NOT_FOUND
from helpdesk.errors import MESSAGES
from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope
from tests.browser import Browser

# Routes that serve no org's data. Everything else must take an org_slug.
NOT_ORG_DATA = {
    "static": "/static/<path:filename>",
    "auth.home": "/",
    "auth.login": "/login",
    "auth.logout": "/logout",
    "ops.healthz": "/healthz",
    "ops.readyz": "/readyz",
    "ops.metrics": "/metrics",
    "ops_rq.index": "/ops/rq/",
    "ops_rq.page": "/ops/rq/<path:subpath>",
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

_CSRF_VALUE = re.compile(r'(name="csrf[-_]token" (?:content|value)=")[^"]*(")')


class MatrixGap(Exception):
    """The matrix cannot build a request for a route: the route is not covered."""


# --- the route inventory -------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    rule: Rule
    method: str

    @property
    def api(self) -> bool:
        return self.rule.rule.startswith("/api/")

    @property
    def object_args(self) -> list[str]:
        return sorted(set(self.rule.arguments) - KEY_ARGS)

    @property
    def admin_only(self) -> bool:
        return self.rule.rule.startswith(ADMIN_ONLY_PREFIXES)

    @property
    def label(self) -> str:
        return f"{self.method} {self.rule.rule}"


def inventory(app: Flask) -> tuple[list[Case], list[str]]:
    """(cases for every org route and method, problems with routes the matrix cannot cover)."""
    cases: list[Case] = []
    problems: list[str] = []
    for rule in app.url_map.iter_rules():
        if "org_slug" not in rule.arguments:
            if NOT_ORG_DATA.get(rule.endpoint) != rule.rule:
                problems.append(f"route {rule.rule} is not covered by the tenancy matrix")
            continue
        if PUBLIC_ORG_ROUTES.get(rule.endpoint) == rule.rule:
            continue  # see public_cases
        for method in sorted((rule.methods or set()) - NOT_EXERCISED_METHODS):
            cases.append(Case(rule, method))
    present = {(r.endpoint, r.rule) for r in app.url_map.iter_rules()}
    for endpoint, path in {**NOT_ORG_DATA, **PUBLIC_ORG_ROUTES}.items():
        if (endpoint, path) not in present:
            problems.append(f"allow-listed route {path} ({endpoint}) no longer exists")
    return cases, problems


def public_cases(app: Flask) -> list[Case]:
    """Cases for the public org routes (PUBLIC_ORG_ROUTES), every method."""
    return [
        Case(rule, method)
        for rule in app.url_map.iter_rules()
        if PUBLIC_ORG_ROUTES.get(rule.endpoint) == rule.rule
        for method in sorted((rule.methods or set()) - NOT_EXERCISED_METHODS)
    ]


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


def build_url(app: Flask, case: Case, values: dict[str, Any]) -> str:
    missing = sorted(set(case.rule.arguments) - set(values))
    if missing:
        raise MatrixGap(
            f"{case.label}: path argument(s) {', '.join(missing)} have no value in the "
            "matrix's id table (add them to targets())"
        )
    adapter = app.url_map.bind("localhost")
    # "<arg>@<endpoint>" overrides an id for one route (e.g. the API delete of an object
    # the web delete already removed in the same run).
    args = {
        name: values.get(f"{name}@{case.rule.endpoint}", values[name])
        for name in case.rule.arguments
    }
    url = adapter.build(case.rule.endpoint, args, method=case.method)
    endpoint, _ = adapter.match(url, method=case.method)
    if endpoint != case.rule.endpoint:
        raise MatrixGap(f"{case.label}: {url} routes to {endpoint}, not {case.rule.endpoint}")
    return url


# --- who asks ------------------------------------------------------------------------------


@dataclass
class Actor:
    name: str
    browser: Browser | None = None
    headers: dict[str, str] = field(default_factory=dict)


def bearer(session: Session, member: Any, name: str, **kw: Any) -> tuple[int, dict[str, str]]:
    with tenant_scope(session, member.org_id):
        token, plaintext = api_tokens.create_token(session, member, name, **kw)
    return token.id, {"Authorization": f"Bearer {plaintext}"}


# --- the world the matrix runs in ------------------------------------------------------------


@dataclass
class Matrix:
    app: Flask
    session: Session
    cases: list[Case]
    alpha_agent: Actor
    alpha_admin: Actor
    alpha_requester: Actor
    dual: Actor
    anonymous: Actor
    ids: dict[str, dict[str, Any]]
    api_headers: dict[str, dict[str, str]]
    failures: list[str] = field(default_factory=list)
    exercised: int = 0

    def staff(self, case: Case) -> Actor:
        """Alpha's staff member who may use the route in their own org (admin or agent)."""
        return self.alpha_admin if case.admin_only else self.alpha_agent

    def send(
        self,
        case: Case,
        actor: Actor,
        values: dict[str, Any],
        htmx: bool = False,
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        url = build_url(self.app, case, values)
        key = (case.method, case.rule.endpoint)
        if case.api and key in API_UPLOADS:
            client = self.app.test_client()
            sent = actor.headers if headers is None else headers
            return client.open(url, method=case.method, data=API_UPLOADS[key](), headers=sent)
        if case.api:
            body = None
            if case.method not in ("GET", "DELETE"):
                if key not in API_BODIES:
                    raise MatrixGap(f"{case.label}: no JSON body in API_BODIES for {key}")
                body = API_BODIES[key]
            client = self.app.test_client()
            sent = actor.headers if headers is None else headers
            return client.open(url, method=case.method, json=body, headers=sent)
        browser = actor.browser
        assert browser is not None, f"{actor.name} has no browser"
        if case.method == "GET":
            return browser.get(url, htmx=htmx)
        if key not in WEB_FORMS:
            raise MatrixGap(f"{case.label}: no form in WEB_FORMS for {key}")
        if case.method == "POST":
            return browser.post(url, WEB_FORMS[key], htmx=htmx)
        extra = {"X-CSRFToken": browser.csrf or ""}
        if htmx:
            extra["HX-Request"] = "true"
        return browser.client.open(url, method=case.method, data=WEB_FORMS[key], headers=extra)

    def check(
        self,
        scenario: str,
        case: Case,
        actor: Actor,
        values: dict[str, Any],
        expect: Callable[[Case, TestResponse], str | None],
        *,
        htmx: bool = False,
        headers: dict[str, str] | None = None,
        markers: tuple[str, ...] = BETA_MARKERS,
    ) -> TestResponse | None:
        where = f"[{scenario}] {case.label} as {actor.name}{' (htmx)' if htmx else ''}"
        try:
            response = self.send(case, actor, values, htmx=htmx, headers=headers)
        except MatrixGap as gap:
            self.failures.append(f"{where}: {gap}")
            return None
        self.exercised += 1
        problem = expect(case, response)
        if problem:
            self.failures.append(f"{where}: {problem} — {snippet(response)}")
        seen = response.get_data(as_text=True) + response.headers.get("Location", "")
        leaked = [m for m in markers if m in seen]
        if leaked:
            self.failures.append(f"{where}: response shows {leaked}")
        return response

    def assert_clean(self, scenario: str) -> None:
        total = f"{scenario}: {self.exercised} (rule, method, scenario) cases exercised"
        print(total)
        assert self.exercised > 0, total
        assert not self.failures, f"{total}; {len(self.failures)} failed:\n" + "\n".join(
            self.failures
        )


def snippet(response: TestResponse) -> str:
    text = " ".join(response.get_data(as_text=True).split())
    return f"{response.status_code} {text[:160]!r}"


def normalized(response: TestResponse) -> tuple[int, str, str]:
    """Status, type and body with the per-session CSRF token blanked out."""
    body = _CSRF_VALUE.sub(r"\1\2", response.get_data(as_text=True))
    return response.status_code, response.mimetype, body


# --- expectations --------------------------------------------------------------------------


def is_404(case: Case, response: TestResponse) -> str | None:
    return None if response.status_code == 404 else "expected 404"


def is_gate_404(case: Case, response: TestResponse) -> str | None:
    if response.status_code != 404:
        return "expected 404"
    if case.api:
        detail = (response.get_json(silent=True) or {}).get("detail")
        return None if detail == API_NOT_FOUND else f"not the API gate's 404 ({detail!r})"
    body = response.get_data(as_text=True)
    return None if MESSAGES[404] in body else "not the web gate's 404 page"


def to_login(case: Case, response: TestResponse) -> str | None:
    location = response.headers.get("Location", "")
    redirected = response.status_code in (302, 303) and urlsplit(location).path == "/login"
    if case.method == "GET":
        return None if redirected else "expected a redirect to /login"
    if redirected or response.status_code in (401, 403, 404):
        return None
    return "expected a redirect to /login or a 401/403/404"


def is_401(case: Case, response: TestResponse) -> str | None:
    if response.status_code != 401:
        return "expected 401"
    if not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
        return "401 without a Bearer WWW-Authenticate challenge"
    return None


def is_403(case: Case, response: TestResponse) -> str | None:
    return None if response.status_code == 403 else "expected 403 (admins only)"


def succeeds(case: Case, response: TestResponse) -> str | None:
    return None if 200 <= response.status_code < 400 else "expected success in own org"
