"""The number of SQL statements per page does not grow with rows or comments (no N+1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services import flags, tickets
from helpdesk.tenancy import tenant_scope
from tests.browser import Browser
from tests.factories import make_member, make_ticket
from tests.sql_recording import statements_sent


@pytest.fixture(autouse=True)
def _flags_read_once(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Read the feature flags before counting: their cached read (one statement every few
    seconds per process, not per request) must not make two counts differ."""
    monkeypatch.setitem(app.config, "FLAG_CACHE_SECONDS", 3600)
    with app.app_context():
        flags.clear_cache()
        session = app.extensions["helpdesk.sessionmaker"]()
        try:
            flags.is_enabled(session, "attachments_upload")
        finally:
            session.close()
    yield
    with app.app_context():
        flags.clear_cache()


def statements(app: Flask, browser: Browser, url: str, **kw) -> int:
    with statements_sent(app) as seen:
        assert browser.get(url, **kw).status_code == 200
    return len(seen)


def test_list_statement_count_is_constant(
    app: Flask, browser: Browser, session: Session, world, password
) -> None:
    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    make_ticket(session, org, agent)
    browser.login("agent@alpha.test", password)
    few = statements(app, browser, "/o/alpha/tickets")
    for i in range(20):  # distinct requesters and assignees: joined, not loaded per row
        other = make_member(session, org, email=f"extra{i}@alpha.test")
        ticket = make_ticket(session, org, agent, f"customer{i}@example.test")
        with tenant_scope(session, org.id):
            tickets.update_fields(session, agent, ticket.number,
                                  {"assignee_email": other.user.email})  # fmt: skip
    many = statements(app, browser, "/o/alpha/tickets")
    assert many == few
    # The rows fragment: the user with their membership and org (one statement: the user
    # loader reads the membership the org gate needs), then the page of tickets.
    assert statements(app, browser, "/o/alpha/tickets", htmx=True) == 2
    assert statements(app, browser, "/o/alpha/tickets?q=printer") == few + 1  # + numnode


def test_ticket_page_statement_count_is_constant(
    app: Flask, browser: Browser, session: Session, world, password
) -> None:
    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    ticket = make_ticket(session, org, agent)
    browser.login("agent@alpha.test", password)
    few = statements(app, browser, f"/o/alpha/tickets/{ticket.number}")
    with tenant_scope(session, org.id):
        for i in range(15):
            author = make_member(session, org, email=f"writer{i}@alpha.test")
            tickets.add_comment(session, author, ticket.number, f"comment {i}", internal=i % 3 == 0)
            tickets.update_fields(session, agent, ticket.number, {"tags": f"t{i}"})
    assert statements(app, browser, f"/o/alpha/tickets/{ticket.number}") == few


def test_a_reply_answers_with_the_conversation_only(
    app: Flask, browser: Browser, session: Session, world, password
) -> None:
    """The HTMX reply swaps the conversation: the side panel's data is not loaded for it."""
    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    ticket = make_ticket(session, org, agent)
    browser.login("agent@alpha.test", password)
    url = f"/o/alpha/tickets/{ticket.number}/comments"
    with statements_sent(app) as seen:
        response = browser.post(url, {"body": "On it.", "internal": "0"}, htmx=True)
    assert response.status_code == 200 and "On it." in response.get_data(as_text=True)
    reads = " ".join(s for s in seen if s.lstrip().upper().startswith("SELECT"))
    assert "FROM ticket_events" not in reads  # history pane
    assert "count(access_tokens.id)" not in reads  # emailed links still open
    assert "memberships.role IN" not in reads  # the assignee picker
    assert "tickets.id != " not in reads  # the requester's other tickets
