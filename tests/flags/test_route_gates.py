"""Gates on routes: the public form, inbound email and API writes answer 503 while switched
off, store nothing, and work again once switched on; the list covers every route it should."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk.flag_gates import GATES, WRITE_METHODS, gates_for
from helpdesk.models import InboundMessage, Ticket
from helpdesk.services import api_tokens, flags
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser
from tests.factories import make_ticket
from tests.flags.helpers import switch
from tests.web.request_form_helpers import request_data

SECRET = "flag-gate-test-secret-0123456789abcdef"
MESSAGE = (
    b"From: Nora <nora@example.net>\r\nTo: support@example.test\r\nSubject: Hi\r\n\r\nHello.\r\n"
)


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def count(session: Session, model: type) -> int:
    session.expire_all()
    with unscoped(session):
        found = session.scalar(select(func.count()).select_from(model)) or 0
    session.rollback()
    return found


def assert_switched_off(response: TestResponse, *phrases: str) -> None:
    assert response.status_code == 503, text(response)
    assert response.headers["Retry-After"] == "60"
    assert response.headers["Cache-Control"] == "no-store"
    for phrase in phrases:
        assert phrase in text(response)


def flag_gate_methods(app: Flask, flag: str) -> set[tuple[str, str]]:
    """(endpoint, method) pairs a flag's gates wrap, from the app's own route map."""
    found = set()
    for rule in app.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            gates = gates_for(rule.endpoint, {method})
            if any(g.flag == flag for g in gates):
                found.add((rule.endpoint, method))
    return found


# --- the list -------------------------------------------------------------------------------


def test_every_gate_names_a_known_flag_and_a_clear_message() -> None:
    for gate in GATES:
        assert gate.flag in flags.FLAGS
        assert gate.message.endswith(".")
        assert any(word in gate.message for word in ("switched off", "paused", "closed"))


def test_every_upload_and_download_route_is_gated(app: Flask) -> None:
    uploads = flag_gate_methods(app, "attachments_upload")
    downloads = flag_gate_methods(app, "attachments_download")
    for rule in app.url_map.iter_rules():
        if rule.rule.endswith("/download"):
            assert (rule.endpoint, "GET") in downloads, rule.rule
        if "attachments" in rule.rule and "POST" in (rule.methods or ()):
            assert (rule.endpoint, "POST") in uploads, rule.rule
    # The message forms that take files (text-only messages still go through).
    for endpoint in ("tickets.create", "tickets.comment", "links.reply"):
        assert (endpoint, "POST") in uploads


def test_every_api_write_and_no_api_read_is_gated(app: Flask) -> None:
    gated = flag_gate_methods(app, "api_writes")
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert ((rule.endpoint, method) in gated) is (method in WRITE_METHODS), rule.rule


def test_the_public_form_and_inbound_routes_are_gated(app: Flask) -> None:
    form = {e for e, _ in flag_gate_methods(app, "public_form")}
    assert form == {
        r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("request_form.")
    }
    assert flag_gate_methods(app, "inbound_email") == {("inbound.receive", "POST")}


# --- public form ----------------------------------------------------------------------------


def test_the_public_form_closes_and_opens(
    app: Flask, session: Session, browser: Browser, world
) -> None:
    switch(app, session, "public_form", False, "spam wave")
    page = browser.get("/o/alpha/request")
    assert_switched_off(page, "The request form is closed for now")
    response = browser.post("/o/alpha/request", request_data())
    assert_switched_off(response, "nothing was sent")
    assert count(session, Ticket) == 0
    assert browser.get("/o/alpha/request/thanks").status_code == 503
    switch(app, session, "public_form", True)
    assert browser.get("/o/alpha/request").status_code == 200
    assert browser.post("/o/alpha/request", request_data()).status_code == 303
    assert count(session, Ticket) == 1


def test_a_closed_public_form_says_so_to_htmx(
    app: Flask, session: Session, browser: Browser, world
) -> None:
    browser.get("/login")
    switch(app, session, "public_form", False)
    response = browser.post("/o/alpha/request", request_data(), htmx=True)
    assert_switched_off(response, "The request form is closed for now")
    assert response.headers["HX-Reswap"] == "none"
    assert "The request form is closed for now" in response.headers["HX-Trigger"]
    assert "<html" not in text(response)  # a fragment, not a page
    assert count(session, Ticket) == 0


def test_a_closed_form_refuses_before_counting_a_rate_limit(
    app: Flask, session: Session, browser: Browser, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_LIMIT_IP", "1 per hour")
    switch(app, session, "public_form", False)
    browser.get("/login")
    for _ in range(3):
        assert browser.post("/o/alpha/request", request_data()).status_code == 503
    switch(app, session, "public_form", True)
    assert browser.post("/o/alpha/request", request_data()).status_code == 303


# --- inbound email --------------------------------------------------------------------------


@pytest.fixture
def inbound_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setitem(app.config, "INBOUND_EMAIL_SECRET", SECRET)
    monkeypatch.setitem(app.config, "MAIL_FROM", "support@example.test")
    monkeypatch.setitem(app.config, "REPLY_ADDRESS", "support+{token}@example.test")
    return app


def _inbound(client: FlaskClient) -> TestResponse:
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": "message/rfc822"}
    return client.post("/inbound/email", data=MESSAGE, headers=headers)


def test_inbound_email_pauses_with_a_retryable_503(
    inbound_app: Flask, session: Session, client: FlaskClient
) -> None:
    switch(inbound_app, session, "inbound_email", False, "threading bug")
    response = _inbound(client)
    assert_switched_off(response, "Inbound email is paused")
    assert response.mimetype == "application/problem+json"
    assert response.json is not None
    assert (response.json["status"], response.json["flag"]) == (503, "inbound_email")
    assert count(session, InboundMessage) == 0
    switch(inbound_app, session, "inbound_email", True)
    response = _inbound(client)
    assert response.status_code == 202, text(response)
    assert count(session, InboundMessage) == 1


# --- API writes -----------------------------------------------------------------------------


@pytest.fixture
def api(app: Flask, session: Session, world) -> dict[str, str]:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    with tenant_scope(session, alpha["org"].id):
        _token, plaintext = api_tokens.create_token(session, alpha["agent"], "flag tests")
    return {"Authorization": f"Bearer {plaintext}"}


WRITES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/api/v1/orgs/alpha/tickets",
        {"subject": "s", "body": "b", "requester_email": "r@x.test"},
    ),
    ("PATCH", "/api/v1/orgs/alpha/tickets/1", {"priority": "urgent"}),
    ("POST", "/api/v1/orgs/alpha/tickets/1/comments", {"body": "hello"}),
    ("DELETE", "/api/v1/orgs/alpha/views/1", {}),
]


def test_api_writes_answer_503_while_reads_work(
    app: Flask, session: Session, client: FlaskClient, api: dict[str, str]
) -> None:
    switch(app, session, "api_writes", False, "abuse")
    for method, url, body in WRITES:
        response = client.open(url, method=method, json=body, headers=api)
        assert_switched_off(response, "Changes through the API are switched off")
        assert response.mimetype == "application/problem+json", (method, url)
        assert response.json is not None and response.json["flag"] == "api_writes"
    assert count(session, Ticket) == 1
    for url in (
        "/api/v1/orgs/alpha/tickets",
        "/api/v1/orgs/alpha/tickets/1",
        "/api/v1/openapi.json",
    ):
        assert client.get(url, headers=api).status_code == 200, url
    assert client.head("/api/v1/orgs/alpha/tickets", headers=api).status_code == 200
    switch(app, session, "api_writes", True)
    method, url, body = WRITES[0]
    assert client.open(url, method=method, json=body, headers=api).status_code == 201
    assert count(session, Ticket) == 2


def test_a_switched_off_api_still_checks_the_token_first(
    app: Flask, session: Session, client: FlaskClient, api: dict[str, str]
) -> None:
    switch(app, session, "api_writes", False)
    method, url, body = WRITES[0]
    assert client.open(url, method=method, json=body).status_code == 401
    other = client.open(url.replace("alpha", "beta"), method=method, json=body, headers=api)
    assert other.status_code == 404
