"""End-to-end fixtures: the app on a real port, driven by Debian's Chromium via Playwright.

Playwright cannot download its own browser here, so it launches /usr/bin/chromium
(installed by .ci/run). The browser starts once per module.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from werkzeug.serving import make_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "instance" / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def live_url(app: Flask) -> Iterator[str]:
    """Serve the test app on a free loopback port in a background thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


class ConsoleErrors(list[str]):
    """Console errors and uncaught exceptions seen by a page (CSP violations land here)."""

    def watch(self, page: Page) -> Page:
        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                self.append(msg.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.append(str(exc)))
        return page


@pytest.fixture
def console_errors() -> ConsoleErrors:
    return ConsoleErrors()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where end-to-end tests leave screenshots (instance/test-artifacts, not committed)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def login(page: Page, base: str, email: str, password: str) -> None:
    """Log in through the form and wait until the deferred htmx and app.js have run."""
    page.goto(f"{base}/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text(re.compile(r"^(My t|T)ickets$"))  # requesters: "My"
    page.wait_for_load_state("load")  # before typing or pressing keys: handlers are wired
