"""Keyboard shortcuts in a real browser under the strict CSP: j/k/Enter in the ticket list,
r/n on a ticket, / for search and ? for the shortcut sheet; never while typing."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ConsoleErrors, login

ROWS = '#ticket-rows tr[id^="ticket-"]'
CURRENT = '#ticket-rows tr[aria-current="true"]'


def _is_focused(page: Page, selector: str) -> bool:
    return page.evaluate("s => document.activeElement === document.querySelector(s)", selector)


def test_agent_drives_list_and_ticket_with_the_keyboard(
    chromium: Browser, live_url: str, world, password: str, session, console_errors: ConsoleErrors
) -> None:
    from tests.factories import make_ticket

    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    for subject in ("Keyboard sticky", "Monitor flickers", "Mouse missing"):
        make_ticket(session, org, agent, subject=subject)
    page = console_errors.watch(chromium.new_context().new_page())
    login(page, live_url, "agent@alpha.test", password)
    rows = page.locator(ROWS)
    expect(rows).to_have_count(3)
    expect(page.locator(CURRENT)).to_have_count(0)  # nothing is selected until j/k

    page.keyboard.press("j")
    expect(page.locator(CURRENT)).to_have_id(rows.nth(0).get_attribute("id"))
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    current = page.locator(CURRENT)
    expect(current).to_have_count(1)
    expect(current).to_have_id(rows.nth(1).get_attribute("id"))
    expect(current).to_have_class(re.compile(r"\bcurrent-row\b"))
    number = rows.nth(1).get_attribute("id").removeprefix("ticket-")
    subject = rows.nth(1).locator("td.subject").inner_text()

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/tickets/{number}$"))
    expect(page.locator("h1")).to_contain_text(subject)
    page.wait_for_load_state()

    # n: internal note; keys typed into the field are text, not shortcuts.
    page.keyboard.press("n")
    assert _is_focused(page, "textarea[name=body]")
    expect(page.locator("input[name=internal][value='1']")).to_be_checked()
    page.keyboard.type("run")
    expect(page.locator("textarea[name=body]")).to_have_value("run")
    expect(page.locator("input[name=internal][value='1']")).to_be_checked()
    page.keyboard.press("Escape")
    assert not _is_focused(page, "textarea[name=body]")

    page.keyboard.press("r")
    assert _is_focused(page, "textarea[name=body]")
    expect(page.locator("input[name=internal][value='0']")).to_be_checked()
    page.keyboard.press("Escape")

    # ?: the sheet opens and closes with Escape, with ? again, or with its button.
    sheet = page.locator("#shortcut-sheet")
    expect(sheet).to_be_hidden()
    page.keyboard.press("?")
    expect(sheet).to_be_visible()
    expect(sheet).to_contain_text("Keyboard shortcuts")
    page.keyboard.press("Escape")
    expect(sheet).to_be_hidden()
    page.keyboard.press("?")
    expect(sheet).to_be_visible()
    page.keyboard.press("?")
    expect(sheet).to_be_hidden()
    page.keyboard.press("?")
    page.keyboard.press("Enter")  # focus starts on the close button
    expect(sheet).to_be_hidden()

    # /: focuses the search box without typing the slash.
    page.go_back()
    expect(page.locator("h1")).to_have_text("Tickets")
    page.wait_for_load_state()
    page.keyboard.press("/")
    assert _is_focused(page, "input[name=q]")
    expect(page.locator("input[name=q]")).to_have_value("")

    # After an HTMX swap drops the selected row, the selection is clamped to the rows left,
    # without taking focus from the search box.
    page.keyboard.press("Escape")
    for _ in range(3):
        page.keyboard.press("j")
    expect(page.locator(CURRENT)).to_have_id(rows.nth(2).get_attribute("id"))
    first = rows.nth(0).get_attribute("id")
    page.keyboard.press("/")
    page.keyboard.type("#" + first.removeprefix("ticket-"))
    expect(rows).to_have_count(1)
    expect(page.locator(CURRENT)).to_have_id(first)
    expect(page.locator(CURRENT)).to_have_class(re.compile(r"\bcurrent-row\b"))
    assert _is_focused(page, "input[name=q]")
    page.keyboard.press("Escape")  # leaves the search box without clearing it
    assert not _is_focused(page, "input[name=q]")
    expect(page.locator("input[name=q]")).not_to_have_value("")

    assert console_errors == [], console_errors


def test_requester_has_no_note_shortcut_and_no_sheet_without_js(
    chromium: Browser, live_url: str, world, password: str, session, console_errors: ConsoleErrors
) -> None:
    from tests.factories import make_ticket

    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    make_ticket(session, org, agent, requester="requester@alpha.test")
    page = console_errors.watch(chromium.new_context().new_page())
    login(page, live_url, "requester@alpha.test", password)
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Printer on fire")
    page.wait_for_load_state()
    page.keyboard.press("n")
    assert not _is_focused(page, "textarea[name=body]")
    page.keyboard.press("r")
    assert _is_focused(page, "textarea[name=body]")
    assert console_errors == [], console_errors

    no_js = chromium.new_context(java_script_enabled=False).new_page()
    login(no_js, live_url, "requester@alpha.test", password)
    expect(no_js.locator("#shortcut-sheet")).to_be_hidden()
