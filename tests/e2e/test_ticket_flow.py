"""The walking skeleton's promise, in a real browser: an agent opens, answers and notes a
ticket with HTMX under the strict CSP; the requester sees the reply but never the note."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import ConsoleErrors, login


def test_agent_and_requester_flow(
    chromium: Browser,
    live_url: str,
    world,
    password: str,
    console_errors: ConsoleErrors,
    artifacts,
) -> None:
    agent = console_errors.watch(chromium.new_context().new_page())
    login(agent, live_url, "agent@alpha.test", password)

    agent.click("text=New ticket >> nth=0")
    agent.fill("input[name=requester_email]", "requester@alpha.test")
    agent.fill("input[name=subject]", "Laptop will not boot <b>now</b>")
    agent.select_option("select[name=priority]", "high")
    agent.fill("textarea[name=body]", "It shows a **blinking** cursor.")
    agent.click("text=Create ticket")
    agent.wait_for_load_state("load")
    expect(agent.locator("h1")).to_contain_text("Laptop will not boot <b>now</b>")
    expect(agent.locator(".thread strong", has_text="blinking")).to_be_visible()

    # Public reply through HTMX: the thread updates in place and a toast appears.
    url_before = agent.url
    agent.fill("textarea[name=body]", "Please hold the power button for 10 seconds.")
    agent.click("button:has-text('Send')")
    expect(agent.locator(".comment", has_text="power button")).to_be_visible()
    expect(agent.locator(".toast", has_text="Reply sent")).to_be_visible()
    assert agent.url == url_before
    expect(agent.locator("textarea[name=body]")).to_have_value("")

    # Internal note.
    agent.fill("textarea[name=body]", "Probably the SSD again.")
    agent.check("input[name=internal][value='1']")
    agent.click("button:has-text('Send')")
    expect(agent.locator(".comment.internal", has_text="SSD again")).to_be_visible()

    # Empty reply: the 422 fragment shows the error next to the field.
    agent.fill("textarea[name=body]", " ")
    agent.click("button:has-text('Send')")
    expect(agent.locator(".field-error", has_text="write a message")).to_be_visible()

    # Side panel change through HTMX records history.
    agent.select_option("select[name=status]", "pending")
    agent.click("button:has-text('Save')")
    expect(agent.locator(".history", has_text="pending")).to_be_visible()

    agent.screenshot(path=str(artifacts / "ticket-page.png"), full_page=True)
    agent.goto(f"{live_url}/o/alpha/tickets")
    agent.screenshot(path=str(artifacts / "ticket-list.png"), full_page=True)

    requester = console_errors.watch(chromium.new_context().new_page())
    login(requester, live_url, "requester@alpha.test", password)
    requester.click("text=Laptop will not boot")
    requester.wait_for_load_state("load")
    expect(requester.locator(".comment", has_text="power button")).to_be_visible()
    expect(requester.locator("body")).not_to_contain_text("SSD again")
    expect(requester.locator("body")).not_to_contain_text("internal note")

    # The deliberate empty reply logs its 422; anything else (a CSP violation, a script
    # error, a missing asset) fails the test.
    unexpected = [e for e in console_errors if "status of 422" not in e]
    assert unexpected == [], unexpected


def test_reply_works_without_javascript(
    chromium: Browser, live_url: str, world, password: str, session
) -> None:
    from tests.factories import make_ticket

    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    page = chromium.new_context(java_script_enabled=False).new_page()
    login(page, live_url, "agent@alpha.test", password)
    page.click("text=Printer on fire")
    page.fill("textarea[name=body]", "Answered with scripts off.")
    page.click("button:has-text('Send')")
    expect(page.locator(".comment", has_text="scripts off")).to_be_visible()
    page.select_option("select[name=status]", "solved")
    page.click("button:has-text('Save')")
    expect(page.locator(".history", has_text="solved")).to_be_visible()


def test_active_search_as_you_type(
    chromium: Browser, live_url: str, world, password: str, session, console_errors
) -> None:
    from tests.factories import make_ticket

    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    make_ticket(session, org, agent, subject="Quantum printer offline")
    make_ticket(session, org, agent, subject="Password reset")
    page = console_errors.watch(chromium.new_context().new_page())
    login(page, live_url, "agent@alpha.test", password)
    expect(page.locator("#ticket-rows tr")).to_have_count(2)
    page.fill("input[name=q]", "quantum printers")  # stemmed: printers → printer
    expect(page.locator("#ticket-rows tr")).to_have_count(1)
    expect(page.locator("#ticket-rows")).to_contain_text("Quantum printer offline")
    expect(page).to_have_url(re.compile(r"q=quantum(%20|\+)printers"))  # shareable URL
    page.fill("input[name=q]", "#2")
    expect(page.locator("#ticket-rows")).to_contain_text("Password reset")
    assert console_errors == [], console_errors


def test_bulk_assign_from_the_list(
    chromium: Browser, live_url: str, world, password: str, session, console_errors
) -> None:
    from tests.factories import make_ticket

    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    for subject in ("First", "Second", "Third"):
        make_ticket(session, org, agent, subject=subject)
    page = console_errors.watch(chromium.new_context().new_page())
    login(page, live_url, "agent@alpha.test", password)
    page.check("input[name=tickets][value='1']")
    page.check("input[name=tickets][value='3']")
    page.select_option("#bulk-form select[name=assignee_email]", "admin@alpha.test")
    page.select_option("#bulk-form select[name=priority]", "urgent")
    page.click("#bulk-form button[type=submit]")
    expect(page.locator(".toast", has_text="Updated 2 tickets")).to_be_visible()
    expect(page.locator("#ticket-1")).to_contain_text("urgent")  # swapped in place
    expect(page.locator("#ticket-3")).to_contain_text("urgent")
    expect(page.locator("#ticket-2")).not_to_contain_text("urgent")
    page.click("#bulk-form button[type=submit]")  # nothing selected now? rows were replaced
    expect(page.locator("#bulk-errors")).to_contain_text("select at least one ticket")
    unexpected = [e for e in console_errors if "status of 422" not in e]
    assert unexpected == [], unexpected


def test_presence_shows_who_else_is_replying(
    chromium: Browser, live_url: str, world, password: str, session, console_errors
) -> None:
    from tests.factories import make_ticket

    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    agent = console_errors.watch(chromium.new_context().new_page())
    admin = console_errors.watch(chromium.new_context().new_page())
    login(agent, live_url, "agent@alpha.test", password)
    login(admin, live_url, "admin@alpha.test", password)
    agent.goto(f"{live_url}/o/alpha/tickets/1")
    admin.goto(f"{live_url}/o/alpha/tickets/1")
    expect(admin.locator("#presence")).to_contain_text("Agent is viewing")
    agent.fill("textarea[name=body]", "Drafting an answer")
    # The next heartbeat (every 10 s) tells the admin the agent is writing.
    expect(admin.locator("#presence")).to_contain_text("Agent is replying", timeout=25_000)
    assert console_errors == [], console_errors
