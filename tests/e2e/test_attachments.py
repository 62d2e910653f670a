"""Attachments in a real browser under the strict CSP, scanned by a real clamd: attach files to a
reply, watch "scanning…", run the scan job, see the badge turn into a link (or "blocked: …")
by itself, download the bytes — and the same without JavaScript."""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, FilePayload, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.models import Attachment, Ticket
from helpdesk.tenancy import tenant_scope
from jobs.scan import scan
from tests.attachments.clamd_fixture import EICAR, Clamd, clamd
from tests.attachments.upload_helpers import pdf
from tests.e2e.conftest import ConsoleErrors, login
from tests.factories import make_ticket

__all__ = ["clamd"]  # the session's test clamd (tests/attachments/clamd_fixture.py)
REPORT = pdf("quarterly report")


def payload(name: str, data: bytes, mime: str = "text/plain") -> FilePayload:
    """A file as if chosen in the browser's file picker."""
    return {"name": name, "mimeType": mime, "buffer": data}


@pytest.fixture(scope="module")
def app(
    settings: Settings, clamd: Clamd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flask]:
    """The app with disk storage in a temporary directory, scanning with the test clamd."""
    root = tmp_path_factory.mktemp("e2e-attachments")
    changed = dataclasses.replace(settings, storage="disk", storage_dir=str(root),
                                  clamd_url=clamd.tcp_url)  # fmt: skip
    app = create_app(changed)
    app.config["TESTING"] = True
    yield app
    app.extensions["helpdesk.engine"].dispose()


@pytest.fixture(scope="module")
def live_url(app: Flask) -> Iterator[str]:
    """This module's app on a free loopback port (the shared live server runs another app)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def ticket(session: Session, world: dict[str, Any]) -> Ticket:
    alpha = world["alpha"]
    return make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user,
                       subject="Invoice question")  # fmt: skip


def scan_all(app: Flask, session: Session, org_id: int) -> dict[str, str]:
    """Run the scan job in-process for every pending file, as the worker would."""
    session.expire_all()
    with tenant_scope(session, org_id):
        pending = session.scalars(select(Attachment.id).where(Attachment.scan_status == "pending"))
        ids = list(pending)
        session.rollback()
    assert ids, "nothing was waiting for a scan"
    with app.app_context():
        for attachment_id in ids:
            scan(org_id, attachment_id)
    with tenant_scope(session, org_id):
        rows = session.scalars(select(Attachment).order_by(Attachment.id))
        result = {row.filename: row.scan_status for row in rows}
        session.rollback()
    return result


def open_ticket_page(page: Page, live_url: str, ticket: Ticket, password: str) -> None:
    login(page, live_url, "agent@alpha.test", password)
    page.goto(f"{live_url}/o/alpha/tickets/{ticket.number}")
    page.wait_for_load_state("load")


def test_attach_watch_the_scan_and_download(
    chromium: Browser,
    live_url: str,
    app: Flask,
    session: Session,
    ticket: Ticket,
    password: str,
    console_errors: ConsoleErrors,
    artifacts: Path,
) -> None:
    page = console_errors.watch(chromium.new_context(accept_downloads=True).new_page())
    open_ticket_page(page, live_url, ticket, password)
    page.evaluate("""() => {
        window.uploadProgress = [];
        document.addEventListener("htmx:xhr:progress", () => {
            const bar = document.querySelector("progress[data-upload-progress]");
            window.uploadProgress.push(Boolean(bar && !bar.hidden));
        });
    }""")
    page.fill("textarea[name=body]", "The report and the file the customer sent.")
    chosen = [payload("report.pdf", REPORT, "application/pdf"), payload("eicar.txt", EICAR)]
    page.set_input_files("input[name=files]", files=chosen)
    page.click("button:has-text('Send')")
    expect(page.locator(".toast", has_text="Reply sent with 2 files")).to_be_visible()
    message = page.locator(".comment", has_text="The report and the file")
    expect(message.locator(".badge.scanning")).to_have_count(2)
    expect(message.locator(".files")).to_contain_text("report.pdf")
    assert page.evaluate("window.uploadProgress").count(True) >= 1  # the bar showed the upload
    expect(page.locator("progress[data-upload-progress]")).to_be_hidden()
    page.screenshot(path=str(artifacts / "attachments-scanning.png"), full_page=True)

    assert scan_all(app, session, ticket.org_id) == {"report.pdf": "clean", "eicar.txt": "infected"}
    # The badges poll themselves: the link and the verdict appear without a reload.
    link = message.locator("a", has_text="report.pdf")
    expect(link).to_be_visible(timeout=10_000)
    expect(message.locator(".badge.blocked")).to_have_text(re.compile(r"^blocked: Test\.EICAR"))
    expect(message.locator("a", has_text="eicar.txt")).to_have_count(0)
    expect(message.locator(".badge.scanning")).to_have_count(0)
    page.screenshot(path=str(artifacts / "attachments-scanned.png"), full_page=True)

    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "report.pdf"
    assert Path(download.path()).read_bytes() == REPORT
    assert console_errors == [], console_errors


def test_files_are_checked_in_the_page_before_sending(
    chromium: Browser,
    live_url: str,
    app: Flask,
    session: Session,
    ticket: Ticket,
    password: str,
    console_errors: ConsoleErrors,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 1000)
    page = console_errors.watch(chromium.new_context().new_page())
    open_ticket_page(page, live_url, ticket, password)
    page.fill("textarea[name=body]", "Too big to send")
    page.set_input_files("input[name=files]", files=[payload("big.txt", b"x" * 1500)])
    expect(page.locator("#files-error")).to_have_text(
        "big.txt is 1 KB: each file must be at most 1000 bytes."
    )
    page.click("button:has-text('Send')")
    page.set_input_files("input[name=files]", files=[payload("small.txt", b"fits")])
    expect(page.locator("#files-error")).to_have_text("")
    with page.expect_request(re.compile(r"/preview$")) as preview:  # the draft only, no files
        page.click("button:has-text('Preview')")
    assert preview.value.headers["content-type"].startswith("application/x-www-form-urlencoded")
    expect(page.locator("#reply-preview")).to_contain_text("Too big to send")
    page.click("button:has-text('Send')")
    expect(page.locator(".comment", has_text="Too big to send")).to_have_count(1)
    expect(page.locator(".comment .files")).to_contain_text("small.txt")
    assert console_errors == [], console_errors


def test_attach_and_download_without_javascript(
    chromium: Browser, live_url: str, app: Flask, session: Session, ticket: Ticket, password: str
) -> None:
    page = chromium.new_context(java_script_enabled=False, accept_downloads=True).new_page()
    open_ticket_page(page, live_url, ticket, password)
    page.fill("textarea[name=body]", "Sent with scripts off.")
    page.set_input_files(
        "input[name=files]", files=payload("report.pdf", REPORT, "application/pdf")
    )
    page.click("button:has-text('Send')")
    message = page.locator(".comment", has_text="scripts off")
    expect(message.locator(".badge.scanning")).to_have_text("scanning…")
    assert scan_all(app, session, ticket.org_id) == {"report.pdf": "clean"}
    page.reload()
    with page.expect_download() as info:
        message.locator("a", has_text="report.pdf").click()
    assert Path(info.value.path()).read_bytes() == REPORT
