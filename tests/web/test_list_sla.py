"""The list's SLA filter, the "due" sort, the Breaching soon view and capped view counters."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Ticket
from helpdesk.services import views
from helpdesk.tenancy import tenant_scope
from tests.browser import Browser
from tests.factories import make_ticket


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<tr id="ticket-(\d+)"', html)]


@pytest.fixture
def sla_tickets(session: Session, world) -> None:
    """#1 warning due in 1 h, #2 warning due in 30 min, #3 breached, #4 no SLA; beta has one too."""
    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    now = utcnow()
    states = {1: ("warning", 60), 2: ("warning", 30), 3: ("breached", -60), 4: (None, None)}
    for _ in states:
        make_ticket(session, org, member)
    with tenant_scope(session, org.id):
        for number, (state, minutes) in states.items():
            due = None if minutes is None else now + timedelta(minutes=minutes)
            session.execute(
                update(Ticket)
                .where(Ticket.number == number)
                .values(sla_state=state, sla_due_at=due, status="open")
            )
        session.commit()
    beta = world["beta"]
    make_ticket(session, beta["org"], beta["agent"])
    with tenant_scope(session, beta["org"].id):
        session.execute(update(Ticket).values(sla_state="warning", sla_due_at=now))
        session.commit()


@pytest.mark.usefixtures("sla_tickets")
def test_sla_state_filter(agent: Browser) -> None:
    assert sorted(numbers(agent.get("/o/alpha/tickets?sla=warning").get_data(as_text=True))) == [
        1,
        2,
    ]
    assert numbers(agent.get("/o/alpha/tickets?sla=breached").get_data(as_text=True)) == [3]
    assert numbers(agent.get("/o/alpha/tickets?sla=none").get_data(as_text=True)) == [4]
    bad = agent.get("/o/alpha/tickets?sla=late")
    assert bad.status_code == 422
    assert "choose one of: ok, warning, breached, none" in bad.get_data(as_text=True)


@pytest.mark.usefixtures("sla_tickets")
def test_due_sort_pages_soonest_first_and_skips_tickets_without_sla(
    app: Flask, agent: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PAGE_SIZE", 1)
    seen: list[int] = []
    url: str | None = "/o/alpha/tickets?sort=due"
    while url:
        html = agent.get(url).get_data(as_text=True)
        seen += numbers(html)
        match = re.search(r'<a href="([^"]+)" hx-get="[^"]+"[^>]*>Next page', html)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert seen == [3, 2, 1]


@pytest.mark.usefixtures("sla_tickets")
def test_breaching_soon_view_and_row_badges(agent: Browser) -> None:
    html = agent.get("/o/alpha/tickets").get_data(as_text=True)
    link = re.search(r'href="([^"]+)"[^>]*>Breaching soon', html)
    assert link is not None
    soon = agent.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert numbers(soon) == [2, 1]
    assert soon.count('class="badge sla-warning"') == 2
    assert 'aria-current="page">Breaching soon' in soon


def test_view_counters_are_capped(
    agent: Browser, session: Session, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    for _ in range(3):
        make_ticket(session, org, member)
    monkeypatch.setattr(views, "COUNT_CAP", 2)
    html = agent.get("/o/alpha/tickets").get_data(as_text=True)
    assert re.search(r'>All open\s*<span class="count">2\+</span>', html)
    assert re.search(r'>My open\s*<span class="count">0</span>', html)
    fragment = agent.get("/o/alpha/tickets", headers={"HX-Request": "true"})
    assert 'class="count"' not in fragment.get_data(as_text=True)  # rows only: no counting
