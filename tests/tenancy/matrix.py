"""The route matrix: the route inventory, who asks, ids per org, and what to expect."""

from __future__ import annotations

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
from tests.tenancy.matrix_data import (
    ADMIN_ONLY_PREFIXES,
    API_BODIES,
    API_UPLOADS,
    BETA_MARKERS,
    KEY_ARGS,
    NOT_EXERCISED_METHODS,
    NOT_ORG_DATA,
    PUBLIC_ORG_ROUTES,
    WEB_FORMS,
)

# Re-exported: the tables used to live here, and the tests import them from this module.
from tests.tenancy.matrix_data import MISSING_SLUG as MISSING_SLUG
from tests.tenancy.matrix_data import OTHER_REQUESTER_MARKERS as OTHER_REQUESTER_MARKERS
from tests.tenancy.matrix_data import PUBLIC_HOOK_URL as PUBLIC_HOOK_URL
from tests.tenancy.matrix_data import VOLATILE_COLUMNS as VOLATILE_COLUMNS
from tests.tenancy.matrix_data import targets as targets

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
