"""Files on the web forms: new ticket, reply, note and the requester's reply — stored with the
message or not at all, every refusal answered on the form itself, with and without HTMX."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import TestResponse, encode_multipart

from helpdesk.models import Attachment, Comment, Ticket
from helpdesk.services import access_links, tickets
from helpdesk.storage import EXTENSION, DiskStorage
from helpdesk.tenancy import tenant_scope, unscoped
from tests.attachments.disk_fixture import disk_app, disk_root
from tests.attachments.upload_helpers import (
    attachment_rows,
    pdf,
    png,
    set_scan,
    stored_objects,
)
from tests.browser import Browser
from tests.factories import make_ticket

__all__ = ["disk_app", "disk_root"]  # fixtures `app` (on disk storage) and `storage_root`
NEW = {"subject": "Broken screen", "body": "Photo attached.", "priority": "normal",
       "requester_email": "requester@alpha.test"}  # fmt: skip


def files(*items: tuple[bytes, str]) -> list[tuple[io.BytesIO, str]]:
    return [(io.BytesIO(data), name) for data, name in items]


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True).strip()


def post_big(browser: Browser, url: str, form: dict[str, Any], htmx: bool = False) -> TestResponse:
    """POST a large multipart form encoded in memory, CSRF token included like the pages do.

    (The test client would spool a body this size to a temporary file it never closes.)
    """
    if browser.csrf is None:
        browser.get("/login")
    items = MultiDict({k: v for k, v in form.items() if k != "files"})
    for data, name in form.get("files", []):
        items.add("files", FileStorage(io.BytesIO(data), filename=name))
    headers = {"HX-Request": "true", "X-CSRFToken": browser.csrf} if htmx else {}
    if not htmx:
        items["csrf_token"] = browser.csrf
    boundary, body = encode_multipart(items)
    kind = f"multipart/form-data; boundary={boundary}"
    return browser.client.post(url, data=body, headers=headers, content_type=kind)


def count(session: Session, model: type) -> int:
    session.expire_all()
    with unscoped(session):
        return session.scalar(select(func.count()).select_from(model)) or 0


class _Ancestry(HTMLParser):
    """Which elements carrying an id sit inside an element with hx-disable."""

    VOID: ClassVar = {"area", "br", "col", "hr", "img", "input", "link", "meta", "wbr"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.disabled: dict[str, bool] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        inside = any(self.stack) or "hx-disable" in names
        if names.get("id"):
            self.disabled[str(names["id"])] = any(self.stack)
        if tag not in self.VOID:
            self.stack.append(inside)

    def handle_endtag(self, tag: str) -> None:
        if tag not in self.VOID and self.stack:
            self.stack.pop()


def under_hx_disable(html: str) -> dict[str, bool]:
    parser = _Ancestry()
    parser.feed(html)
    return parser.disabled


@pytest.fixture
def ticket(session: Session, world: dict[str, Any]) -> Ticket:
    alpha = world["alpha"]
    return make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)


@pytest.fixture
def holder(app: Flask, session: Session, ticket: Ticket) -> Browser:
    """A browser (not logged in) that opened an emailed link to the ticket."""
    with app.app_context(), tenant_scope(session, ticket.org_id):
        _row, token = access_links.mint_link(session, ticket)
        session.commit()
    browser = Browser(app.test_client())
    assert browser.get(f"/t/{token}").status_code == 303
    assert browser.get(f"/r/alpha/{ticket.number}").status_code == 200
    return browser


def test_new_ticket_form_has_a_multipart_file_field_with_the_limits(agent: Browser) -> None:
    html = text(agent.get("/o/alpha/tickets/new"))
    assert 'enctype="multipart/form-data"' in html
    assert re.search(r'<input type="file" name="files" multiple data-max-files="10" '
                     r'data-max-bytes="26214400"', html)  # fmt: skip
    assert "up to 10, 25 MB each" in html


def test_new_ticket_with_files_stores_them_on_the_first_message(
    agent: Browser, session: Session, world: dict[str, Any], storage_root: Path
) -> None:
    form = {**NEW, "files": files((png(), "screen.png"), (pdf(), "receipt.pdf"))}
    response = agent.post("/o/alpha/tickets", form)
    assert response.status_code == 303 and response.headers["Location"].endswith("/tickets/1")
    rows = attachment_rows(session, world["alpha"]["org"].id)
    with unscoped(session):
        first = session.scalar(select(Comment.id).order_by(Comment.id))
    assert [(r.filename, r.content_type, r.comment_id) for r in rows] == [
        ("screen.png", "image/png", first), ("receipt.pdf", "application/pdf", first)
    ]  # fmt: skip
    assert len(stored_objects(storage_root)) == 2
    page = text(agent.get("/o/alpha/tickets/1"))
    for row in rows:  # unscanned outside production: downloadable, marked as not scanned
        assert f'href="/o/alpha/attachments/{row.id}/download"' in page
    assert page.count("not scanned") == 2


def test_an_empty_file_field_sends_no_file(agent: Browser, session: Session) -> None:
    form = {**NEW, "files": [(io.BytesIO(b""), "")]}  # what a browser sends for no choice
    assert agent.post("/o/alpha/tickets", form).status_code == 303
    assert count(session, Ticket) == 1 and count(session, Attachment) == 0


def test_a_refused_file_keeps_the_form_and_saves_nothing(
    agent: Browser, session: Session, storage_root: Path
) -> None:
    html_as_png = (b"<!doctype html><script>alert(1)</script>", "cat.png")
    response = agent.post("/o/alpha/tickets", {**NEW, "files": files(html_as_png)})
    assert response.status_code == 422
    page = text(response)
    error = re.search(r'<span class="field-error" id="files-error" role="alert">([^<]+)<', page)
    assert error and "cat.png" in error.group(1)
    assert "Photo attached." in page and 'value="Broken screen"' in page
    assert count(session, Ticket) == 0 and count(session, Attachment) == 0
    assert stored_objects(storage_root) == []


def test_other_form_errors_say_to_choose_the_files_again(
    agent: Browser, session: Session, storage_root: Path
) -> None:
    form = {**NEW, "subject": "", "files": files((png(), "screen.png"))}
    response = agent.post("/o/alpha/tickets", form)
    assert response.status_code == 422
    assert "enter a subject" in text(response) and "Choose your files again" in text(response)
    assert count(session, Attachment) == 0 and stored_objects(storage_root) == []


def test_reply_with_htmx_shows_the_files_under_the_new_message(
    agent: Browser, session: Session, ticket: Ticket
) -> None:
    form = {"body": "Here are the logs.", "internal": "0",
            "files": files((pdf("a"), "a.pdf"), (pdf("b"), "b.pdf"))}  # fmt: skip
    response = agent.post(f"/o/alpha/tickets/{ticket.number}/comments", form, htmx=True)
    assert response.status_code == 200
    assert "Reply sent with 2 files" in response.headers["HX-Trigger"]
    fragment = text(response)
    assert fragment.startswith('<div id="conversation">')
    rows = attachment_rows(session, ticket.org_id)
    assert [r.comment_id for r in rows] == [rows[0].comment_id] * 2
    message = fragment.split(f'id="comment-{rows[0].comment_id}"', 1)[1].split("</ol>", 1)[0]
    assert "Here are the logs." in message and "a.pdf" in message and "b.pdf" in message


def test_a_pending_file_polls_its_badge_outside_the_hx_disabled_bodies(
    agent: Browser, session: Session, ticket: Ticket
) -> None:
    form = {"body": "Scan me.", "internal": "0", "files": files((pdf(), "scan.pdf"))}
    assert agent.post(f"/o/alpha/tickets/{ticket.number}/comments", form).status_code == 303
    [row] = attachment_rows(session, ticket.org_id)
    set_scan(session, ticket.org_id, row.id, "pending")
    page = text(agent.get(f"/o/alpha/tickets/{ticket.number}"))
    assert "scanning…" in page and f'/o/alpha/attachments/{row.id}/download"' not in page
    assert f'hx-get="/o/alpha/attachments/{row.id}/status"' in page
    ancestry = under_hx_disable(page)
    assert ancestry[f"attachment-{row.id}"] is False  # htmx may poll it
    assert 'class="body" hx-disable' in page  # message bodies stay inert
    set_scan(session, ticket.org_id, row.id, "infected", "Test.EICAR.UNOFFICIAL")
    page = text(agent.get(f"/o/alpha/tickets/{ticket.number}"))
    assert "blocked: Test.EICAR.UNOFFICIAL" in page and "/status" not in page


def test_note_files_stay_hidden_from_the_requester(
    app: Flask, agent: Browser, session: Session, ticket: Ticket, holder: Browser, password: str
) -> None:
    url = f"/o/alpha/tickets/{ticket.number}/comments"
    note = {"body": "Internal analysis", "internal": "1", "files": files((pdf("n"), "secret.pdf"))}
    public = {"body": "Public answer", "internal": "0", "files": files((pdf("p"), "guide.pdf"))}
    assert agent.post(url, note).status_code == 303
    assert agent.post(url, public).status_code == 303
    rows = attachment_rows(session, ticket.org_id)
    assert [r.internal for r in rows] == [True, False]
    assert "secret.pdf" in text(agent.get(f"/o/alpha/tickets/{ticket.number}"))
    link_page = text(holder.get(f"/r/alpha/{ticket.number}"))
    assert "guide.pdf" in link_page and "secret.pdf" not in link_page
    assert '<input type="file" name="files" multiple' in link_page  # they may attach too
    assert f'href="/r/alpha/{ticket.number}/attachments/{rows[1].id}/download"' in link_page
    customer = Browser(app.test_client())
    customer.login("requester@alpha.test", password)
    own_page = text(customer.get(f"/o/alpha/tickets/{ticket.number}"))
    assert "guide.pdf" in own_page and "secret.pdf" not in own_page


def test_requester_replies_with_a_file_through_the_link(
    holder: Browser, session: Session, ticket: Ticket
) -> None:
    big = b"log line\n" * (300 * 1024)  # 2.7 MB: over the app's usual 2 MB body limit
    form = {"body": "The full log.", "files": [(big, "server.log")]}
    response = post_big(holder, f"/r/alpha/{ticket.number}/comments", form)
    assert response.status_code == 303
    [row] = attachment_rows(session, ticket.org_id)
    assert (row.filename, row.size, row.internal) == ("server.log", len(big), False)
    download = holder.get(f"/r/alpha/{ticket.number}/attachments/{row.id}/download")
    assert download.status_code == 200 and download.get_data() == big
    download.close()


def test_requester_reply_with_htmx_and_a_refused_file(
    holder: Browser, session: Session, ticket: Ticket
) -> None:
    url = f"/r/alpha/{ticket.number}/comments"
    form = {"body": "Run this", "files": files((b"MZ\x90\x00" + b"\0" * 60, "fix.exe"))}
    response = holder.post(url, form, htmx=True)
    assert response.status_code == 422
    fragment = text(response)
    assert fragment.startswith('<div id="requester-ticket">') and "fix.exe" in fragment
    assert "Run this" in fragment  # the text is kept
    assert count(session, Attachment) == 0 and count(session, Comment) == 1


# --- limits, outages and the incident switch -------------------------------------------------


def test_too_many_files_is_413_naming_the_limit(
    agent: Browser, session: Session, ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(agent.client.application.config, "ATTACHMENT_MAX_FILES", 2)
    form = {"body": "Three files", "internal": "0",
            "files": files(*((pdf(str(i)), f"{i}.pdf") for i in range(3)))}  # fmt: skip
    response = agent.post(f"/o/alpha/tickets/{ticket.number}/comments", form, htmx=True)
    assert response.status_code == 413
    fragment = text(response)
    assert "attach at most 2 files to one message" in fragment and "Three files" in fragment
    assert count(session, Attachment) == 0 and count(session, Comment) == 1


def test_a_file_over_the_size_limit_is_413_and_nothing_is_saved(
    agent: Browser, session: Session, ticket: Ticket, monkeypatch: pytest.MonkeyPatch,
    storage_root: Path,
) -> None:  # fmt: skip
    monkeypatch.setitem(agent.client.application.config, "ATTACHMENT_MAX_BYTES", 1000)
    form = {"body": "Big one", "internal": "0", "files": files((b"x" * 1001, "big.txt"))}
    response = agent.post(f"/o/alpha/tickets/{ticket.number}/comments", form)
    assert response.status_code == 413
    assert "big.txt: each file must be at most 1000 bytes" in text(response)
    assert 'data-max-bytes="1000"' in text(response)  # the page now checks before sending
    assert count(session, Comment) == 1 and stored_objects(storage_root) == []


def test_the_ticket_total_is_413_naming_what_is_used(
    agent: Browser, session: Session, ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(agent.client.application.config, "ATTACHMENT_MAX_TICKET_BYTES", 1024)
    url = f"/o/alpha/tickets/{ticket.number}/comments"
    first = {"body": "First", "internal": "0", "files": files((b"a" * 700, "one.txt"))}
    assert agent.post(url, first).status_code == 303
    second = {"body": "Second", "internal": "0", "files": files((b"b" * 700, "two.txt"))}
    response = agent.post(url, second)
    assert response.status_code == 413
    assert "a ticket may hold at most 1 KB of attachments" in text(response)
    assert count(session, Comment) == 2 and count(session, Attachment) == 1


def test_a_body_over_the_message_limit_is_refused_before_reading_it(
    agent: Browser, session: Session, ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = agent.client.application.config
    monkeypatch.setitem(config, "ATTACHMENT_MAX_FILES", 1)
    monkeypatch.setitem(config, "ATTACHMENT_MAX_BYTES", 1000)  # the body limit: 1000 B + 1 MiB
    url = f"/o/alpha/tickets/{ticket.number}/comments"
    form = {"body": "Huge", "internal": "0", "files": [(b"z" * (1100 * 1024), "z.txt")]}
    response = post_big(agent, url, form)
    assert response.status_code == 413
    assert "attach at most 1 files of at most 1000 bytes each. Nothing was saved." in text(response)
    response = post_big(agent, url, form, htmx=True)
    assert response.status_code == 413 and response.headers["HX-Reswap"] == "none"
    assert "Nothing was saved" in response.headers["HX-Trigger"]
    assert count(session, Comment) == 1


def test_only_upload_forms_of_logged_in_users_take_more_than_2_mb(
    app: Flask, agent: Browser, session: Session, ticket: Ticket
) -> None:
    big = b"0123456789abcde\n" * (160 * 1024)  # 2.5 MB of text
    reply = {"body": "Big log", "internal": "0", "files": [(big, "big.log")]}
    assert post_big(agent, f"/o/alpha/tickets/{ticket.number}/comments", reply).status_code == 303
    assert count(session, Attachment) == 1
    preview = post_big(agent, "/o/alpha/preview", {"body": "x", "files": [(big, "big.log")]})
    assert preview.status_code == 413
    stranger = Browser(app.test_client())
    response = post_big(stranger, "/o/alpha/tickets", {**NEW, "files": [(big, "big.log")]})
    assert response.status_code == 413 and count(session, Ticket) == 1


def test_storage_down_is_503_and_nothing_is_half_written(
    agent: Browser, session: Session, ticket: Ticket, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the storage root should be")
    broken = DiskStorage(blocker / "attachments")  # every write fails: NotADirectoryError
    monkeypatch.setitem(agent.client.application.extensions, EXTENSION, broken)
    form = {**NEW, "files": files((pdf(), "receipt.pdf"))}
    response = agent.post("/o/alpha/tickets", form)
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert "File storage is unavailable right now, so nothing was saved" in text(response)
    assert "Photo attached." in text(response)
    reply = {"body": "With a file", "internal": "0", "files": files((pdf(), "r.pdf"))}
    response = agent.post(f"/o/alpha/tickets/{ticket.number}/comments", reply, htmx=True)
    assert response.status_code == 503 and "With a file" in text(response)
    assert count(session, Ticket) == 1 and count(session, Comment) == 1
    assert count(session, Attachment) == 0


def test_uploads_switched_off_hide_the_field_and_refuse_files(
    agent: Browser, session: Session, ticket: Ticket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(agent.client.application.config, "UPLOADS_ENABLED", False)
    page = text(agent.get(f"/o/alpha/tickets/{ticket.number}"))
    assert 'type="file"' not in page and "Attaching files is switched off for now" in page
    url = f"/o/alpha/tickets/{ticket.number}/comments"
    form = {"body": "With file", "internal": "0", "files": files((pdf(), "r.pdf"))}
    response = agent.post(url, form)
    assert response.status_code == 503 and response.headers["Retry-After"] == "60"
    assert "uploads are switched off for now" in text(response)
    assert count(session, Comment) == 1
    assert agent.post(url, {"body": "Just text", "internal": "0"}).status_code == 303
    assert count(session, Comment) == 2 and count(session, Attachment) == 0


def test_a_reply_overtaken_by_another_keeps_no_files(
    agent: Browser, session: Session, ticket: Ticket, world: dict[str, Any]
) -> None:
    with unscoped(session):
        seen = session.scalar(select(func.max(Comment.id)))
    with tenant_scope(session, ticket.org_id):
        tickets.add_comment(session, world["alpha"]["admin"], ticket.number, "Meanwhile…")
    form = {"body": "Mine", "internal": "0", "seen_up_to": str(seen),
            "files": files((pdf(), "r.pdf"))}  # fmt: skip
    response = agent.post(f"/o/alpha/tickets/{ticket.number}/comments", form, htmx=True)
    assert response.status_code == 409
    assert "Someone else wrote" in text(response) and "Choose your files again" in text(response)
    assert count(session, Attachment) == 0
