"""Downloads and scan badges on the web: only clean files, only for who may see the ticket.

Agents' pages (/o/…), the requester's pages (/r/…, by login or by emailed link), disk
streaming and S3 presigned redirects, the incident switch, and the self-polling badge.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk.models import Attachment, Ticket
from helpdesk.services import access_links
from helpdesk.storage import Storage
from helpdesk.tenancy import tenant_scope
from tests.attachments import upload_helpers as files
from tests.attachments.disk_fixture import disk_app, disk_root  # noqa: F401  (fixtures)
from tests.attachments.upload_helpers import attach, stored_objects
from tests.browser import Browser, as_user
from tests.factories import make_member, make_ticket

SAFE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
}


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def tickets_(session: Session, world: dict[str, Any]) -> dict[str, Ticket]:
    """Alpha #1 for alpha's requester, #2 for another requester."""
    alpha = world["alpha"]
    other = make_member(session, alpha["org"], email="other@alpha.test")
    return {
        "own": make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user),
        "other": make_ticket(session, alpha["org"], alpha["agent"], other.user),
    }


@pytest.fixture
def agent(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "agent@alpha.test", password)


@pytest.fixture
def requester(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "requester@alpha.test", password)


def file_on(app: Flask, session: Session, world: dict[str, Any], number: int = 1,
            **kw: Any) -> int:  # fmt: skip
    kw.setdefault("data", files.pdf("the invoice"))
    kw.setdefault("name", "invoice.pdf")
    data, name = kw.pop("data"), kw.pop("name")
    return attach(app, session, world["alpha"]["agent"], number, data, name, **kw)


def test_a_clean_file_streams_with_headers_that_forbid_rendering(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser
) -> None:
    data = files.pdf("the invoice")
    file_id = file_on(app, session, world, data=data, name="Résumé\u202efdp.pdf")
    response = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert response.status_code == 200
    assert response.get_data() == data
    assert response.headers["Content-Type"] == "application/pdf"
    assert response.headers["Content-Length"] == str(len(data))
    assert response.headers["Content-Disposition"] == (
        "attachment; filename=\"Resumefdp.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9fdp.pdf"
    )
    for name, value in SAFE_HEADERS.items():
        assert response.headers[name] == value


def test_markup_is_never_served_as_such(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser
) -> None:
    """Even a row that claims HTML (it cannot be uploaded) is served as bytes to save."""
    file_id = file_on(app, session, world, data=b"plain words\n", name="notes.txt")
    with tenant_scope(session, world["alpha"]["org"].id):
        row = session.get(Attachment, file_id)
        assert row is not None and row.content_type == "text/plain; charset=utf-8"
        row.content_type = "text/html"
        session.commit()
    response = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    ("status", "signature", "message"),
    [
        ("pending", None, "This file is still being scanned for viruses: try again in a moment."),
        ("error", None, "The virus scan of this file failed; it is retried automatically"),
        ("infected", "Eicar-Test-Signature", "blocked by the virus scanner: Eicar-Test-Signature"),
    ],
)
def test_only_clean_files_download(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser,
    status: str, signature: str | None, message: str,
) -> None:  # fmt: skip
    file_id = file_on(app, session, world, status=status, signature=signature)
    response = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert response.status_code == 409
    assert message in text(response)
    assert response.mimetype == "text/html"


def test_unscanned_files_download_only_outside_production(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    file_id = file_on(app, session, world, status="unscanned")
    assert agent.get(f"/o/alpha/attachments/{file_id}/download").status_code == 200
    monkeypatch.setitem(app.config, "HELPDESK_ENV", "production")
    response = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert response.status_code == 409
    assert "never scanned for viruses" in text(response)


def test_the_incident_switch_turns_downloads_off(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    file_id = file_on(app, session, world)
    monkeypatch.setitem(app.config, "DOWNLOADS_ENABLED", False)
    response = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "Downloads are switched off for now: try again later." in text(response)


def test_requesters_get_their_public_files_only(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, requester: Browser
) -> None:
    public = file_on(app, session, world, 1)
    internal = file_on(app, session, world, 1, data=b"notes\n", name="n.txt", internal=True)
    others = file_on(app, session, world, 2, data=b"theirs\n", name="t.txt")
    assert requester.get(f"/o/alpha/attachments/{public}/download").status_code == 200
    for hidden in (internal, others, others + 1000):
        for url in (f"/o/alpha/attachments/{hidden}/download",
                    f"/o/alpha/attachments/{hidden}/status"):  # fmt: skip
            response = requester.get(url)
            assert response.status_code == 404, url
            assert "theirs" not in text(response) and "n.txt" not in text(response)


def test_another_orgs_file_is_not_found(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser
) -> None:
    beta = world["beta"]
    make_ticket(session, beta["org"], beta["agent"])
    beta_file = attach(app, session, beta["agent"], 1, b"beta data\n", "beta.txt")
    assert agent.get(f"/o/alpha/attachments/{beta_file}/download").status_code == 404
    assert agent.get(f"/o/beta/attachments/{beta_file}/download").status_code == 404


def mint(app: Flask, session: Session, ticket: Ticket) -> str:
    with app.app_context(), tenant_scope(session, ticket.org_id):
        _row, plaintext = access_links.mint_link(session, ticket, access_links.utcnow())
        session.commit()
    return plaintext


def test_the_requester_page_serves_that_tickets_public_files(
    app: Flask, session: Session, world: dict[str, Any], tickets_: dict[str, Ticket]
) -> None:
    public = file_on(app, session, world, 1)
    internal = file_on(app, session, world, 1, data=b"notes\n", name="n.txt", internal=True)
    elsewhere = file_on(app, session, world, 2, data=b"theirs\n", name="t.txt")
    browser = Browser(app.test_client())
    assert browser.get(f"/t/{mint(app, session, tickets_['own'])}").status_code == 303
    response = browser.get(f"/r/alpha/1/attachments/{public}/download")
    assert response.status_code == 200 and response.get_data() == files.pdf("the invoice")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for url in (f"/r/alpha/1/attachments/{internal}/download",  # an internal note's file
                f"/r/alpha/1/attachments/{elsewhere}/download",  # another ticket's file
                f"/r/alpha/1/attachments/{internal}/status"):  # fmt: skip
        response = browser.get(url)
        assert response.status_code == 404, url
        assert "n.txt" not in text(response) and "t.txt" not in text(response)
    no_grant = browser.get(f"/r/alpha/2/attachments/{elsewhere}/download")  # not this link's
    assert no_grant.status_code == 302 and "/login" in no_grant.headers["Location"]
    with app.app_context(), tenant_scope(session, world["alpha"]["org"].id):
        access_links.revoke_links(session, world["alpha"]["agent"], 1)
    response = browser.get(f"/r/alpha/1/attachments/{public}/download")
    assert response.status_code == 410
    anonymous = Browser(app.test_client()).get(f"/r/alpha/1/attachments/{public}/download")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_the_badge_polls_until_the_scan_settles(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser
) -> None:
    file_id = file_on(app, session, world, status="pending")
    url = f"/o/alpha/attachments/{file_id}/status"
    pending = agent.get(url, htmx=True)
    assert pending.status_code == 200
    assert f'hx-get="{url}"' in text(pending) and 'hx-trigger="every 2s"' in text(pending)
    assert "scanning…" in text(pending) and "download" not in text(pending)
    with tenant_scope(session, world["alpha"]["org"].id):
        row = session.get(Attachment, file_id)
        assert row is not None
        row.scan_status = "error"
        session.commit()
        failed = agent.get(url, htmx=True)
        assert failed.status_code == 200 and "scan failed, retrying…" in text(failed)
        row.scan_status = "clean"
        session.commit()
        clean = agent.get(url, htmx=True)
        assert clean.status_code == 286  # htmx stops polling
        assert "hx-get" not in text(clean)
        assert f'href="/o/alpha/attachments/{file_id}/download"' in text(clean)
        row.scan_status, row.signature = "infected", "Eicar-Test-Signature"
        session.commit()
        blocked = agent.get(url, htmx=True)
        assert blocked.status_code == 286
        assert "blocked: Eicar-Test-Signature" in text(blocked) and "href" not in text(blocked)


def test_the_requester_pages_badge_links_to_the_requester_download(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, requester: Browser
) -> None:
    name = "<img src=x onerror=alert(1)> Tom & Jerry's.txt"  # <> are dropped from names
    file_id = file_on(app, session, world, data=b"x & y\n", name=name)
    response = requester.get(f"/r/alpha/1/attachments/{file_id}/status", htmx=True)
    assert response.status_code == 286
    assert f'href="/r/alpha/1/attachments/{file_id}/download"' in text(response)
    assert "_img src=x onerror=alert(1)_ Tom &amp; Jerry&#39;s.txt" in text(response)
    assert "<img" not in text(response)


def test_a_missing_object_or_broken_storage_is_said_plainly(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser,
    storage_root: Path,
) -> None:  # fmt: skip
    file_id = file_on(app, session, world)
    [stored] = stored_objects(storage_root)
    stored.unlink()
    missing = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert missing.status_code == 404 and "no longer in storage" in text(missing)
    stored.parent.rmdir()
    stored.parent.write_bytes(b"a file where the org's directory was")
    broken = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert broken.status_code == 503 and broken.headers["Retry-After"] == "60"
    assert "File storage is unavailable right now" in text(broken)


def test_s3_downloads_redirect_to_a_short_lived_url(
    app: Flask, session: Session, world: dict[str, Any], tickets_: Any, agent: Browser,
    app_s3_storage: Storage,
) -> None:  # fmt: skip
    data = files.png()
    file_id = file_on(app, session, world, data=data, name="screen shot.png")
    response = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert response.status_code == 303
    assert response.headers["Cache-Control"] == "private, no-store"
    location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == ["60"]
    assert query["response-content-disposition"] == [
        "attachment; filename=\"screen shot.png\"; filename*=UTF-8''screen%20shot.png"
    ]
    assert query["response-content-type"] == ["image/png"]
    with urllib.request.urlopen(location, timeout=5) as fetched:  # noqa: S310 - loopback moto
        assert fetched.read() == data
