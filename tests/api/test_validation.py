"""Bad input gets 415/422 problem+json naming the fields at fault, and writes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from helpdesk.models import Comment, Ticket, TicketEvent, User
from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope, unscoped
from tests.factories import make_ticket

BASE = "/api/v1/orgs/alpha/tickets"


def bearer(session, member) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "test token")
    return {"Authorization": f"Bearer {plaintext}"}


def row_counts(session) -> dict[str, int]:
    session.expire_all()
    with unscoped(session):
        return {
            model.__name__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Ticket, Comment, TicketEvent, User)
        }


@pytest.fixture
def agent_headers(session, world):
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], subject="Existing")
    return bearer(session, alpha["agent"])


def assert_invalid(response, *fields: str) -> None:
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert response.json["status"] == 422
    assert set(response.json["errors"]) == set(fields)
    assert all(response.json["errors"].values())


NEW = {"subject": "Hello", "body": "World", "requester_email": "someone@example.test"}


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"subject": "x" * 201}, {"subject"}),
        ({"subject": "   "}, {"subject"}),
        ({"body": ""}, {"body"}),
        ({"body": " \n\t "}, {"body"}),
        ({"priority": "critical"}, {"priority"}),
        ({"priority": ""}, {"priority"}),
        ({"requester_email": "not-an-email"}, {"requester_email"}),
        ({"requester_email": "a@b@example.test"}, {"requester_email"}),
        ({"requester_email": ""}, {"requester_email"}),
        ({"subject": 5, "body": ["x"]}, {"subject", "body"}),
        ({"requester_name": None}, {"requester_name"}),
        ({"org_id": 2, "status": "closed"}, {"org_id", "status"}),
        ({"subject": "", "body": "", "priority": "high"}, {"subject", "body"}),
        ({"subject": "", "body": 1, "priority": "x"}, {"body", "priority"}),
    ],
)
def test_create_ticket_rejects(client, session, agent_headers, change, fields):
    before = row_counts(session)
    response = client.post(BASE, json={**NEW, **change}, headers=agent_headers)
    assert_invalid(response, *fields)
    assert row_counts(session) == before


def test_agent_must_name_the_requester(client, session, agent_headers):
    before = row_counts(session)
    response = client.post(BASE, json={"subject": "a", "body": "b"}, headers=agent_headers)
    assert_invalid(response, "requester_email")
    assert row_counts(session) == before


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"assignee_email": "agent@beta.test"}, {"assignee_email"}),
        ({"assignee_email": "requester@alpha.test"}, {"assignee_email"}),
        ({"assignee_email": 7}, {"assignee_email"}),
        ({"status": "done"}, {"status"}),
        ({"priority": None}, {"priority"}),
        ({"tags": "a,b"}, {"tags"}),
        ({"tags": ["ok", 3]}, {"tags"}),
        ({"tags": ["<script>"]}, {"tags"}),
        ({"subject": "renamed"}, {"subject"}),
        ({"status": "open", "requester_id": 1}, {"requester_id"}),
        ({"status": "open", "assignee_email": "agent@beta.test"}, {"assignee_email"}),
    ],
)
def test_patch_rejects(client, session, agent_headers, change, fields):
    before = row_counts(session)
    response = client.patch(f"{BASE}/1", json=change, headers=agent_headers)
    assert_invalid(response, *fields)
    assert row_counts(session) == before
    ticket = client.get(f"{BASE}/1", headers=agent_headers).json
    assert (ticket["status"], ticket["assignee"], ticket["tags"]) == ("new", None, [])


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"body": "x", "internal": "yes"}, {"internal"}),
        ({"body": "x", "internal": 1}, {"internal"}),
        ({"body": "x", "internal": None}, {"internal"}),
        ({"body": ""}, {"body"}),
        ({}, {"body"}),
        ({"body": "x", "status": "later"}, {"status"}),
        ({"body": "x", "status": ""}, {"status"}),
        ({"body": "x", "channel": "email"}, {"channel"}),
        ({"body": "x" * 50_001}, {"body"}),
    ],
)
def test_comment_rejects(client, session, agent_headers, body, fields):
    before = row_counts(session)
    response = client.post(f"{BASE}/1/comments", json=body, headers=agent_headers)
    assert_invalid(response, *fields)
    assert row_counts(session) == before


@pytest.mark.parametrize("number", ["abc", "0", "-1", "1.5", "1e3", "%EF%BC%91", "9999999999"])
def test_non_numeric_number_is_422(client, agent_headers, number):
    for response in (
        client.get(f"{BASE}/{number}", headers=agent_headers),
        client.get(f"{BASE}/{number}/comments", headers=agent_headers),
        client.patch(f"{BASE}/{number}", json={"status": "open"}, headers=agent_headers),
        client.post(f"{BASE}/{number}/comments", json={"body": "x"}, headers=agent_headers),
    ):
        assert_invalid(response, "number")


def test_non_numeric_number_in_another_org_is_404(client, agent_headers):
    response = client.get("/api/v1/orgs/beta/tickets/abc", headers=agent_headers)
    assert response.status_code == 404


def test_missing_ticket_is_404(client, agent_headers):
    response = client.get(f"{BASE}/2", headers=agent_headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("cursor=bm90LWEtY3Vyc29y", {"cursor"}),
        ("cursor=%%%", {"cursor"}),
        ("limit=0", {"limit"}),
        ("limit=101", {"limit"}),
        ("limit=ten", {"limit"}),
        ("limit=-5", {"limit"}),
        ("sort=password_hash", {"sort"}),
        ("status=open&requester_id=1", {"requester_id"}),
        ("status=open&status=new", {"status"}),
        ("status=bogus&priority=bogus&limit=0", {"status", "priority", "limit"}),
        ("assignee=42", {"assignee"}),
        ("assignee=nobody@alpha.test", {"assignee"}),
    ],
)
def test_list_rejects(client, agent_headers, query, fields):
    response = client.get(f"{BASE}?{query}", headers=agent_headers)
    assert_invalid(response, *fields)


def test_unknown_parameter_lists_the_allowed_ones(client, agent_headers):
    response = client.get(f"{BASE}?order_by=password_hash", headers=agent_headers)
    assert response.json["errors"]["order_by"] == (
        "unknown parameter; allowed: assignee, created_after, created_before, cursor, limit, "
        "priority, q, requester, sla, sort, status, tag, updated_after, updated_before"
    )


def test_sort_keys_are_allow_listed(client, agent_headers):
    """A peer let ?sort= name any column (even a password hash): here only named orders."""
    for value in ("id", "password_hash", "users.password_hash", "updated_at desc"):
        response = client.get(f"{BASE}?sort={value}", headers=agent_headers)
        assert response.status_code == 422
        assert response.json["errors"]["sort"] == (
            "choose one of: updated, created, oldest, priority, due"
        )


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_non_json_content_type_is_415(client, session, agent_headers, content_type):
    before = row_counts(session)
    headers = dict(agent_headers)
    if content_type:
        headers["Content-Type"] = content_type
    data = '{"subject": "a", "body": "b", "requester_email": "x@example.test"}'
    for response in (
        client.post(BASE, data=data, headers=headers),
        client.patch(f"{BASE}/1", data='{"status": "open"}', headers=headers),
        client.post(f"{BASE}/1/comments", data='{"body": "x"}', headers=headers),
    ):
        assert response.status_code == 415
        assert response.mimetype == "application/problem+json"
        assert "application/json" in response.json["detail"]
    assert row_counts(session) == before


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        ('{"body": ', "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('"text"', "JSON object"),
        ("null", "JSON object"),
    ],
)
def test_malformed_json_is_422(client, session, agent_headers, data, detail):
    before = row_counts(session)
    headers = {**agent_headers, "Content-Type": "application/json"}
    response = client.post(f"{BASE}/1/comments", data=data, headers=headers)
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert detail in response.json["detail"]
    assert row_counts(session) == before
