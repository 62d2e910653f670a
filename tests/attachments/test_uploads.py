"""Uploads: hostile names, sniffed types, limits while streaming, dedupe, blocked content.

The service is driven directly (as the web forms and the API drive it) against a real
database and real disk storage in a temporary directory.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Attachment
from helpdesk.services import attachments
from helpdesk.services.attachments import IncomingFile, TooLarge, Unavailable
from helpdesk.services.errors import ValidationError
from helpdesk.services.filenames import display_name
from helpdesk.tenancy import tenant_scope
from tests.attachments import upload_helpers as files
from tests.attachments.disk_fixture import disk_app, disk_root  # noqa: F401  (fixtures)
from tests.attachments.upload_helpers import attachment_rows
from tests.factories import make_ticket

MB25 = "25 MB"


def incoming(data: bytes, name: str) -> IncomingFile:
    return IncomingFile(name, io.BytesIO(data), "image/png")  # the client's type is ignored


def check(*items: tuple[bytes, str], existing: int = 0) -> list[attachments.Prepared]:
    return attachments.check_uploads([incoming(d, n) for d, n in items],
                                     existing_ticket_bytes=existing)  # fmt: skip


def refusal(*items: tuple[bytes, str]) -> str:
    with pytest.raises(ValidationError) as caught:
        check(*items)
    return caught.value.errors["files"]


@pytest.fixture
def alpha(app: Flask, session: Session, world: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Alpha's ticket #1 (for alpha's requester), inside the app context and alpha's scope."""
    org = world["alpha"]["org"]
    ticket = make_ticket(session, org, world["alpha"]["agent"], world["alpha"]["requester"].user)
    with app.app_context(), tenant_scope(session, org.id):
        yield {**world["alpha"], "ticket": session.merge(ticket)}


def store(session: Session, alpha: dict[str, Any], *items: tuple[bytes, str],
          who: str = "agent", **kw: Any) -> list[Attachment]:  # fmt: skip
    rows = attachments.store_uploads(session, alpha[who], alpha["ticket"], check(*items), **kw)
    session.commit()
    return rows


# --- filenames ------------------------------------------------------------------------------

HOSTILE_NAMES = [
    ("../../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\Windows\\System32\\drivers.txt", "drivers.txt"),
    ("C:\\Users\\ann\\Desktop\\report.txt", "report.txt"),
    ("notes\x00.exe.txt", "notes.exe.txt"),
    ("line\r\nSet-Cookie: a=b.txt", "line Set-Cookie_ a=b.txt"),
    ("invoice\u202etxt.exe", "invoicetxt.exe"),
    ("\u202aembedded\u202c and \u2066isolated\u2069.txt", "embedded and isolated.txt"),
    ("\u200b.htaccess", "htaccess"),
    ("...hidden.txt", "hidden.txt"),
    ("  spaced   out\tname .txt  ", "spaced out name .txt"),
    ("x" * 1000 + ".txt", "x" * 146 + ".txt"),
    ("y" * 1000, "y" * 150),
    ("CON.txt", "_CON.txt"),
    ("nul", "_nul"),
    ("Com1.tar.gz", "_Com1.tar.gz"),
    ("LPT9.log", "_LPT9.log"),
    ("report.pdf.txt", "report.pdf.txt"),
    ("e\u0301te\u0301.txt", "\u00e9t\u00e9.txt"),
    ('a<b>c:d"e|f?g*h.txt', "a_b_c_d_e_f_g_h.txt"),
    ("evil.exe. . .", "evil.exe"),
    ("", "attachment"),
    ("....", "attachment"),
    ("dir/", "attachment"),
]


@pytest.mark.parametrize(("raw", "expected"), HOSTILE_NAMES)
def test_hostile_filenames_become_safe_display_names(raw: str, expected: str) -> None:
    name = display_name(raw)
    assert name == expected
    assert len(name) <= 150
    assert unicodedata.is_normalized("NFC", name)
    assert not any(unicodedata.category(c) in ("Cc", "Cf") for c in name)
    assert "/" not in name and "\\" not in name and not name.startswith((".", " "))


def test_a_hostile_name_is_only_metadata(session: Session, alpha: dict[str, Any]) -> None:
    [row] = store(session, alpha, (b"hello\n", "../../x\u202e\r\n" + "n" * 300 + ".txt"))
    assert row.filename == "x " + "n" * 144 + ".txt"
    org_id = alpha["org"].id
    assert re.fullmatch(rf"{org_id}/[0-9a-f]{{32}}", row.storage_key)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("invoice.pdf.exe", files.pdf(), "files named .exe cannot be attached"),
        ("invoice\u202efdp.exe", files.pdf(), "files named .exe cannot be attached"),
        ("report.pdf.js", b"alert(1)", "files named .js cannot be attached"),
        ("setup.msi. ", files.pdf(), "files named .msi cannot be attached"),
        ("run.sh", b"echo hi\n", "files named .sh cannot be attached"),
        ("photo.png.html", b"<p>hi</p>", ".html files cannot be attached"),
    ],
)
def test_double_and_disguised_extensions_are_judged_by_the_last_one(
    alpha: dict[str, Any], name: str, data: bytes, message: str
) -> None:
    assert message in refusal((data, name))


def test_an_inner_extension_does_not_matter_when_content_and_last_extension_agree(
    alpha: dict[str, Any],
) -> None:
    [item] = check((files.png(), "photo.exe.png"))
    assert (item.filename, item.content_type) == ("photo.exe.png", "image/png")


# --- types ----------------------------------------------------------------------------------

OOXML = "application/vnd.openxmlformats-officedocument."
ALLOWED = [
    ("a.pdf", files.pdf(), "application/pdf"),
    ("a.docx", files.office("word/document.xml"), OOXML + "wordprocessingml.document"),
    ("a.xlsx", files.office("xl/workbook.xml"), OOXML + "spreadsheetml.sheet"),
    ("a.pptx", files.office("ppt/presentation.xml"), OOXML + "presentationml.presentation"),
    ("a.odt", files.opendocument("text"), "application/vnd.oasis.opendocument.text"),
    ("a.ods", files.opendocument("spreadsheet"), "application/vnd.oasis.opendocument.spreadsheet"),
    ("a.rtf", b"{\\rtf1\\ansi hello}", "application/rtf"),
    ("a.txt", "h\u00e9llo w\u00f6rld\n".encode(), "text/plain; charset=utf-8"),
    ("a.txt", "h\u00e9llo\n".encode("latin-1"), "text/plain; charset=iso-8859-1"),
    ("a.csv", b"id,name\n1,Ann\n", "text/csv; charset=utf-8"),
    ("README.md", b"# Title\n\nSome *text*.\n", "text/markdown; charset=utf-8"),
    ("app.log", b"\x1b[31mERROR\x1b[0m disk full\n", "text/plain; charset=utf-8"),
    ("Makefile", b"all:\n\techo hi\n", "text/plain; charset=utf-8"),
    ("a.png", files.png(), "image/png"),
    ("a.jpg", files.jpeg(), "image/jpeg"),
    ("a.gif", files.gif(), "image/gif"),
    ("a.webp", files.webp(), "image/webp"),
    ("a.zip", files.plain_zip(), "application/zip"),
    ("tools.zip", files.plain_zip("setup.exe", b"MZ\x90\x00"), "application/zip"),
    ("a.docx.zip", files.office("word/document.xml"), "application/zip"),
    ("a.tar.gz", files.gz(), "application/gzip"),
    ("a.7z", files.seven_z(), "application/x-7z-compressed"),
    ("a.eml", files.eml(), "message/rfc822"),
]


@pytest.mark.parametrize(("name", "data", "content_type"), ALLOWED)
def test_allowed_types_store_the_sniffed_content_type(
    alpha: dict[str, Any], name: str, data: bytes, content_type: str
) -> None:
    [item] = check((data, name))
    assert item.content_type == content_type
    assert item.size == len(data)


REFUSED = [
    ("fake.png", b"<html><script>alert(1)</script></html>", "this file is HTML but is named .png"),
    ("page.html", b"<!DOCTYPE html><p>x", ".html files cannot be attached"),
    ("page", b"  \n<!doctype html><title>x</title>", "this file is HTML, which cannot be attached"),
    ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
     ".svg files cannot be attached"),
    ("logo.png", b'<?xml version="1.0"?>\n<svg onload="alert(1)"/>',
     "this file is SVG but is named .png"),
    ("data.txt", b'<?xml version="1.0"?><root/>', "this file is XML but is named .txt"),
    ("notes.txt", b"<div><script>alert(1)</script></div>", "this file is HTML but is named .txt"),
    ("tool.txt", b"MZ\x90\x00\x03\x00\x00\x00", "this file is a Windows program"),
    ("tool", b"\x7fELF\x02\x01\x01\x00", "this file is a Linux program"),
    ("tool.pdf", b"\xcf\xfa\xed\xfe\x07\x00\x00\x01", "this file is a macOS program"),
    ("notes.txt", b"#!/bin/sh\nrm -rf ~\n", "this file is a script"),
    ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512, "old Office (97-2003)"),
    ("photo.jpg", files.png(), "this file is a PNG image but is named .jpg"),
    ("report.pdf", files.office("word/document.xml"), "this file is a Word document but is named"),
    ("sheet.xlsx", files.office("word/document.xml"), "this file is a Word document but is named"),
    ("a.docx", files.opendocument("text"), "this file is an OpenDocument text but is named .docx"),
    ("scan.pdf", b"just some words\n", "this file is plain text but is named .pdf"),
    ("mail.eml", b"not a message\n", "this file is plain text but is named .eml"),
    ("cut.zip", files.plain_zip()[:40], "this ZIP archive is damaged or incomplete"),
    ("blob", bytes(range(256)), "this type of file cannot be attached. Allowed: PDF"),
    ("empty.txt", b"", "empty.txt: the file is empty"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "data", "message"), REFUSED)
def test_refused_content_says_why(
    alpha: dict[str, Any], name: str, data: bytes, message: str
) -> None:
    assert message in refusal((data, name))


def test_every_refused_file_is_named_in_one_answer(alpha: dict[str, Any]) -> None:
    message = refusal((b"ok\n", "fine.txt"), (b"", "a.txt"), (files.png(), "b.gif"))
    assert message == "a.txt: the file is empty; b.gif: this file is a PNG image but is named .gif"


# --- limits ---------------------------------------------------------------------------------


class Endless(io.RawIOBase):
    """A client that keeps sending (not seekable: the service must copy while it checks)."""

    def __init__(self) -> None:
        self.sent = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer)
        buffer[:size] = b"a" * size
        self.sent += size
        return size


def test_an_oversized_file_is_refused_while_streaming(alpha: dict[str, Any]) -> None:
    source = Endless()
    with pytest.raises(TooLarge) as caught:
        endless = cast(BinaryIO, source)
        attachments.check_uploads([IncomingFile("big.log", endless)], existing_ticket_bytes=0)
    assert str(caught.value) == f"big.log: each file must be at most {MB25}"
    assert source.sent <= 25 * 1024 * 1024 + 2 * attachments.CHUNK  # stopped at the limit


def test_size_limit_is_inclusive(
    alpha: dict[str, Any], monkeypatch: pytest.MonkeyPatch, app: Flask
) -> None:
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 2048)
    assert check((b"a" * 2048, "exact.txt"))[0].size == 2048
    with pytest.raises(TooLarge, match=r"^over\.txt: each file must be at most 2 KB$"):
        check((b"a" * 2049, "over.txt"))


def test_a_seekable_upload_is_not_copied(alpha: dict[str, Any]) -> None:
    stream = io.BytesIO(b"spooled by werkzeug\n")
    [item] = attachments.check_uploads([IncomingFile("a.txt", stream)], existing_ticket_bytes=0)
    assert item.stream is stream and stream.tell() == 0


def test_too_many_files_in_one_message(alpha: dict[str, Any]) -> None:
    with pytest.raises(TooLarge) as caught:
        check(*[(b"x\n", f"{n}.txt") for n in range(11)])
    assert str(caught.value) == "attach at most 10 files to one message (this one has 11)"


def test_the_ticket_total_is_checked_before_and_again_under_a_lock(
    session: Session, alpha: dict[str, Any], monkeypatch: pytest.MonkeyPatch, app: Flask
) -> None:
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 2048)
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_TICKET_BYTES", 3072)
    store(session, alpha, (b"a" * 2048, "first.txt"))
    used = attachments.ticket_bytes(session, alpha["ticket"])
    assert used == 2048
    expected = ("a ticket may hold at most 3 KB of attachments: this one has 2 KB already and "
                "these files add 1.5 KB")  # fmt: skip
    with pytest.raises(TooLarge) as caught:
        check((b"b" * 1536, "second.txt"), existing=used)
    assert str(caught.value) == expected
    stale = check((b"b" * 1536, "second.txt"), existing=0)  # a check that raced another upload
    with pytest.raises(TooLarge) as caught:
        attachments.store_uploads(session, alpha["agent"], alpha["ticket"], stale)
    assert str(caught.value) == expected
    session.rollback()
    assert len(attachment_rows(session, alpha["org"].id)) == 1


def test_uploads_switched_off(
    alpha: dict[str, Any], monkeypatch: pytest.MonkeyPatch, app: Flask
) -> None:
    monkeypatch.setitem(app.config, "UPLOADS_ENABLED", False)
    with pytest.raises(Unavailable, match="uploads are switched off"):
        check((b"x\n", "a.txt"))
    assert attachments.check_uploads([], existing_ticket_bytes=0) == []
