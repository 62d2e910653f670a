"""The ticket API end to end: create, read, update, comment; requesters' limits; XSS."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from helpdesk.models import Comment, TicketEvent
from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope
from tests.factories import make_ticket

BASE = "/api/v1/orgs/alpha/tickets"


def bearer(session, member) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "test token")
    return {"Authorization": f"Bearer {plaintext}"}


def events(session, org) -> list[tuple[str, str | None, str | None]]:
    session.expire_all()
    with tenant_scope(session, org.id):
        rows = session.scalars(select(TicketEvent).order_by(TicketEvent.id))
        return [(e.field, e.old_value, e.new_value) for e in rows]


def test_agent_create_get_patch_comment_flow(client, session, world):
    alpha = world["alpha"]
    headers = bearer(session, alpha["agent"])
    new = {"subject": "VPN down", "body": "Since **noon**.", "priority": "high",
           "requester_email": "Customer@Example.test", "requester_name": "Cus Tomer"}  # fmt: skip
    created = client.post(BASE, json=new, headers=headers)
    assert created.status_code == 201, created.json
    ticket = created.json
    assert created.headers["Location"] == ticket["url"] == f"http://localhost{BASE}/1"
    assert ticket["number"] == 1
    assert (ticket["subject"], ticket["status"], ticket["priority"]) == ("VPN down", "new", "high")
    assert ticket["requester"] == {"email": "customer@example.test", "name": "Cus Tomer"}
    assert ticket["assignee"] is None
    assert ticket["tags"] == []
    assert ticket["created_at"].endswith("Z")
    assert "id" not in ticket

    assert client.get(f"{BASE}/1", headers=headers).json == ticket

    change = {"status": "pending", "priority": "urgent", "assignee_email": "admin@alpha.test",
              "tags": ["vpn", "Network"]}  # fmt: skip
    patched = client.patch(f"{BASE}/1", json=change, headers=headers)
    assert patched.status_code == 200, patched.json
    assert patched.json["status"] == "pending"
    assert patched.json["priority"] == "urgent"
    assert patched.json["assignee"]["email"] == "admin@alpha.test"
    assert patched.json["tags"] == ["vpn", "network"]
    assert sorted(events(session, alpha["org"])) == [
        ("assignee", None, "admin@alpha.test"),
        ("priority", "high", "urgent"),
        ("status", "new", "pending"),
        ("tags", "", "vpn, network"),
    ]

    reply = client.post(f"{BASE}/1/comments", json={"body": "Try *again*"}, headers=headers)
    assert reply.status_code == 201, reply.json
    assert reply.json["channel"] == "api"
    assert reply.json["internal"] is False
    assert reply.json["author"] == {"email": "agent@alpha.test", "name": "Agent"}
    assert "<em>again</em>" in reply.json["body_html"]

    note = client.post(
        f"{BASE}/1/comments", json={"body": "internal", "internal": True, "status": "solved"},
        headers=headers,
    )  # fmt: skip
    assert note.status_code == 201
    assert note.json["internal"] is True
    assert client.get(f"{BASE}/1", headers=headers).json["status"] == "solved"
    assert events(session, alpha["org"])[-1] == ("status", "pending", "solved")

    thread = client.get(f"{BASE}/1/comments", headers=headers).json["items"]
    assert [c["body"] for c in thread] == ["Since **noon**.", "Try *again*", "internal"]
    assert thread[0]["channel"] == "api"
    assert "<strong>noon</strong>" in thread[0]["body_html"]


@pytest.mark.parametrize("value", [None, ""])
def test_patch_unassigns(client, session, world, value):
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"])
    headers = bearer(session, alpha["agent"])
    client.patch(f"{BASE}/1", json={"assignee_email": "agent@alpha.test"}, headers=headers)
    response = client.patch(f"{BASE}/1", json={"assignee_email": value}, headers=headers)
    assert response.status_code == 200
    assert response.json["assignee"] is None
    assert events(session, alpha["org"])[-1] == ("assignee", "agent@alpha.test", None)


def test_empty_patch_changes_nothing(client, session, world):
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"])
    response = client.patch(f"{BASE}/1", json={}, headers=bearer(session, alpha["agent"]))
    assert response.status_code == 200
    assert events(session, alpha["org"]) == []


def test_requester_sees_only_own_tickets_and_no_internal_notes(client, session, world):
    alpha = world["alpha"]
    requester = alpha["requester"]
    make_ticket(session, alpha["org"], alpha["agent"], requester=requester.user, subject="Mine")
    make_ticket(session, alpha["org"], alpha["agent"], requester="other@example.test")
    staff = bearer(session, alpha["agent"])
    client.post(f"{BASE}/1/comments", json={"body": "secret", "internal": True}, headers=staff)
    client.post(f"{BASE}/1/comments", json={"body": "public"}, headers=staff)

    headers = bearer(session, requester)
    listed = client.get(BASE, headers=headers).json
    assert [t["subject"] for t in listed["items"]] == ["Mine"]
    assert client.get(f"{BASE}/2", headers=headers).status_code == 404
    assert client.get(f"{BASE}/2/comments", headers=headers).status_code == 404
    thread = client.get(f"{BASE}/1/comments", headers=headers).json["items"]
    assert [c["body"] for c in thread] == ["It is on fire.", "public"]
    assert not any(c["internal"] for c in thread)


def test_requester_opens_ticket_for_self_only(client, session, world):
    requester = world["alpha"]["requester"]
    headers = bearer(session, requester)
    created = client.post(BASE, json={"subject": "Help", "body": "Please"}, headers=headers)
    assert created.status_code == 201, created.json
    assert created.json["requester"]["email"] == "requester@alpha.test"
    assert created.json["priority"] == "normal"
    refused = client.post(
        BASE, headers=headers,
        json={"subject": "x", "body": "y", "requester_email": "victim@example.test",
              "priority": "urgent"},
    )  # fmt: skip
    assert refused.status_code == 422
    assert set(refused.json["errors"]) == {"requester_email", "priority"}


def test_requester_cannot_patch(client, session, world):
    alpha = world["alpha"]
    requester = alpha["requester"]
    make_ticket(session, alpha["org"], alpha["agent"], requester=requester.user)
    response = client.patch(
        f"{BASE}/1", json={"status": "closed"}, headers=bearer(session, requester)
    )
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert "agents and admins" in response.json["detail"]
    assert events(session, alpha["org"]) == []


def test_requester_cannot_post_internal_note_or_set_status(client, session, world):
    alpha = world["alpha"]
    requester = alpha["requester"]
    make_ticket(session, alpha["org"], alpha["agent"], requester=requester.user)
    headers = bearer(session, requester)
    note = client.post(f"{BASE}/1/comments", json={"body": "x", "internal": True}, headers=headers)
    assert note.status_code == 422
    assert set(note.json["errors"]) == {"internal"}
    status = client.post(
        f"{BASE}/1/comments", json={"body": "x", "status": "closed"}, headers=headers
    )
    assert status.status_code == 403
    reply = client.post(f"{BASE}/1/comments", json={"body": "thanks"}, headers=headers)
    assert reply.status_code == 201
    session.expire_all()
    with tenant_scope(session, alpha["org"].id):
        assert [c.body_md for c in session.scalars(select(Comment))] == ["It is on fire.", "thanks"]


XSS = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)" onclick="alert(1)">x</a>',
    "<svg/onload=alert(1)>",
    "[x](JaVaScRiPt:alert(1))",
    "<div hx-get='/api' hx-trigger='load'>x</div>",
]


class _Elements(HTMLParser):
    """Collect every element and attribute the browser would build from the HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend((name, value or "") for name, value in attrs)


def assert_inert(html: str) -> None:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    assert set(parser.tags) <= {"p", "a", "br", "em", "strong", "code"}, html
    for name, value in parser.attrs:
        assert name in {"href", "rel", "title"}, html
        if name == "href":
            assert value.split(":", 1)[0].lower() in {"http", "https", "mailto"}, html


@pytest.mark.parametrize("body", XSS)
def test_hostile_bodies_render_inert(client, session, world, body):
    headers = bearer(session, world["alpha"]["agent"])
    created = client.post(
        BASE, json={"subject": body, "body": body, "requester_email": "r@example.test"},
        headers=headers,
    )  # fmt: skip
    assert created.status_code == 201
    assert created.json["subject"] == " ".join(body.split())
    reply = client.post(f"{BASE}/1/comments", json={"body": body}, headers=headers)
    assert reply.status_code == 201
    for comment in client.get(f"{BASE}/1/comments", headers=headers).json["items"]:
        assert comment["body"] == body
        assert_inert(comment["body_html"])
