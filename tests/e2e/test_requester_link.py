"""A requester's emailed link in a real browser under the strict CSP: open it, land on a
token-free page, reply with HTMX, see the agent's answer after a reload, mark it solved —
and the same without JavaScript."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import Browser, Request, expect
from sqlalchemy.orm import Session

from helpdesk.models import Ticket
from helpdesk.services import access_links, tickets
from helpdesk.tenancy import tenant_scope
from tests.e2e.conftest import ConsoleErrors
from tests.factories import make_ticket


def _ticket_and_link(app: Flask, session: Session, world: dict[str, Any]) -> tuple[Ticket, str]:
    """A ticket the agent opened for alpha's requester, and a link as the email would carry."""
    alpha = world["alpha"]
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user,
                         subject="Laptop will not boot", body="A blinking cursor.")  # fmt: skip
    with app.app_context(), tenant_scope(session, ticket.org_id):
        _row, token = access_links.mint_link(session, ticket)
        session.commit()
    return ticket, token


def test_requester_follows_the_emailed_link_and_sees_the_answer(
    chromium: Browser,
    live_url: str,
    app: Flask,
    session: Session,
    world: dict[str, Any],
    console_errors: ConsoleErrors,
    artifacts: Path,
) -> None:
    ticket, token = _ticket_and_link(app, session, world)
    page = console_errors.watch(chromium.new_context().new_page())
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))

    page.goto(f"{live_url}/t/{token}")
    expect(page).to_have_url(f"{live_url}/r/alpha/{ticket.number}")  # the token is gone
    expect(page.locator("h1")).to_contain_text("Laptop will not boot")
    expect(page.locator("#ticket-status")).to_have_text("new")

    # Reply through HTMX: the conversation updates in place and a toast appears.
    page.fill("textarea[name=body]", "I tried **safe mode** too.")
    page.click("button:has-text('Send')")
    expect(page.locator(".comment strong", has_text="safe mode")).to_be_visible()
    expect(page.locator(".toast", has_text="Reply sent")).to_be_visible()
    expect(page.locator("textarea[name=body]")).to_have_value("")
    assert page.url == f"{live_url}/r/alpha/{ticket.number}"

    # The agent answers (and writes a note the requester must never see).
    agent = world["alpha"]["agent"]
    with tenant_scope(session, ticket.org_id):
        tickets.add_comment(session, agent, ticket.number, "Hold the power button for 10 s.")
        tickets.add_comment(session, agent, ticket.number, "NOTE-SECRET", internal=True)
    page.reload()
    expect(page.locator(".comment", has_text="power button")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("NOTE-SECRET")
    expect(page.locator("#ticket-status")).to_have_text("open")

    page.click("button:has-text('This solved my problem')")
    expect(page.locator("#ticket-status")).to_have_text("solved")
    expect(page.locator(".notice", has_text="marked as solved")).to_be_visible()
    page.screenshot(path=str(artifacts / "requester-link.png"), full_page=True)

    # No request after the link carried it in a Referer (Referrer-Policy: no-referrer).
    leaks = [r.url for r in sent if token in (r.all_headers().get("referer") or "")]
    assert leaks == []
    assert console_errors == [], console_errors


def test_requester_page_works_without_javascript(
    chromium: Browser, live_url: str, app: Flask, session: Session, world: dict[str, Any]
) -> None:
    ticket, token = _ticket_and_link(app, session, world)
    page = chromium.new_context(java_script_enabled=False).new_page()
    page.goto(f"{live_url}/t/{token}")
    expect(page).to_have_url(f"{live_url}/r/alpha/{ticket.number}")
    page.fill("textarea[name=body]", "Answered with scripts off.")
    page.click("button:has-text('Send')")
    expect(page.locator(".comment", has_text="scripts off")).to_be_visible()
    page.click("button:has-text('This solved my problem')")
    expect(page.locator("#ticket-status")).to_have_text("solved")
