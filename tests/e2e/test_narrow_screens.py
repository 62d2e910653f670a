"""The list and ticket pages at phone width and at 200 % zoom: nothing needs sideways
scrolling except the ticket table itself, every control keeps a label, focus stays visible."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import ConsoleErrors, login

# A 1280-px-wide window at 200 % zoom lays out like a 640-px one; 375 px is a phone.
VIEWPORTS = {"phone": {"width": 375, "height": 740}, "zoom-200": {"width": 640, "height": 400}}

OVERFLOW = """() => {
  const limit = document.documentElement.clientWidth + 1;
  return [...document.querySelectorAll('body *')]
    .filter(el => !el.closest('.table-scroll, table.tickets'))
    .filter(el => el.getBoundingClientRect().right > limit && el.getClientRects().length)
    .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''))
    .slice(0, 5);
}"""
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter(el => el.type !== 'hidden' && el.getClientRects().length)
  .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                && !(el.tagName === 'BUTTON' && el.textContent.trim()))
  .map(el => el.outerHTML.slice(0, 80))"""


def _check(page: Page) -> None:
    # The page itself never scrolls sideways; a wide ticket table scrolls in its own box.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= page.evaluate(
        "() => document.documentElement.clientWidth"
    )
    assert page.evaluate(OVERFLOW) == []
    assert page.evaluate(UNLABELLED) == []


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_list_and_ticket_fit_narrow_screens(
    chromium: Browser, live_url: str, world, password: str, session, viewport: str,
    console_errors: ConsoleErrors,
) -> None:  # fmt: skip
    from tests.factories import make_ticket

    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    ticket = make_ticket(session, org, agent, subject="A rather long subject line " * 3)
    context = chromium.new_context(viewport=VIEWPORTS[viewport])
    page = console_errors.watch(context.new_page())
    login(page, live_url, "agent@alpha.test", password)
    _check(page)
    page.keyboard.press("/")  # focus the search box: its focus ring must be visible
    outline = page.evaluate(
        "() => getComputedStyle(document.activeElement).outlineStyle"
        " + getComputedStyle(document.activeElement).boxShadow"
    )
    assert outline not in ("nonenone", "none")
    page.goto(f"{live_url}/o/alpha/tickets/{ticket.number}")
    _check(page)
    context.close()
    assert console_errors == []
