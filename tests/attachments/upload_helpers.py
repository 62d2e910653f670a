"""Shared pieces of the upload and download tests: rows, API tokens and sample files.

The sample files are real files of each type, built here byte by byte.
"""

from __future__ import annotations

import gzip
import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Attachment, Membership
from helpdesk.services import api_tokens, attachments
from helpdesk.services.permissions import load_ticket
from helpdesk.tenancy import tenant_scope

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def stored_objects(root: Path) -> list[Path]:
    """Every object file under the storage root (not quarantined, not temporary)."""
    if not root.exists():
        return []
    found = (p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    return sorted(p for p in found if "_quarantine" not in p.parts)


def bearer(session: Session, member: Membership) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "attachment tests")
    return {"Authorization": f"Bearer {plaintext}"}


def attachment_rows(session: Session, org_id: int) -> list[Attachment]:
    session.expire_all()
    with tenant_scope(session, org_id):
        return list(session.scalars(select(Attachment).order_by(Attachment.id)))


def set_scan(
    session: Session, org_id: int, attachment_id: int, status: str, signature: str | None = None
) -> None:
    """Record a scan verdict directly (the scan job's own tests cover how it gets there)."""
    with tenant_scope(session, org_id):
        row = session.get(Attachment, attachment_id)
        assert row is not None
        row.scan_status, row.signature = status, signature
        session.commit()


def multipart(*files: tuple[bytes, str], **fields: Any) -> dict[str, Any]:
    """A form for the test client: repeated `file` parts plus text fields."""
    return {"file": [(io.BytesIO(data), name) for data, name in files], **fields}


# --- sample files ---------------------------------------------------------------------------


def png() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))  # fmt: skip


def jpeg() -> bytes:
    return (
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
        + b"\0" * 64
        + (b"\xff\xd9")
    )


def gif() -> bytes:
    return b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"  # noqa: E501


def webp() -> bytes:
    payload = b"WEBPVP8 " + struct.pack("<I", 10) + b"\0" * 10
    return b"RIFF" + struct.pack("<I", len(payload)) + payload


def pdf(text: str = "hello") -> bytes:
    return f"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\n% {text}\ntrailer<<>>\n%%EOF\n".encode()


def office(main_part: str) -> bytes:
    """An OOXML package (docx: word/document.xml, xlsx: xl/workbook.xml, …)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships/>')
        archive.writestr(main_part, '<?xml version="1.0"?><document/>')
    return out.getvalue()


def opendocument(kind: str) -> bytes:
    """An ODF package: an uncompressed `mimetype` entry first (kind: text, spreadsheet)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), f"application/vnd.oasis.opendocument.{kind}",
                         compress_type=zipfile.ZIP_STORED)  # fmt: skip
        archive.writestr("content.xml", '<?xml version="1.0"?><office:document-content/>')
    return out.getvalue()


def plain_zip(name: str = "notes.txt", data: bytes = b"inside") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return out.getvalue()


def gz() -> bytes:
    return gzip.compress(b"log line\n" * 20)


def seven_z() -> bytes:
    return b"7z\xbc\xaf\x27\x1c\x00\x04" + b"\x00" * 24


def eml() -> bytes:
    return (b"From: Ann <ann@example.test>\r\nTo: help@example.test\r\nSubject: Printer\r\n"
            b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n\r\n"
            b"It is on fire.\r\n")  # fmt: skip


def attach(
    app: Flask,
    session: Session,
    member: Membership,
    number: int,
    data: bytes,
    name: str,
    *,
    internal: bool = False,
    status: str = "clean",
    signature: str | None = None,
) -> int:
    """Attach a file to ticket `number` through the service; record a scan verdict."""
    with app.app_context(), tenant_scope(session, member.org_id):
        ticket = load_ticket(session, member, number)
        incoming = [attachments.IncomingFile(name, io.BytesIO(data))]
        prepared = attachments.check_uploads(incoming, existing_ticket_bytes=0)
        [row] = attachments.store_uploads(session, member, ticket, prepared, internal=internal)
        row.scan_status, row.signature = status, signature
        session.commit()
        return row.id
