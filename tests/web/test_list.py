"""The ticket list: filters, sorts, date ranges and keyset pages."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Ticket
from helpdesk.services import api_tokens, tickets
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser
from tests.factories import make_ticket


def test_list_filters_and_keyset_pagination(
    app: Flask, agent: Browser, world, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PAGE_SIZE", 2)
    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    for i in range(5):
        make_ticket(session, org, member, subject=f"Ticket {i}",
                    priority="urgent" if i % 2 else "low")  # fmt: skip
    seen: list[str] = []
    url: str | None = "/o/alpha/tickets"
    import re

    while url:
        html = agent.get(url).get_data(as_text=True)
        seen += re.findall(r"Ticket \d", html)
        match = re.search(r'<a href="([^"]+)" hx-get="[^"]+"[^>]*>Next page', html)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert seen == [f"Ticket {i}" for i in (4, 3, 2, 1, 0)]
    urgent = agent.get("/o/alpha/tickets?priority=urgent").get_data(as_text=True)
    assert re.findall(r"Ticket \d", urgent) == ["Ticket 3", "Ticket 1"]
    more = agent.get("/o/alpha/tickets?priority=urgent&status=new", htmx=True)
    assert "<html" not in more.get_data(as_text=True)
    bad = agent.get("/o/alpha/tickets?priority=bogus")
    assert bad.status_code == 422 and "choose one of" in bad.get_data(as_text=True)
    tampered = agent.get("/o/alpha/tickets?cursor=not-a-cursor")
    assert tampered.status_code == 422 and "page link is invalid" in tampered.get_data(
        as_text=True)  # fmt: skip


def test_tag_and_requester_filters(agent: Browser, world, session: Session, app: Flask) -> None:
    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    make_ticket(session, org, member, "dana@example.test", subject="Dana one")
    tagged = make_ticket(session, org, member, "sam@example.test", subject="Sam tagged")
    make_ticket(session, world["beta"]["org"], world["beta"]["agent"], "dana@example.test",
                subject="Dana in beta")  # fmt: skip
    with tenant_scope(session, org.id):
        tickets.update_fields(session, member, tagged.number, {"tags": "vip, billing"})
    import re

    def subjects(url: str) -> list[str]:
        return re.findall(r">((?:Dana|Sam)[^<]*)</a>", agent.get(url).get_data(as_text=True))

    assert subjects("/o/alpha/tickets?tag=vip") == ["Sam tagged"]
    assert subjects("/o/alpha/tickets?requester=Dana@Example.test") == ["Dana one"]
    assert subjects("/o/alpha/tickets?requester=nobody@example.test") == []
    bad = agent.get("/o/alpha/tickets?tag=<b>&requester=not-an-email")
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert "a tag is" in html and "requester&#39;s email" in html
    with tenant_scope(session, org.id):
        _t, token = api_tokens.create_token(session, member, "t")
    api = app.test_client().get("/api/v1/orgs/alpha/tickets?tag=billing",
                                headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    assert [t["subject"] for t in api.json["items"]] == ["Sam tagged"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("updated", [2, 4, 3, 1]),
        ("created", [4, 3, 2, 1]),
        ("oldest", [1, 2, 3, 4]),
        ("priority", [3, 1, 2, 4]),
    ],
)
def test_sorts_page_through_every_ticket_once(
    app: Flask, agent: Browser, world, session: Session, monkeypatch, sort, expected
) -> None:
    monkeypatch.setitem(app.config, "PAGE_SIZE", 1)
    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    for priority in ("high", "low", "urgent", "low"):
        make_ticket(session, org, member, priority=priority)
    with tenant_scope(session, org.id):  # touch #4, then #2: most recently updated first
        tickets.add_comment(session, member, 4, "bump", internal=True)
        tickets.add_comment(session, member, 2, "bump", internal=True)
    import re

    seen: list[int] = []
    url: str | None = f"/o/alpha/tickets?sort={sort}"
    while url:
        html = agent.get(url).get_data(as_text=True)
        seen += [int(n) for n in re.findall(r'<tr id="ticket-(\d+)"', html)]
        match = re.search(r'<a href="([^"]+)" hx-get="[^"]+"[^>]*>Next page', html)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert seen == expected
    other = agent.get(f"/o/alpha/tickets?sort=created&cursor={_cursor_for('updated')}")
    assert other.status_code == 422  # a cursor from another sort is refused


def _cursor_for(sort: str) -> str:
    from helpdesk.services.ordering import encode

    return encode([sort, "2026-01-01T00:00:00+00:00", 1])


def test_date_range_filters(agent: Browser, world, session: Session) -> None:
    from datetime import timedelta

    from helpdesk.db import utcnow

    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    old = make_ticket(session, org, member, subject="Old one")
    make_ticket(session, org, member, subject="New one")
    with unscoped(session):
        row = session.get(Ticket, old.id)
        assert row is not None
        row.created_at = row.updated_at = utcnow() - timedelta(days=40)
        session.commit()
    today = utcnow().date().isoformat()
    month_ago = (utcnow() - timedelta(days=30)).date().isoformat()
    import re

    def subjects(url: str) -> list[str]:
        return re.findall(r">((?:Old|New) one)</a>", agent.get(url).get_data(as_text=True))

    assert subjects(f"/o/alpha/tickets?created_after={month_ago}") == ["New one"]
    assert subjects(f"/o/alpha/tickets?updated_before={month_ago}") == ["Old one"]
    assert subjects(f"/o/alpha/tickets?created_after={today}&created_before={today}") == ["New one"]
    bad = agent.get("/o/alpha/tickets?created_after=yesterday")
    assert bad.status_code == 422 and "use a date like" in bad.get_data(as_text=True)


def test_first_pages_built_once_still_answer_for_each_user_and_org(
    app: Flask, world, session: Session, password: str
) -> None:
    """The first-page statements are kept per shape; whose page it is must never leak."""
    import re

    alpha, beta = world["alpha"], world["beta"]
    mine = make_ticket(session, alpha["org"], alpha["agent"], subject="Alpha for agent")
    theirs = make_ticket(session, alpha["org"], alpha["agent"], subject="Alpha for admin")
    other = make_ticket(session, beta["org"], beta["agent"], subject="Beta for agent")
    with tenant_scope(session, alpha["org"].id):
        tickets.update_fields(session, alpha["agent"], mine.number,
                              {"assignee_email": "agent@alpha.test"})  # fmt: skip
        tickets.update_fields(session, alpha["agent"], theirs.number,
                              {"assignee_email": "admin@alpha.test"})  # fmt: skip
    with tenant_scope(session, beta["org"].id):
        tickets.update_fields(session, beta["agent"], other.number,
                              {"assignee_email": "agent@beta.test"})  # fmt: skip

    def subjects(email: str, slug: str, query: str) -> list[str]:
        browser = Browser(app.test_client())
        assert browser.login(email, password).status_code == 303
        html = browser.get(f"/o/{slug}/tickets{query}", htmx=True).get_data(as_text=True)
        return re.findall(r">((?:Alpha|Beta) for [a-z]+)</a>", html)

    my_open = "?status=all_open&assignee=me"
    for _ in range(2):  # the second round is served from the kept statements
        assert subjects("agent@alpha.test", "alpha", my_open) == ["Alpha for agent"]
        assert subjects("admin@alpha.test", "alpha", my_open) == ["Alpha for admin"]
        assert subjects("agent@beta.test", "beta", my_open) == ["Beta for agent"]
        assert subjects("agent@beta.test", "beta", "") == ["Beta for agent"]
        assert subjects("agent@alpha.test", "alpha", "") == ["Alpha for admin", "Alpha for agent"]


def test_rows_name_people_as_user_display_name_does(
    agent: Browser, world, session: Session
) -> None:
    """List rows read each person's name in SQL; it must match `User.display_name`."""
    import re

    from sqlalchemy import select

    from helpdesk.models import User
    from helpdesk.services import orgs

    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    named = orgs.ensure_user(session, "pat@example.test", name="Pat Lee")
    nameless = orgs.ensure_user(session, "quinn.blake@example.test", name="")
    session.commit()
    make_ticket(session, org, member, named, subject="From Pat")
    ticket = make_ticket(session, org, member, nameless, subject="From Quinn")
    with tenant_scope(session, org.id):
        tickets.update_fields(
            session, member, ticket.number, {"assignee_email": "agent@alpha.test"}
        )

    html = agent.get("/o/alpha/tickets", htmx=True).get_data(as_text=True)
    rows = re.findall(r">From (\w+)</a></td>.*?<td>([^<]*)</td>\s*<td>([^<]*)</td>", html, re.S)
    assert sorted(rows) == [("Pat", "Pat Lee", "—"), ("Quinn", "quinn.blake", "Agent")]
    assert member.user.display_name == "Agent"

    users = session.execute(select(User, User.display_name)).all()
    assert len(users) > 3 and all(user.display_name == sql for user, sql in users)
