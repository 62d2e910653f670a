"""The attachment API: multipart upload, list, show, download; bad bodies; the scan pipeline.

Disk storage in a temporary directory (moto's S3 for the presigned redirect) and a real
clamd for the end-to-end test: upload → pending → scanned in the worker → downloadable or
blocked, and blocked content refused at once when it comes again.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from rq import Queue, SimpleWorker
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Comment
from helpdesk.storage import Storage
from helpdesk.tenancy import tenant_scope
from tests.attachments import clamd_fixture, s3_fixture
from tests.attachments import upload_helpers as files
from tests.attachments.clamd_fixture import EICAR
from tests.attachments.disk_fixture import disk_app, disk_root  # noqa: F401  (fixtures)
from tests.attachments.upload_helpers import attach, attachment_rows, bearer, stored_objects
from tests.factories import make_member, make_ticket

BASE = "/api/v1/orgs/alpha"
Client = Any  # FlaskClient, whose responses' `.json` is typed Optional: the tests index it
# The shared attachment fixtures (tests/attachments/conftest.py does not reach this directory).
clamd, clamd_url = clamd_fixture.clamd, clamd_fixture.clamd_url
moto_endpoint, moto_s3 = s3_fixture.moto_endpoint, s3_fixture.moto_s3
app_s3_storage = s3_fixture.app_s3_storage
ATTACHMENT_FIELDS = {"id", "filename", "size", "content_type", "sha256", "scan_status",
                     "signature", "downloadable", "internal", "comment_id", "created_at", "url",
                     "download_url"}  # fmt: skip


@pytest.fixture
def alpha(session: Session, world: dict[str, Any]) -> dict[str, Any]:
    """Alpha's #1 (its requester's) and #2 (another requester's), and tokens."""
    a = world["alpha"]
    other = make_member(session, a["org"], email="other@alpha.test")
    make_ticket(session, a["org"], a["agent"], a["requester"].user)
    make_ticket(session, a["org"], a["agent"], other.user)
    return {**a, "agent_h": bearer(session, a["agent"]),
            "requester_h": bearer(session, a["requester"])}  # fmt: skip


def post(client: Client, headers: dict[str, str], *items: tuple[bytes, str],
         number: int = 1, **fields: Any) -> Any:  # fmt: skip
    return client.post(f"{BASE}/tickets/{number}/attachments", headers=headers,
                       data=files.multipart(*items, **fields))  # fmt: skip


def comments(session: Session, org_id: int) -> int:
    with tenant_scope(session, org_id):
        count = session.scalar(select(func.count()).select_from(Comment))
    session.rollback()
    return int(count or 0)


def test_upload_list_show_and_download_one_file(
    client: Client, session: Session, alpha: dict[str, Any]
) -> None:
    data = files.pdf("contract")
    created = post(client, alpha["agent_h"], (data, "../Contract\u202e.pdf"))
    assert created.status_code == 201, created.json
    body = created.json
    assert set(body) == ATTACHMENT_FIELDS
    assert body["filename"] == "Contract.pdf" and body["size"] == len(data)
    assert (body["content_type"], body["scan_status"]) == ("application/pdf", "unscanned")
    assert (body["internal"], body["comment_id"], body["signature"]) == (False, None, None)
    assert body["downloadable"] is True
    url = f"http://localhost{BASE}/attachments/{body['id']}"
    assert created.headers["Location"] == body["url"] == url
    assert body["download_url"] == url + "/download"
    listed = client.get(f"{BASE}/tickets/1/attachments", headers=alpha["agent_h"])
    assert listed.json == {"items": [body]}
    assert client.get(f"{BASE}/attachments/{body['id']}", headers=alpha["agent_h"]).json == body
    got = client.get(f"{BASE}/attachments/{body['id']}/download", headers=alpha["agent_h"])
    assert got.status_code == 200 and got.get_data() == data
    assert got.headers["Content-Type"] == "application/pdf"
    assert got.headers["Content-Disposition"].startswith('attachment; filename="Contract.pdf"')
    assert got.headers["X-Content-Type-Options"] == "nosniff"
    assert got.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_several_files_with_a_reply_or_a_note(
    client: Client, session: Session, alpha: dict[str, Any]
) -> None:
    org_id = alpha["org"].id
    reply = post(client, alpha["agent_h"], (files.png(), "a.png"), (b"log\n", "b.log"),
                 body="Screenshots attached.")  # fmt: skip
    assert reply.status_code == 201, reply.json
    items = reply.json["items"]
    assert [i["filename"] for i in items] == ["a.png", "b.log"]
    assert len({i["comment_id"] for i in items}) == 1 and items[0]["comment_id"] is not None
    note = post(client, alpha["agent_h"], (b"internal\n", "n.txt"), body="FYI", internal="true")
    assert note.status_code == 201 and note.json["internal"] is True
    assert comments(session, org_id) == 2 + 2  # each ticket's first message, reply and note
    seen = client.get(f"{BASE}/tickets/1/attachments", headers=alpha["requester_h"]).json
    assert [i["filename"] for i in seen["items"]] == ["a.png", "b.log"]
    hidden = client.get(f"{BASE}/attachments/{note.json['id']}", headers=alpha["requester_h"])
    assert hidden.status_code == 404


def test_requesters_attach_to_their_own_tickets_only_and_never_internal(
    client: Client, session: Session, alpha: dict[str, Any]
) -> None:
    mine = post(client, alpha["requester_h"], (b"my log\n", "log.txt"))
    assert mine.status_code == 201 and mine.json["internal"] is False
    internal = post(client, alpha["requester_h"], (b"x\n", "x.txt"), internal="true")
    assert internal.status_code == 422
    assert internal.json["errors"] == {"internal": "only agents can attach files to internal notes"}
    others = post(client, alpha["requester_h"], (b"x\n", "x.txt"), number=2)
    assert others.status_code == 404
    assert len(attachment_rows(session, alpha["org"].id)) == 1


B = "BoUnDaRy"
GOOD = (f'--{B}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        f"Content-Type: text/plain\r\n\r\nhello world\r\n--{B}--\r\n").encode()  # fmt: skip
MP = f"multipart/form-data; boundary={B}"


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"json": {"file": "x"}}, 415, "Send the files as multipart/form-data"),
        ({"data": {"body": "no file"}, "content_type": "multipart/form-data"}, 422,
         "The request has no file"),
        ({"data": b"", "content_type": MP}, 422, "The request has no file"),
        ({"data": {"file": (io.BytesIO(b"x\n"), "x.txt"), "attachment": "?"}}, 422,
         "Check these fields: attachment."),
        ({"data": {"file": "just text"}, "content_type": "multipart/form-data"}, 422,
         "Check these fields: file."),
        ({"data": {"file": (io.BytesIO(b"x\n"), "x.txt"), "internal": "maybe"}}, 422,
         "Check these fields: internal."),
        ({"data": b"not multipart at all", "content_type": MP}, 400, "malformed or was cut short"),
        ({"data": GOOD[:-20], "content_type": MP}, 400, "malformed or was cut short"),
        ({"data": GOOD[:70], "content_type": MP}, 400, "malformed or was cut short"),
        ({"data": GOOD, "content_type": "multipart/form-data"}, 400, "malformed"),
        ({"data": GOOD, "content_type": MP,
          "environ_overrides": {"CONTENT_LENGTH": str(len(GOOD) - 30)}}, 400, "cut short"),
        ({"data": GOOD, "content_type": MP,
          "environ_overrides": {"CONTENT_LENGTH": str(len(GOOD) + 100)}}, 400,
         "ended before its declared Content-Length"),
        ({"data": GOOD, "content_type": MP,
          "environ_overrides": {"CONTENT_LENGTH": str(300 * 1024 * 1024)}}, 413,
         "This request is too large: send at most 10 files of at most 25 MB each."),
    ],
)  # fmt: skip
def test_bad_bodies_are_refused_and_store_nothing(
    client: Client, session: Session, alpha: dict[str, Any], storage_root: Path,
    kwargs: dict[str, Any], status: int, detail: str,
) -> None:  # fmt: skip
    response = client.post(f"{BASE}/tickets/1/attachments", headers=alpha["agent_h"], **kwargs)
    assert response.status_code == status, response.json
    assert response.mimetype == "application/problem+json"
    assert detail in response.json["detail"]
    assert attachment_rows(session, alpha["org"].id) == []
    assert stored_objects(storage_root) == []


@pytest.mark.parametrize(
    ("items", "status", "message"),
    [
        ([(b"", "empty.txt")], 422, "empty.txt: the file is empty"),
        ([(b"<html><script>alert(1)</script>", "cat.png")], 422,
         "cat.png: this file is HTML but is named .png"),
        ([(b"<svg onload=alert(1)>", "logo.svg")], 422, "logo.svg: .svg files cannot be attached"),
        ([(b"MZ\x90\x00", "setup.exe")], 422, "setup.exe: files named .exe cannot be attached"),
        ([(b"x\n", f"{n}.txt") for n in range(11)], 413,
         "Attach at most 10 files to one message (this one has 11)."),
    ],
)  # fmt: skip
def test_refused_files_say_why(
    client: Client, session: Session, alpha: dict[str, Any], storage_root: Path,
    items: list[tuple[bytes, str]], status: int, message: str,
) -> None:  # fmt: skip
    response = post(client, alpha["agent_h"], *items)
    assert response.status_code == status
    found = response.json.get("errors", {}).get("files") or response.json["detail"]
    assert message in found
    assert attachment_rows(session, alpha["org"].id) == []
    assert stored_objects(storage_root) == []


def test_size_limits_name_the_limit(
    app: Flask, client: Client, alpha: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 1024)
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_TICKET_BYTES", 1536)
    big = post(client, alpha["agent_h"], (b"a" * 1025, "big.txt"))
    assert (big.status_code, big.json["detail"]) == (
        413,
        "Big.txt: each file must be at most 1 KB.",
    )
    assert post(client, alpha["agent_h"], (b"a" * 1024, "one.txt")).status_code == 201
    full = post(client, alpha["agent_h"], (b"b" * 1000, "two.txt"))
    assert full.status_code == 413
    assert full.json["detail"].startswith("A ticket may hold at most 1.5 KB of attachments")


def test_switches_and_storage_down_answer_503(
    app: Flask, client: Client, session: Session, alpha: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch, storage_root: Path,
) -> None:  # fmt: skip
    file_id = attach(app, session, alpha["agent"], 1, b"ok\n", "ok.txt")
    monkeypatch.setitem(app.config, "UPLOADS_ENABLED", False)
    off = post(client, alpha["agent_h"], (b"x\n", "x.txt"))
    assert (off.status_code, off.headers["Retry-After"]) == (503, "60")
    assert off.json["detail"].startswith("Uploads are switched off for now")
    monkeypatch.setitem(app.config, "UPLOADS_ENABLED", True)
    monkeypatch.setitem(app.config, "DOWNLOADS_ENABLED", False)
    dl = client.get(f"{BASE}/attachments/{file_id}/download", headers=alpha["agent_h"])
    assert dl.status_code == 503 and dl.json["detail"].startswith("Downloads are switched off")
    (storage_root / str(alpha["org"].id)).rename(storage_root / "moved")
    (storage_root / str(alpha["org"].id)).write_bytes(b"in the way")  # cannot be a directory now
    before = comments(session, alpha["org"].id)
    extras: list[dict[str, Any]] = [{}, {"body": "with a reply"}]
    for extra in extras:
        down = post(client, alpha["agent_h"], (b"new\n", "new.txt"), **extra)
        assert down.status_code == 503 and down.headers["Retry-After"] == "60"
        assert down.json["detail"] == ("File storage is unavailable right now, so nothing was "
                                       "saved. Try again later.")  # fmt: skip
    assert len(attachment_rows(session, alpha["org"].id)) == 1
    assert comments(session, alpha["org"].id) == before


@pytest.mark.parametrize(
    ("status", "signature", "detail"),
    [
        ("pending", None, "This file is still being scanned for viruses: try again in a moment."),
        ("error", None, "The virus scan of this file failed"),
        ("infected", "Win.Test.EICAR_HDB-1", "blocked by the virus scanner: Win.Test.EICAR_HDB-1"),
    ],
)
def test_download_of_an_unclean_file_is_409_with_its_state(
    app: Flask, client: Client, session: Session, alpha: dict[str, Any],
    status: str, signature: str | None, detail: str,
) -> None:  # fmt: skip
    file_id = attach(app, session, alpha["agent"], 1, b"x\n", "x.txt", status=status,
                     signature=signature)  # fmt: skip
    response = client.get(f"{BASE}/attachments/{file_id}/download", headers=alpha["agent_h"])
    assert response.status_code == 409
    assert response.json["scan_status"] == status and detail in response.json["detail"]
    shown = client.get(f"{BASE}/attachments/{file_id}", headers=alpha["agent_h"]).json
    assert shown["downloadable"] is False and shown["signature"] == signature


def test_other_orgs_and_impossible_ids_are_404(
    app: Flask, client: Client, session: Session, alpha: dict[str, Any],
    world: dict[str, Any],
) -> None:  # fmt: skip
    beta = world["beta"]
    make_ticket(session, beta["org"], beta["agent"])
    beta_file = attach(app, session, beta["agent"], 1, b"beta\n", "b.txt")
    for file_id in (beta_file, 2**63, 10**20):
        for suffix in ("", "/download"):
            url = f"{BASE}/attachments/{file_id}{suffix}"
            assert client.get(url, headers=alpha["agent_h"]).status_code == 404, url


def test_s3_download_is_a_303_to_a_presigned_url(
    app: Flask, client: Client, session: Session, alpha: dict[str, Any],
    app_s3_storage: Storage,
) -> None:  # fmt: skip
    file_id = post(client, alpha["agent_h"], (files.png(), "shot.png")).json["id"]
    response = client.get(f"{BASE}/attachments/{file_id}/download", headers=alpha["agent_h"])
    assert response.status_code == 303
    target = urlsplit(response.headers["Location"])
    assert target.netloc == urlsplit(app.config["S3_ENDPOINT"]).netloc
    assert "X-Amz-Signature=" in target.query and "X-Amz-Expires=60" in target.query


def run_scans(app: Flask) -> None:
    redis = app.extensions["helpdesk.redis"]
    with app.app_context():
        SimpleWorker([Queue("scan", connection=redis)], connection=redis).work(burst=True)


def test_upload_scan_download_and_blocked_content_end_to_end(
    app: Flask, client: Client, alpha: dict[str, Any], clamd_url: str,
    monkeypatch: pytest.MonkeyPatch, storage_root: Path,
) -> None:  # fmt: skip
    monkeypatch.setitem(app.config, "CLAMD_URL", clamd_url)
    clean = post(client, alpha["agent_h"], (files.pdf("fine"), "fine.pdf")).json
    virus = post(client, alpha["requester_h"], (EICAR, "eicar.txt")).json
    assert clean["scan_status"] == virus["scan_status"] == "pending"
    early = client.get(clean["download_url"], headers=alpha["agent_h"])
    assert (early.status_code, early.json["scan_status"]) == (409, "pending")
    run_scans(app)
    clean_now = client.get(clean["url"], headers=alpha["agent_h"]).json
    virus_now = client.get(virus["url"], headers=alpha["agent_h"]).json
    assert clean_now["scan_status"] == "clean" and clean_now["downloadable"] is True
    assert virus_now["scan_status"] == "infected" and virus_now["signature"]
    assert client.get(clean["download_url"], headers=alpha["agent_h"]).get_data() == files.pdf(
        "fine")  # fmt: skip
    blocked = client.get(virus["download_url"], headers=alpha["agent_h"])
    assert blocked.status_code == 409 and virus_now["signature"] in blocked.json["detail"]
    again = post(client, alpha["agent_h"], (EICAR, "renamed.txt"))
    assert again.status_code == 422
    assert again.json["errors"]["files"] == (
        f"renamed.txt: this file was blocked earlier: {virus_now['signature']}")  # fmt: skip
    assert len(stored_objects(storage_root)) == 1  # the clean PDF; EICAR is gone


def test_responses_match_the_documented_schemas(
    app: Flask, client: Client, session: Session, alpha: dict[str, Any]
) -> None:
    doc = client.get("/api/v1/openapi.json").json
    registry = Registry().with_resource(
        "urn:api", Resource.from_contents(doc, default_specification=DRAFT202012)
    )

    def check(value: Any, name: str) -> None:
        schema = {"$ref": f"urn:api#/components/schemas/{name}"}
        validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
        assert [e.message for e in validator.iter_errors(value)] == [], name

    one = post(client, alpha["agent_h"], (b"a\n", "a.txt"))
    check(one.json, "Attachment")
    check(post(client, alpha["agent_h"], (b"b\n", "b.txt"), (b"c\n", "c.txt")).json,
          "AttachmentList")  # fmt: skip
    check(client.get(f"{BASE}/tickets/1/attachments", headers=alpha["agent_h"]).json,
          "AttachmentList")  # fmt: skip
    pending = attach(app, session, alpha["agent"], 1, b"p\n", "p.txt", status="pending")
    problem = client.get(f"{BASE}/attachments/{pending}/download", headers=alpha["agent_h"])
    check(problem.json, "Problem")
    check({"file": ["x"], "body": "hi", "internal": "true"}, "AttachmentUpload")
