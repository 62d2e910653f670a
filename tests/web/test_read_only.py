"""Read-only views run without a transaction, and cannot write by accident."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import event, update

from helpdesk.db import ReadOnlyError, get_session
from helpdesk.models import Ticket
from helpdesk.tenancy import set_tenant
from tests.browser import Browser
from tests.factories import make_ticket


@contextmanager
def autocommit_seen(app: Flask) -> Iterator[list[bool]]:
    """Whether each statement the app sends runs outside a transaction (autocommit)."""
    engine = app.extensions["helpdesk.engine"]
    seen: list[bool] = []

    def record(_conn, cursor, statement, _params, _context, _many) -> None:  # type: ignore[no-untyped-def]
        if "feature_flags" not in statement:  # the flag cache reads in a session of its own
            seen.append(bool(cursor.connection.autocommit))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_list_and_ticket_pages_read_without_a_transaction(
    app: Flask, agent: Browser, session, world
) -> None:
    ticket = make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    for url, htmx in (("/o/alpha/tickets", False), ("/o/alpha/tickets", True),
                      (f"/o/alpha/tickets/{ticket.number}", False)):  # fmt: skip
        with autocommit_seen(app) as seen:
            assert agent.get(url, htmx=htmx).status_code == 200
        assert seen and all(seen), url


def test_writes_keep_their_transaction(app: Flask, agent: Browser, session, world) -> None:
    ticket = make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    with autocommit_seen(app) as seen:
        response = agent.post(f"/o/alpha/tickets/{ticket.number}/comments", {"body": "Hello"})
    assert response.status_code == 303
    assert seen and not any(seen)


def test_a_read_only_request_refuses_to_write(app: Flask, world) -> None:
    org_id = world["alpha"]["org"].id
    with app.test_request_context("/o/alpha/tickets", method="GET"):
        session = get_session()
        set_tenant(session, org_id)
        with pytest.raises(ReadOnlyError):
            session.execute(update(Ticket).values(subject="changed"))
        ticket = session.query(Ticket).first() or Ticket()
        ticket.subject = "changed in a read-only request"
        session.add(ticket)
        with pytest.raises(ReadOnlyError):
            session.flush()
        session.rollback()
    with app.test_request_context("/o/alpha/tickets", method="POST"):
        assert "helpdesk.read_only" not in get_session().info  # only GET/HEAD are read-only
