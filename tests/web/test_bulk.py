"""Bulk changes from the list and the API: all listed tickets change, or none do."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Ticket, TicketEvent
from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser
from tests.factories import make_ticket


@pytest.fixture
def three(session: Session, world) -> None:
    """Alpha #1-#2, beta #1-#3 (so #3 exists only in beta)."""
    for slug, count in (("alpha", 2), ("beta", 3)):
        for _ in range(count):
            make_ticket(session, world[slug]["org"], world[slug]["agent"])


def state(session: Session) -> list[tuple[int, int, str, str, int | None, list[str]]]:
    session.expire_all()
    with unscoped(session):
        rows = session.execute(
            select(Ticket.org_id, Ticket.number, Ticket.status, Ticket.priority,
                   Ticket.assignee_id, Ticket.tags).order_by(Ticket.org_id, Ticket.number)
        ).all()  # fmt: skip
    return [tuple(r) for r in rows]  # type: ignore[misc]


def event_count(session: Session) -> int:
    with unscoped(session):
        return session.scalar(select(func.count()).select_from(TicketEvent)) or 0


@pytest.fixture
def agent(browser: Browser, world, password, three) -> Browser:
    browser.login("agent@alpha.test", password)
    return browser


def test_bulk_form_changes_every_selected_ticket(agent: Browser, session: Session, world) -> None:
    form = {"tickets": ["1", "2"], "priority": "urgent", "assignee_email": "admin@alpha.test",
            "add_tags": "vip billing", "next": "/o/alpha/tickets?status=new"}  # fmt: skip
    response = agent.post("/o/alpha/tickets/bulk", form)
    assert response.status_code == 303
    assert response.headers["Location"] == "/o/alpha/tickets?status=new"
    alpha = world["alpha"]["org"].id
    admin = world["alpha"]["admin"].user_id
    rows = [r for r in state(session) if r[0] == alpha]
    assert [(r[3], r[4], r[5]) for r in rows] == [("urgent", admin, ["vip", "billing"])] * 2
    assert event_count(session) == 6  # three fields on each of two tickets


def test_bulk_over_htmx_swaps_the_changed_rows_out_of_band(agent: Browser, session) -> None:
    response = agent.post("/o/alpha/tickets/bulk",
                          {"tickets": ["2"], "status": "pending"}, htmx=True)  # fmt: skip
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in html
    assert '<template><tr id="ticket-2" hx-swap-oob="true">' in html
    assert "pending" in html and 'id="ticket-1"' not in html
    assert response.headers["HX-Trigger"] == '{"toast": "Updated 1 ticket"}'


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        (
            {"tickets": ["1", "3"], "priority": "high"},
            "tickets",
            "not found in this organization: #3",
        ),
        ({"priority": "high"}, "tickets", "select at least one ticket"),
        ({"tickets": ["1", "x"], "priority": "high"}, "tickets", "ticket numbers only"),
        ({"tickets": ["1"]}, "changes", "choose at least one change"),
        ({"tickets": ["1"], "status": "exploded"}, "status", "choose one of"),
        ({"tickets": ["1"], "assignee_email": "agent@beta.test"}, "assignee_email", "no agent"),
        ({"tickets": ["1"], "add_tags": "<b>"}, "add_tags", "tags are"),
        ({"tickets": [str(n) for n in range(1, 102)], "priority": "low"}, "tickets", "at most 100"),
    ],
)
def test_bulk_errors_change_nothing(
    agent: Browser, session: Session, form, field: str, message: str
) -> None:
    before, events = state(session), event_count(session)
    for htmx in (False, True):
        response = agent.post("/o/alpha/tickets/bulk", form, htmx=htmx)
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert message in html and "Nothing was changed" in html
    assert state(session) == before and event_count(session) == events


def test_tag_edits_are_relative_and_bounded(agent: Browser, session: Session, world) -> None:
    agent.post("/o/alpha/tickets/bulk", {"tickets": ["1"], "add_tags": "a b c"})
    agent.post("/o/alpha/tickets/bulk",
               {"tickets": ["1", "2"], "add_tags": "d", "remove_tags": "b d"})  # fmt: skip
    alpha = world["alpha"]["org"].id
    assert [r[5] for r in state(session) if r[0] == alpha] == [["a", "c"], []]
    many = " ".join(f"t{i}" for i in range(19))
    too_many = agent.post("/o/alpha/tickets/bulk", {"tickets": ["1", "2"], "add_tags": many})
    assert too_many.status_code == 422 and "more than 20 tags" in too_many.get_data(as_text=True)
    assert [r[5] for r in state(session) if r[0] == alpha] == [["a", "c"], []]


def test_requesters_cannot_bulk_change(app: Flask, session: Session, world, password, three):
    customer = Browser(app.test_client())
    customer.login("requester@alpha.test", password)
    before = state(session)
    response = customer.post("/o/alpha/tickets/bulk", {"tickets": ["1"], "priority": "low"})
    assert response.status_code == 403
    assert state(session) == before


def _token(session: Session, world, role: str) -> dict[str, str]:
    with tenant_scope(session, world["alpha"]["org"].id):
        _row, plaintext = api_tokens.create_token(session, world["alpha"][role], "bulk")
    return {"Authorization": f"Bearer {plaintext}"}


def test_api_bulk_update(app: Flask, session: Session, world, three) -> None:
    client, headers = app.test_client(), _token(session, world, "agent")
    url = "/api/v1/orgs/alpha/tickets/bulk"
    ok = client.post(url, json={"numbers": [1, 2], "status": "solved", "add_tags": ["x"]},
                     headers=headers)  # fmt: skip
    assert ok.status_code == 200
    assert [t["status"] for t in ok.json["items"]] == ["solved", "solved"]
    assert ok.json["changes"] == 4
    before = state(session)
    for body, field in (
        ({"numbers": [1, 3], "priority": "low"}, "tickets"),
        ({"numbers": ["1"], "priority": "low"}, "numbers"),
        ({"numbers": [1], "tags": ["y"]}, "tags"),
        ({"numbers": [1]}, "changes"),
    ):
        bad = client.post(url, json=body, headers=headers)
        assert bad.status_code == 422, body
        assert field in bad.json["errors"], bad.json
    assert state(session) == before
    customer = client.post(url, json={"numbers": [1], "priority": "low"},
                           headers=_token(session, world, "requester"))  # fmt: skip
    assert customer.status_code == 403
    assert state(session) == before
