"""Checking uploads before anything is stored: limits while streaming, hash, sniffed type.

Why: an upload is refused as early and as cheaply as possible, and never held in memory.
`check_uploads` reads each file once, in chunks, counting, hashing (SHA-256) and sniffing
as it goes, and stops at the first byte over the per-file limit. A seekable stream (what
Werkzeug spools a multipart part into) is checked in place; anything else is copied into a
temporary file that spills to disk past SPOOL_MEMORY. Every problem is named with its file;
the count and size limits answer 413 (`TooLarge`) with the limit in the message. The
public names are re-exported by `services.attachments`.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO, cast

from flask import current_app

from helpdesk.services.errors import DomainError, ValidationError
from helpdesk.services.filenames import display_name
from helpdesk.services.filetypes import HEAD_BYTES, RefusedType, TextProbe, identify

CHUNK = 64 * 1024
SPOOL_MEMORY = 512 * 1024  # a copied upload spills to a temporary file beyond this
UPLOADS_OFF = "uploads are switched off for now: send your message without files, or try later"
MIB = 1024 * 1024


class TooLarge(DomainError):
    """A file, the number of files or a ticket's total is over its limit (HTTP 413)."""


class Unavailable(DomainError):
    """Uploads or downloads are switched off by the incident switch (HTTP 503)."""


@dataclass
class IncomingFile:
    """One file as a client sent it; the name and type are only hints."""

    filename: str
    stream: IO[bytes]
    declared_type: str | None = None


@dataclass
class Prepared:
    """A checked file, ready to store: display name, sniffed type, size and hash."""

    filename: str
    content_type: str
    size: int
    sha256: str
    stream: BinaryIO = field(repr=False)  # seekable; read again from the start to store
    owned: bool = field(default=False, repr=False)  # a temporary copy this module must close

    def close(self) -> None:
        """Release the temporary copy of an unseekable upload (the client's stream stays)."""
        if self.owned:
            self.stream.close()


def size_text(size: int) -> str:
    """Say a byte count as people read it: 25 MB, 1.5 MB, 800 KB, 12 bytes."""
    if size >= MIB:
        return f"{size / MIB:.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{size} byte{'s' if size != 1 else ''}"


def _config(name: str) -> Any:
    return current_app.config[name]


def require_uploads_enabled() -> None:
    """Raise Unavailable while the incident switch turns uploads off."""
    if not _config("UPLOADS_ENABLED"):
        raise Unavailable(UPLOADS_OFF)


def _rewindable(stream: BinaryIO) -> bool:
    try:
        return stream.seekable() and stream.tell() == 0
    except (OSError, ValueError):
        return False


def _prepare(incoming: IncomingFile, max_bytes: int) -> Prepared:
    """Read one file in chunks: size limit, hash and type, copying it only if unseekable."""
    name = display_name(incoming.filename)
    source = cast(BinaryIO, incoming.stream)
    copy: BinaryIO | None = None
    if not _rewindable(source):
        copy = cast(BinaryIO, tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY))  # noqa: SIM115
    try:
        return _read(name, source, copy, max_bytes)
    except BaseException:
        if copy is not None:
            copy.close()
        raise


def _read(name: str, source: BinaryIO, copy: BinaryIO | None, max_bytes: int) -> Prepared:
    hasher, probe, head, size = hashlib.sha256(), TextProbe(), bytearray(), 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise TooLarge(f"{name}: each file must be at most {size_text(max_bytes)}")
        hasher.update(chunk)
        probe.feed(chunk)
        if len(head) < HEAD_BYTES:
            head += chunk[: HEAD_BYTES - len(head)]
        if copy is not None:
            copy.write(chunk)
    probe.feed(b"", final=True)
    if size == 0:
        raise ValidationError({"files": f"{name}: the file is empty"})
    stream = copy if copy is not None else source
    try:
        kind = identify(name, bytes(head), probe, stream, size)
    except RefusedType as exc:
        raise ValidationError({"files": f"{name}: {exc}"}) from None
    stream.seek(0)
    return Prepared(name, kind.content_type, size, hasher.hexdigest(), stream, copy is not None)


def ticket_limit_message(limit: int, used: int, added: int) -> str:
    """Say why files do not fit on a ticket any more (the per-ticket limit)."""
    return (
        f"a ticket may hold at most {size_text(limit)} of attachments: this one has "
        f"{size_text(used)} already and these files add {size_text(added)}"
    )


def check_uploads(files: Sequence[IncomingFile], *, existing_ticket_bytes: int) -> list[Prepared]:
    """Check every file against the limits and the type allow-list; store nothing.

    Raises TooLarge (413) for the file count, a file's size or the ticket's total, and
    ValidationError({"files": …}) for empty, refused or mistyped files (all of them named).
    """
    if not files:
        return []
    require_uploads_enabled()
    max_files = int(_config("ATTACHMENT_MAX_FILES"))
    if len(files) > max_files:
        raise TooLarge(f"attach at most {max_files} files to one message (this one has "
                       f"{len(files)})")  # fmt: skip
    max_bytes = int(_config("ATTACHMENT_MAX_BYTES"))
    prepared: list[Prepared] = []
    problems: list[str] = []
    try:
        for incoming in files:
            try:
                prepared.append(_prepare(incoming, max_bytes))
            except ValidationError as exc:
                problems.append(exc.errors["files"])
        if problems:
            raise ValidationError({"files": "; ".join(problems)})
        added = sum(p.size for p in prepared)
        limit = int(_config("ATTACHMENT_MAX_TICKET_BYTES"))
        if existing_ticket_bytes + added > limit:
            raise TooLarge(ticket_limit_message(limit, existing_ticket_bytes, added))
    except BaseException:
        release(prepared)
        raise
    return prepared


def release(prepared: Sequence[Prepared]) -> None:
    """Close the temporary copies behind checked files (store_uploads does it when done)."""
    for item in prepared:
        item.close()
