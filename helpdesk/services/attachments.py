"""Attachments in and out: limits while streaming, sniffed types, dedupe, permissions.

Why it is built this way (SECURITY.md class 3, uploads):

* `check_uploads` (services/upload_checks.py, re-exported here) reads each file once, in
  chunks, counting, hashing and sniffing as it goes; it stops at the first byte over a
  limit and never holds a whole file in memory. Everything that can be refused is refused
  there, before any byte reaches storage.
* `store_uploads` writes objects under random org-prefixed keys, then adds the rows to the
  caller's transaction and queues their scans after the commit. A storage failure removes
  what this call already wrote and raises `StorageError`: the caller rolls back and
  answers 503. Objects written for a transaction that rolls back are deleted again, so
  neither rows nor orphaned objects are left behind.
* Identical content in one org shares one stored object; content already found infected
  is refused at once with the signature (services/attachment_objects.py).
* Reads go through `load_attachment`, which asks the one permission function for tickets
  (`can_view_ticket`) and hides files of internal notes from requesters; anything not
  visible is NotFound, never Forbidden. Only `clean` files (or `unscanned` ones outside
  production) are handed out, with headers that keep browsers from rendering them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Attachment, Comment, Membership, ScanStatus, Ticket
from helpdesk.services import attachment_objects as objects
from helpdesk.services import tasks
from helpdesk.services.errors import Conflict, NotFound, ValidationError
from helpdesk.services.filetypes import MARKUP_TYPES, SERVABLE_TYPES
from helpdesk.services.permissions import can_see_internal, can_view_ticket
from helpdesk.services.upload_checks import (
    CHUNK,
    UPLOADS_OFF,
    IncomingFile,
    Prepared,
    TooLarge,
    Unavailable,
    check_uploads,
    release,
    require_uploads_enabled,
    size_text,
    ticket_limit_message,
)
from helpdesk.storage import Storage, content_disposition, get_storage

__all__ = [
    "CHUNK",
    "UPLOADS_OFF",
    "Download",
    "IncomingFile",
    "Prepared",
    "TooLarge",
    "Unavailable",
    "attach_to_message",
    "check_uploads",
    "download",
    "list_for_ticket",
    "load_attachment",
    "load_public_on_ticket",
    "refusal",
    "release",
    "require_uploads_enabled",
    "settled",
    "size_text",
    "store_uploads",
    "ticket_bytes",
]

ID_MAX = 2**63 - 1  # attachments.id is a PostgreSQL bigint
SCAN_JOB = "jobs.scan.scan"
DOWNLOADS_OFF = "downloads are switched off for now: try again later"
log = logging.getLogger(__name__)


def _config(name: str) -> Any:
    return current_app.config[name]


@dataclass
class Download:
    """How to hand out one file: a presigned `url`, or `open()` and stream with `headers`."""

    attachment: Attachment
    url: str | None
    expires_at: datetime | None
    headers: dict[str, str]
    storage: Storage = field(repr=False)

    def open(self) -> AbstractContextManager[BinaryIO]:
        """Open the stored object for streaming (raises StorageError)."""
        return self.storage.open(self.attachment.storage_key)


def ticket_bytes(session: Session, ticket: Ticket) -> int:
    """Bytes of files already attached to the ticket (what the per-ticket limit counts)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Attachment.size), 0)).where(Attachment.ticket_id == ticket.id)
    )
    return int(total or 0)


# --- storing --------------------------------------------------------------------------------


def _initial_status() -> str:
    return ScanStatus.PENDING.value if _config("CLAMD_URL") else ScanStatus.UNSCANNED.value


def _check_ticket_total(session: Session, ticket: Ticket, added: int) -> None:
    """Re-check the per-ticket total under a row lock (two uploads at once cannot pass it)."""
    session.execute(select(Ticket.id).where(Ticket.id == ticket.id).with_for_update())
    used = ticket_bytes(session, ticket)
    limit = int(_config("ATTACHMENT_MAX_TICKET_BYTES"))
    if used + added > limit:
        raise TooLarge(ticket_limit_message(limit, used, added))


def store_uploads(
    session: Session,
    actor: Membership,
    ticket: Ticket,
    prepared: Sequence[Prepared],
    *,
    comment: Comment | None = None,
    internal: bool = False,
) -> list[Attachment]:
    """Store checked files on the ticket (and comment) in the caller's transaction.

    Rows are added (not committed); scans are queued for after the commit. Raises
    ValidationError (internal files by requesters, content blocked earlier), TooLarge (the
    ticket's total), Unavailable (uploads switched off) or StorageError (nothing stored).
    """
    if not prepared:
        return []
    require_uploads_enabled()
    if not can_view_ticket(actor, ticket):
        raise NotFound(f"ticket #{ticket.number} not found")
    if comment is not None:
        internal = comment.internal
    if internal and not can_see_internal(actor):
        raise ValidationError({"internal": "only agents can attach files to internal notes"})
    try:
        rows = _store(session, actor, ticket, prepared, comment, internal)
    finally:
        release(prepared)
    log.info("attachments_stored org=%s ticket=%s ids=%s bytes=%d", ticket.org_id, ticket.id,
             [r.id for r in rows], sum(r.size for r in rows))  # fmt: skip
    return rows


def _store(
    session: Session,
    actor: Membership,
    ticket: Ticket,
    prepared: Sequence[Prepared],
    comment: Comment | None,
    internal: bool,
) -> list[Attachment]:
    _check_ticket_total(session, ticket, sum(p.size for p in prepared))
    objects.refuse_blocked(session, prepared)
    storage = get_storage(current_app)
    known = objects.known_objects(session, prepared)
    initial = _initial_status()
    placed, written = objects.put_objects(storage, ticket.org_id, prepared, known, initial)
    objects.track_written(session, storage, written)
    rows: list[Attachment] = []
    for item, found in zip(prepared, placed, strict=True):
        status, scanned_at = objects.status_for(found, initial)
        rows.append(Attachment(
            org_id=ticket.org_id, ticket_id=ticket.id,
            comment_id=comment.id if comment is not None else None,
            uploader_id=actor.user_id, internal=internal, filename=item.filename,
            content_type=item.content_type, size=item.size, sha256=item.sha256,
            storage_key=found.key, scan_status=status, scanned_at=scanned_at,
        ))  # fmt: skip
    session.add_all(rows)
    session.flush()
    for row in rows:
        if row.scan_status == ScanStatus.PENDING.value:
            tasks.after_commit(session, SCAN_JOB, row.org_id, row.id, queue="scan")
    return rows


def attach_to_message(
    session: Session,
    actor: Membership,
    ticket: Ticket,
    comment: Comment,
    uploads: Sequence[Prepared],
) -> list[Attachment]:
    """Store a new message's files with it (tickets.open_ticket, tickets.add_comment).

    The ticket service owns that transaction, so a failure here rolls all of it back: a
    message is never saved without the files it was sent with.
    """
    if not uploads:
        return []
    try:
        session.flush()  # the comment's id
        return store_uploads(session, actor, ticket, uploads, comment=comment)
    except BaseException:
        session.rollback()
        raise


# --- reading --------------------------------------------------------------------------------


def list_for_ticket(session: Session, actor: Membership, ticket: Ticket) -> list[Attachment]:
    """The ticket's files the actor may see, oldest first (requesters: no internal ones)."""
    if not can_view_ticket(actor, ticket):
        raise NotFound(f"ticket #{ticket.number} not found")
    stmt = select(Attachment).where(Attachment.ticket_id == ticket.id)
    if not can_see_internal(actor):
        stmt = stmt.where(Attachment.internal.is_(False))
    return list(session.scalars(stmt.order_by(Attachment.created_at, Attachment.id)))


def load_attachment(session: Session, actor: Membership, attachment_id: int) -> Attachment:
    """Return the attachment if the actor may see its ticket (and it, if internal)."""
    missing = NotFound(f"attachment {attachment_id} not found")
    if not 0 < attachment_id <= ID_MAX:
        raise missing
    attachment = session.get(Attachment, attachment_id)
    if attachment is None:
        raise missing
    ticket = session.get(Ticket, attachment.ticket_id)
    if ticket is None or not can_view_ticket(actor, ticket):
        raise missing
    if attachment.internal and not can_see_internal(actor):
        raise missing
    return attachment


def settled(attachment: Attachment) -> bool:
    """True once the scan state will not change by itself (the badge stops polling)."""
    return attachment.scan_status in (ScanStatus.CLEAN, ScanStatus.INFECTED, ScanStatus.UNSCANNED)


def refusal(attachment: Attachment) -> str | None:
    """Why the file may not be downloaded now; None when it may."""
    status = attachment.scan_status
    if status == ScanStatus.CLEAN:
        return None
    if status == ScanStatus.UNSCANNED:
        if current_app.config["HELPDESK_ENV"] != "production":
            return None
        return "this file was never scanned for viruses, so it cannot be downloaded"
    if status == ScanStatus.INFECTED:
        return f"this file was blocked by the virus scanner: {attachment.signature or 'malware'}"
    if status == ScanStatus.ERROR:
        return ("the virus scan of this file failed; it is retried automatically and can be "
                "downloaded once it is found clean")  # fmt: skip
    return "this file is still being scanned for viruses: try again in a moment"


def served_type(content_type: str) -> str:
    """The Content-Type to serve: the sniffed type, never markup, unknown → octet-stream."""
    base = content_type.split(";", 1)[0].strip().lower()
    if base in MARKUP_TYPES or base not in SERVABLE_TYPES:
        return "application/octet-stream"
    return content_type


def download_headers(attachment: Attachment) -> dict[str, str]:
    """Headers for a file the app streams: a download, never rendered, never cached."""
    return {
        "Content-Type": served_type(attachment.content_type),
        "Content-Disposition": content_disposition(attachment.filename),
        "Content-Length": str(attachment.size),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
    }


def load_public_on_ticket(
    session: Session, actor: Membership, ticket: Ticket, attachment_id: int
) -> Attachment:
    """Return a non-internal file of this ticket (the requester's page of one ticket)."""
    attachment = load_attachment(session, actor, attachment_id)
    if attachment.ticket_id != ticket.id or attachment.internal:
        raise NotFound(f"attachment {attachment_id} not found")
    return attachment


def download(
    session: Session,
    actor: Membership,
    attachment_id: int,
    now: datetime,
    *,
    on_ticket: Ticket | None = None,
) -> Download:
    """Authorize a download: a presigned URL (S3) or what the app needs to stream (disk).

    With `on_ticket`, only that ticket's non-internal files qualify (the requester's page).
    Raises Unavailable (switched off), NotFound (not visible), Conflict (not clean: the
    message names the state) or StorageError (storage unreachable).
    """
    if not _config("DOWNLOADS_ENABLED"):
        raise Unavailable(DOWNLOADS_OFF)
    if on_ticket is not None:
        attachment = load_public_on_ticket(session, actor, on_ticket, attachment_id)
    else:
        attachment = load_attachment(session, actor, attachment_id)
    reason = refusal(attachment)
    if reason is not None:
        raise Conflict(reason)
    storage = get_storage(current_app)
    ttl = int(_config("DOWNLOAD_URL_TTL"))
    url = storage.presigned_get(
        attachment.storage_key,
        filename=attachment.filename,
        content_type=served_type(attachment.content_type),
        ttl=ttl,
    )
    expires_at = now + timedelta(seconds=ttl) if url is not None else None
    return Download(attachment, url, expires_at, download_headers(attachment), storage)
