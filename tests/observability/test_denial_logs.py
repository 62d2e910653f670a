"""Denials outside the web org gate are logged too: API 401/404 and the requester pages."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope
from tests.browser import as_user
from tests.factories import make_ticket
from tests.observability.conftest import CapturedLines


def test_api_rejections_and_other_org_404s_are_logged_without_the_token(
    app: Flask, session: Session, world: dict[str, Any], log_lines: CapturedLines
) -> None:
    member = world["alpha"]["agent"]
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "log test")
    client = app.test_client()
    good = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/orgs/beta/tickets", headers=good).status_code == 404
    assert client.get("/api/v1/orgs/alpha/tickets").status_code == 401
    bad = {"Authorization": "Bearer not-a-real-token-value"}
    assert client.get("/api/v1/orgs/alpha/tickets", headers=bad).status_code == 401
    denied = log_lines.events("tenancy.denied")
    assert [(d["route"], d["user_id"]) for d in denied] == [
        ("/api/v1/orgs/<org_slug>/tickets", member.user_id)
    ]
    rejected = log_lines.events("auth.token_rejected")
    assert [r["reason"] for r in rejected] == ["missing", "invalid_token"]
    assert plaintext not in log_lines.text and "not-a-real-token-value" not in log_lines.text


def test_a_requester_page_of_someone_elses_ticket_is_logged_as_denied(
    app: Flask, session: Session, world: dict[str, Any], password: str, log_lines: CapturedLines
) -> None:
    alpha = world["alpha"]
    ticket = make_ticket(session, alpha["org"], alpha["agent"], "someone-else@alpha.test")
    requester = as_user(app, "requester@alpha.test", password)
    assert requester.get(f"/r/alpha/{ticket.number}").status_code == 404
    denied = log_lines.events("tenancy.denied")
    assert [d["route"] for d in denied] == ["/r/<org_slug>/<int:number>"]
