"""API authentication and the org gate: 401 for bad tokens, 404 across orgs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from helpdesk.db import utcnow
from helpdesk.models import ApiToken, Comment, Role, Ticket
from helpdesk.services import api_tokens, orgs
from helpdesk.tenancy import tenant_scope, unscoped
from tests.factories import make_ticket

TICKETS = "/api/v1/orgs/{slug}/tickets"


def bearer(session, member, **kwargs) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "test token", **kwargs)
    return {"Authorization": f"Bearer {plaintext}"}


def assert_unauthorized(response) -> None:
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="helpdesk"')
    assert response.json["status"] == 401
    assert response.json["detail"]


def test_missing_token_is_401_with_challenge(client, world):
    response = client.get(TICKETS.format(slug="alpha"))
    assert_unauthorized(response)
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="helpdesk"'
    assert "Authorization" in response.json["detail"]


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "Bearer a b",
        "Token hdk_x",
        "hdk_abc",
        "Bearer <>",
    ],
)
def test_malformed_header_is_401(client, world, header):
    response = client.get(TICKETS.format(slug="alpha"), headers={"Authorization": header})
    assert_unauthorized(response)
    assert "Bearer <token>" in response.json["detail"]


@pytest.mark.parametrize("token", ["hdk_" + "A" * 43, "not-a-hdk-token", "hdk_" + "a" * 200])
def test_unknown_token_is_401(client, world, token):
    response = client.get(
        TICKETS.format(slug="alpha"), headers={"Authorization": f"Bearer {token}"}
    )
    assert_unauthorized(response)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_revoked_token_is_401(client, session, world):
    agent = world["alpha"]["agent"]
    headers = bearer(session, agent)
    assert client.get(TICKETS.format(slug="alpha"), headers=headers).status_code == 200
    with tenant_scope(session, agent.org_id):
        token = api_tokens.list_tokens(session, agent)[0]
        api_tokens.revoke_token(session, agent, token.id)
    assert_unauthorized(client.get(TICKETS.format(slug="alpha"), headers=headers))


def test_expired_token_is_401(client, session, world):
    headers = bearer(session, world["alpha"]["agent"], expires_at=utcnow() - timedelta(seconds=1))
    response = client.get(TICKETS.format(slug="alpha"), headers=headers)
    assert_unauthorized(response)
    assert "expired" in response.json["detail"]


def test_token_of_deactivated_user_is_401(client, session, world):
    agent = world["alpha"]["agent"]
    headers = bearer(session, agent)
    agent.user.active = False
    session.commit()
    response = client.get(TICKETS.format(slug="alpha"), headers=headers)
    assert_unauthorized(response)
    assert "deactivated" in response.json["detail"]


def test_session_cookie_is_not_accepted(client, world):
    agent = world["alpha"]["agent"]
    with client.session_transaction() as cookie_session:
        cookie_session["_user_id"] = agent.user.get_id()
        cookie_session["_fresh"] = True
    assert_unauthorized(client.get(TICKETS.format(slug="alpha")))


def test_valid_token_is_accepted_and_use_recorded(client, session, world):
    agent = world["alpha"]["agent"]
    response = client.get(TICKETS.format(slug="alpha"), headers=bearer(session, agent))
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    session.expire_all()
    with unscoped(session):
        token = session.scalars(select(ApiToken)).one()
    assert token.last_used_at is not None


def test_bad_token_is_401_even_for_another_orgs_slug(client, world):
    response = client.get(TICKETS.format(slug="beta"), headers={"Authorization": "Bearer hdk_x"})
    assert_unauthorized(response)


@pytest.mark.parametrize("slug", ["beta", "gamma", "Alpha", "a" * 100])
def test_other_or_unknown_org_is_404_with_one_answer(client, session, world, slug):
    headers = bearer(session, world["alpha"]["admin"])
    response = client.get(TICKETS.format(slug=slug), headers=headers)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    unknown = client.get(TICKETS.format(slug="no-such-org"), headers=headers)
    assert response.json == unknown.json


def test_token_is_bound_to_its_org_even_for_members_of_both(client, session, world):
    agent = world["alpha"]["agent"]
    beta_member = orgs.ensure_member(session, world["beta"]["org"], agent.user, Role.AGENT)
    session.commit()
    make_ticket(session, world["beta"]["org"], world["beta"]["agent"])
    alpha_headers = bearer(session, agent)
    assert client.get(TICKETS.format(slug="beta"), headers=alpha_headers).status_code == 404
    assert client.get(TICKETS.format(slug="beta") + "/1", headers=alpha_headers).status_code == 404
    beta_headers = bearer(session, beta_member)
    response = client.get(TICKETS.format(slug="beta"), headers=beta_headers)
    assert response.status_code == 200
    assert [t["number"] for t in response.json["items"]] == [1]


def test_another_orgs_ticket_numbers_are_404(client, session, world):
    alpha, beta = world["alpha"], world["beta"]
    make_ticket(session, alpha["org"], alpha["agent"])
    for _ in range(3):
        make_ticket(session, beta["org"], beta["agent"], subject="Beta only")
    headers = bearer(session, alpha["admin"])
    base = TICKETS.format(slug="alpha")
    assert client.get(f"{base}/1", headers=headers).status_code == 200
    for number in (2, 3):
        assert client.get(f"{base}/{number}", headers=headers).status_code == 404
        assert client.get(f"{base}/{number}/comments", headers=headers).status_code == 404
        patched = client.patch(f"{base}/{number}", json={"status": "closed"}, headers=headers)
        assert patched.status_code == 404
        posted = client.post(f"{base}/{number}/comments", json={"body": "hi"}, headers=headers)
        assert posted.status_code == 404
        assert posted.mimetype == "application/problem+json"
    session.expire_all()
    with tenant_scope(session, beta["org"].id):
        assert {t.status for t in session.scalars(select(Ticket))} == {"new"}
        assert len(session.scalars(select(Comment)).all()) == 3


def test_openapi_needs_no_token(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.json["openapi"].startswith("3.1")


def test_unknown_method_is_problem_json(client, session, world):
    headers = bearer(session, world["alpha"]["agent"])
    response = client.delete(TICKETS.format(slug="alpha") + "/1", headers=headers)
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
