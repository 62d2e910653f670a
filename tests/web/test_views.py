"""Saved views: built-ins, personal views, admin-shared views, and their errors."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services import api_tokens, tickets
from helpdesk.tenancy import tenant_scope
from tests.browser import as_user
from tests.factories import make_ticket


def view_links(html: str) -> list[tuple[str, str]]:
    """(name, counter) of every view link in the views nav."""
    nav = html.split('<nav class="views"', 1)[1].split("</nav>", 1)[0]
    found = re.findall(r'>([^<>]+?)\s*(?:<span class="count">([^<]*)</span>)?</a>', nav)
    return [(name.strip(), count) for name, count in found]


def view_names(html: str) -> list[str]:
    return [name for name, _count in view_links(html)]


def test_built_in_all_open_view(app: Flask, session: Session, world, password) -> None:
    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    for status in ("new", "pending", "solved", "closed"):
        ticket = make_ticket(session, org, agent, subject=f"T {status}")
        with tenant_scope(session, org.id):
            tickets.update_fields(session, agent, ticket.number, {"status": status})
    browser = as_user(app, "agent@alpha.test", password)
    html = browser.get("/o/alpha/tickets").get_data(as_text=True)
    assert view_links(html) == [
        ("My open", "0"), ("Unassigned", "2"), ("All open", "2"), ("Breaching soon", "0"),
    ]  # fmt: skip
    open_list = browser.get("/o/alpha/tickets?status=all_open").get_data(as_text=True)
    assert re.findall(r"T (\w+)", open_list) == ["pending", "new"]
    assert 'aria-current="page">All open' in open_list


def test_personal_and_shared_views(app: Flask, world, password) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    saved = agent.post(
        "/o/alpha/tickets/views", {"name": "Urgent ones", "filter_priority": "urgent"}
    )
    assert saved.status_code == 303 and saved.headers["Location"].endswith("?priority=urgent")
    assert "Urgent ones" in view_names(agent.get("/o/alpha/tickets").get_data(as_text=True))
    admin = as_user(app, "admin@alpha.test", password)
    assert "Urgent ones" not in view_names(admin.get("/o/alpha/tickets").get_data(as_text=True))
    shared = admin.post("/o/alpha/tickets/views",
                        {"name": "Billing", "filter_q": "invoice", "shared": "1"})  # fmt: skip
    assert shared.status_code == 303
    assert "Billing" in view_names(agent.get("/o/alpha/tickets").get_data(as_text=True))
    # Agents can neither share views nor delete shared ones.
    refused = agent.post("/o/alpha/tickets/views",
                         {"name": "Mine for all", "filter_q": "x", "shared": "1"})  # fmt: skip
    assert refused.status_code == 403
    beta_agent = as_user(app, "agent@beta.test", password)
    assert "Billing" not in view_names(beta_agent.get("/o/beta/tickets").get_data(as_text=True))


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "filter_q": "x"}, "name the view"),
        ({"name": "x" * 61, "filter_q": "x"}, "name the view"),
        ({"name": "Nothing"}, "set at least one filter"),
        ({"name": "Bad", "filter_status": "exploded"}, "choose one of"),
        ({"name": "My open", "filter_q": "x"}, None),  # built-in names are not reserved
    ],
)
def test_view_errors_keep_the_list(app: Flask, world, password, form, message) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    response = agent.post("/o/alpha/tickets/views", form)
    if message is None:
        assert response.status_code == 303
        return
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and 'id="ticket-list"' in html


def test_duplicate_names_and_deleting(app: Flask, world, password) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    agent.post("/o/alpha/tickets/views", {"name": "Mine", "filter_q": "x"})
    dup = agent.post("/o/alpha/tickets/views", {"name": "MINE", "filter_q": "y"})
    assert dup.status_code == 422 and "already a view called" in dup.get_data(as_text=True)
    html = agent.get("/o/alpha/tickets").get_data(as_text=True)
    view_id = re.search(r"/tickets/views/(\d+)/delete", html).group(1)  # type: ignore[union-attr]
    requester = as_user(app, "requester@alpha.test", password)
    assert requester.post(f"/o/alpha/tickets/views/{view_id}/delete").status_code == 404
    assert agent.post(f"/o/alpha/tickets/views/{view_id}/delete").status_code == 303
    assert "Mine" not in view_names(agent.get("/o/alpha/tickets").get_data(as_text=True))


def test_views_api(app: Flask, session: Session, world) -> None:
    with tenant_scope(session, world["alpha"]["org"].id):
        _t, agent_token = api_tokens.create_token(session, world["alpha"]["agent"], "v")
        _t, requester_token = api_tokens.create_token(session, world["alpha"]["requester"], "v")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {agent_token}"}
    url = "/api/v1/orgs/alpha/views"
    created = client.post(url, json={"name": "Hot", "filters": {"priority": "urgent"}},
                          headers=headers)  # fmt: skip
    assert created.status_code == 201 and created.json["shared"] is False
    listed = client.get(url, headers=headers).json["items"]
    assert [v["name"] for v in listed] == [
        "My open", "Unassigned", "All open", "Breaching soon", "Hot",
    ]  # fmt: skip
    assert listed[0]["id"] is None and listed[4]["filters"] == {"priority": "urgent"}
    bad = client.post(url, json={"name": "X", "filters": {"sort": "password"}}, headers=headers)
    assert bad.status_code == 422 and "sort" in bad.json["errors"]
    shared = client.post(url, json={"name": "S", "filters": {"q": "a"}, "shared": True},
                         headers=headers)  # fmt: skip
    assert shared.status_code == 403
    customer = {"Authorization": f"Bearer {requester_token}"}
    assert client.get(url, headers=customer).json["items"] == []
    view_url = f"{url}/{created.json['id']}"
    assert client.delete(view_url, headers=customer).status_code == 404
    assert client.delete(view_url, headers=headers).status_code == 204
    assert client.delete(view_url, headers=headers).status_code == 404
