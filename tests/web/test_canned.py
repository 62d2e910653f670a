"""Canned replies: org-wide, placeholders from an allow-list, never a template."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy.orm import Session

from tests.browser import as_user
from tests.factories import make_ticket


def test_insert_fills_placeholders_and_keeps_the_draft(
    app: Flask, session: Session, world, password
) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"],
                world["alpha"]["requester"].user, subject="VPN down")  # fmt: skip
    agent = as_user(app, "agent@alpha.test", password)
    body = "Hi {requester_name}, about #{ticket_number} ({ticket_subject}): {{7*7}} {unknown"
    created = agent.post("/o/alpha/canned", {"title": "Greeting", "body": body})
    assert created.status_code == 303
    page = agent.get("/o/alpha/tickets/1").get_data(as_text=True)
    canned_id = re.search(r'<option value="(\d+)">Greeting</option>', page).group(1)  # type: ignore[union-attr]
    filled = agent.post("/o/alpha/tickets/1/canned",
                        {"canned_id": canned_id, "body": "Draft first."}, htmx=True)  # fmt: skip
    html = filled.get_data(as_text=True)
    assert filled.status_code == 200 and html.startswith('<textarea id="reply-body"')
    assert "Draft first.\n\nHi Requester, about #1 (VPN down): {{7*7}} {unknown" in html


def test_unknown_placeholder_and_duplicates_are_refused(app: Flask, world, password) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    bad = agent.post("/o/alpha/canned", {"title": "X", "body": "Hello {password}"})
    assert bad.status_code == 422 and "unknown placeholder {password}" in bad.get_data(
        as_text=True)  # fmt: skip
    agent.post("/o/alpha/canned", {"title": "Thanks", "body": "Thanks!"})
    dup = agent.post("/o/alpha/canned", {"title": "THANKS", "body": "Again"})
    assert dup.status_code == 422 and "already a canned reply" in dup.get_data(as_text=True)


def test_only_the_author_or_an_admin_deletes(app: Flask, world, password) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    agent.post("/o/alpha/canned", {"title": "Mine", "body": "text"})
    page = agent.get("/o/alpha/canned").get_data(as_text=True)
    canned_id = re.search(r"/canned/(\d+)/delete", page).group(1)  # type: ignore[union-attr]
    admin = as_user(app, "admin@alpha.test", password)
    admin.post("/o/alpha/canned", {"title": "Admin's", "body": "text"})
    admin_page = admin.get("/o/alpha/canned").get_data(as_text=True)
    admin_id = max(int(i) for i in re.findall(r"/canned/(\d+)/delete", admin_page))
    assert agent.post(f"/o/alpha/canned/{admin_id}/delete").status_code == 403
    requester = as_user(app, "requester@alpha.test", password)
    assert "Mine" not in requester.get("/o/alpha/canned").get_data(as_text=True)
    assert requester.post(f"/o/alpha/canned/{canned_id}/delete").status_code == 404
    beta = as_user(app, "agent@beta.test", password)
    assert beta.post(f"/o/beta/canned/{canned_id}/delete").status_code == 404
    assert admin.post(f"/o/alpha/canned/{canned_id}/delete").status_code == 303


def test_canned_replies_api(app: Flask, session: Session, world) -> None:
    from helpdesk.services import api_tokens
    from helpdesk.tenancy import tenant_scope

    org = world["alpha"]["org"]
    make_ticket(session, org, world["alpha"]["agent"], world["alpha"]["requester"].user)
    with tenant_scope(session, org.id):
        _t, agent_token = api_tokens.create_token(session, world["alpha"]["agent"], "c")
        _t, requester_token = api_tokens.create_token(session, world["alpha"]["requester"], "c")
    client, headers = app.test_client(), {"Authorization": f"Bearer {agent_token}"}
    base = "/api/v1/orgs/alpha"
    body = {"title": "Hello", "body": "Hi {requester_name} (#{ticket_number})"}
    created = client.post(f"{base}/canned-replies", headers=headers, json=body)
    assert created.status_code == 201
    cid = created.json["id"]
    assert [c["title"] for c in client.get(f"{base}/canned-replies", headers=headers).json[
        "items"]] == ["Hello"]  # fmt: skip
    filled = client.get(f"{base}/tickets/1/canned-replies/{cid}", headers=headers)
    assert filled.json == {"body": "Hi Requester (#1)"}
    bad = client.post(f"{base}/canned-replies", headers=headers,
                      json={"title": "X", "body": "{secret}"})  # fmt: skip
    assert bad.status_code == 422 and "body" in bad.json["errors"]
    customer = {"Authorization": f"Bearer {requester_token}"}
    assert client.get(f"{base}/canned-replies", headers=customer).json["items"] == []
    assert client.get(f"{base}/tickets/1/canned-replies/{cid}", headers=customer).status_code == 403
    assert client.delete(f"{base}/canned-replies/{cid}", headers=customer).status_code == 404
    assert client.delete(f"{base}/canned-replies/{cid}", headers=headers).status_code == 204
