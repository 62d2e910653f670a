"""The list page stays light: HTML of a full page plus every asset it loads <= 100 KB."""

from __future__ import annotations

import re

from flask import Flask
from sqlalchemy.orm import Session

from tests.browser import Browser
from tests.factories import make_ticket

BUDGET = 100 * 1024  # bytes, uncompressed (gzip brings it to about a quarter)


def test_list_page_with_its_assets_fits_the_budget(
    app: Flask, browser: Browser, session: Session, world, password
) -> None:
    org, agent = world["alpha"]["org"], world["alpha"]["agent"]
    for i in range(26):  # a full page of rows plus the "next page" row
        make_ticket(session, org, agent, f"customer{i}@example.test",
                    subject=f"A realistic subject line about problem number {i} " * 2)  # fmt: skip
    browser.login("agent@alpha.test", password)
    page = browser.get("/o/alpha/tickets")
    html = page.get_data(as_text=True)
    assert html.count('<tr id="ticket-') == 25
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("htmx" in a for a in assets) and any(a.endswith(".css") for a in assets)
    total = len(page.data)
    for asset in assets:
        response = browser.get(asset)
        total += len(response.get_data())
        response.close()  # static files are streamed from an open file
    assert total <= BUDGET, f"list page weighs {total} bytes"
    assert "fonts.googleapis" not in html and "@font-face" not in html  # no web fonts
