"""The scan state machine of an attachment: claim, stream to clamd, record, retry, re-arm.

Why the state lives on the row: a queue entry can be lost (Redis restarted, a worker killed),
the row cannot, and the row is what the download path checks. The states
(`models.attachment.ScanStatus`):

* `pending` — waiting for a scan, or being scanned. A scan job *claims* the row with
  `SELECT … WHERE scan_status = 'pending' FOR UPDATE SKIP LOCKED` and keeps that lock while it
  copies the object to a local temporary file, streams it to clamd (≈5 ms per MB) and checks
  the ZIPs clamd only half-scans (`scanning.archive_problem`). A second job for the same
  attachment finds it locked (or, later, settled) and records nothing; a killed worker's
  lock dies with its connection. Only `pending` rows are ever scanned.
* `clean` / `unscanned` — downloadable (`unscanned` only in development without CLAMD_URL).
* `infected` — the object is quarantined (or deleted), the signature recorded, an outbox
  `attachment.infected` event (admins are emailed, webhooks fire) and a ticket history row
  (`attachment`: `<filename>` → `blocked: <signature>`) are written in the same transaction.
  Rows sharing the stored object (identical content) are blocked with it.
* `error` — the scan failed (clamd down, timeout, limits, storage unreadable). Fail closed:
  not downloadable. `relay` (every 30 s, jobs/cron.py) re-arms it as `pending` and queues a
  scan after 30 s, 2 min, 10 min and 30 min; after MAX_ATTEMPTS it stays `error` with an
  alarm (log line at ERROR, the `helpdesk_attachment_scans_given_up` metric) until an
  operator runs `flask --app wsgi attachments rescan --status error`.

`scanned_at` is when the last verdict was recorded, or when the relay or a rescan last queued
the row (so the relay queues each row at most once per LOST_AFTER).
"""

from __future__ import annotations

import logging
import tempfile
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Attachment, EventKind, ScanStatus, Ticket, TicketEvent
from helpdesk.scanning import ScanResult, archive_problem, scan_stream
from helpdesk.services import audit, outbox
from helpdesk.storage import StorageError

SCAN_JOB = "jobs.scan.scan"
BACKOFF_SECONDS = (30, 120, 600, 1800)  # wait after the 1st, 2nd, 3rd, 4th failed attempt
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
LOST_AFTER = timedelta(minutes=2)  # a pending row queued this long ago lost its job
COPY_CHUNK = 1024 * 1024
ARCHIVE_FACTOR = 4  # archives may expand to this many times ATTACHMENT_MAX_BYTES (MaxScanSize)
ERROR_MAX = 1000
log = logging.getLogger(__name__)


class ScanSource(Protocol):
    """The part of `helpdesk.storage.Storage` a scan uses."""

    def open(self, key: str) -> AbstractContextManager[BinaryIO]: ...

    def quarantine(self, key: str) -> bool: ...


@dataclass(frozen=True)
class ScanSettings:
    """What a scan needs from the app's config."""

    clamd_url: str
    max_bytes: int
    production: bool
    timeout: float = 30.0

    @classmethod
    def from_config(cls, config: Any) -> ScanSettings:
        """Read CLAMD_URL, ATTACHMENT_MAX_BYTES and HELPDESK_ENV from a Flask config."""
        return cls(
            clamd_url=str(config.get("CLAMD_URL") or ""),
            max_bytes=int(config["ATTACHMENT_MAX_BYTES"]),
            production=config.get("HELPDESK_ENV") == "production",
        )


def backoff(attempts: int) -> timedelta:
    """Return the wait after the `attempts`-th failed attempt."""
    step = BACKOFF_SECONDS[min(max(attempts, 1), len(BACKOFF_SECONDS)) - 1]
    return timedelta(seconds=step)


def claim(session: Session, attachment_id: int) -> Attachment | None:
    """Lock a pending attachment for one scan attempt; None if settled or being scanned."""
    stmt = (
        select(Attachment)
        .where(Attachment.id == attachment_id, Attachment.scan_status == ScanStatus.PENDING)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return session.scalars(stmt).one_or_none()


def scan_attachment(
    session: Session,
    attachment_id: int,
    settings: ScanSettings,
    storage: ScanSource,
    now: datetime | None = None,
) -> str | None:
    """Claim, scan and record one attachment; commit; return its new status (None: not ours)."""
    attachment = claim(session, attachment_id)
    if attachment is None:
        session.rollback()
        log.info("attachment_scan_skipped attachment_id=%s (settled or being scanned)",
                 attachment_id)  # fmt: skip
        return None
    attachment.scan_attempts += 1
    if not settings.clamd_url and not settings.production:
        _record_unscanned(attachment, now or utcnow())
        session.commit()
        log.warning("attachment_unscanned attachment_id=%s (CLAMD_URL is empty)", attachment.id)
        return attachment.scan_status
    result = _scan(attachment, settings, storage)
    return record(session, attachment, result, storage, now or utcnow())


def _scan(attachment: Attachment, settings: ScanSettings, storage: ScanSource) -> ScanResult:
    """Stream the stored object to clamd; every failure becomes an "error" result."""
    if not settings.clamd_url:
        return ScanResult("error", None, "CLAMD_URL is not set: files cannot be scanned")
    if attachment.size > settings.max_bytes:
        return ScanResult(
            "error",
            None,
            f"the file ({attachment.size} bytes) is over ATTACHMENT_MAX_BYTES "
            f"({settings.max_bytes}): not scanned, so never served",
        )
    try:
        with storage.open(attachment.storage_key) as stream, tempfile.TemporaryFile() as copy:
            return _scan_copy(stream, copy, attachment.size, settings)
    except StorageError as exc:
        return ScanResult("error", None, f"could not read the stored file: {exc}")
    except Exception as exc:  # fail closed: a bug or a job timeout is a failed scan
        log.exception("attachment_scan_crashed attachment_id=%s", attachment.id)
        return ScanResult("error", None, f"internal error while scanning ({type(exc).__name__})")


def _scan_copy(stream: BinaryIO, copy: BinaryIO, size: int, settings: ScanSettings) -> ScanResult:
    """Copy the object to a local file (archives need seeking), scan it, then check archives."""
    copied = 0
    while copied <= size and (chunk := stream.read(COPY_CHUNK)):
        copy.write(chunk)
        copied += len(chunk)
    if copied != size:
        detail = f"the stored file does not have the {size} bytes recorded for it: not scanned"
        return ScanResult("error", None, detail)
    copy.seek(0)
    result = scan_stream(settings.clamd_url, copy, timeout=settings.timeout)
    if result.status != "clean":
        return result
    problem = archive_problem(
        copy, member_limit=settings.max_bytes, total_limit=ARCHIVE_FACTOR * settings.max_bytes
    )
    if problem:
        return ScanResult("error", None, f"clamd said OK, but {problem}")
    return result


def _record_unscanned(attachment: Attachment, now: datetime) -> None:
    attachment.scan_status = ScanStatus.UNSCANNED.value
    attachment.scan_error = "not scanned: CLAMD_URL is empty (development only)"
    attachment.signature = None
    attachment.scanned_at = now


def record(
    session: Session,
    attachment: Attachment,
    result: ScanResult,
    storage: ScanSource,
    now: datetime,
) -> str:
    """Write a claimed attachment's verdict (and its consequences); commit; return the status."""
    attachment.scanned_at = now
    if result.status == "clean":
        attachment.scan_status = ScanStatus.CLEAN.value
        attachment.scan_error = None
        attachment.signature = None
        log.info("attachment_scanned attachment_id=%s status=clean", attachment.id,
                 extra={"event": "attachment.scanned", "attachment_id": attachment.id,
                        "org_id": attachment.org_id, "scan_status": "clean"})  # fmt: skip
    elif result.status == "infected":
        _record_infected(session, attachment, result.signature or "unknown", storage, now)
    else:
        _record_error(attachment, result.detail, now)
    if result.status != "infected":  # infected rows and their twins: in _record_infected
        _audit_verdict(session, attachment)
    session.commit()
    return attachment.scan_status


def _audit_verdict(session: Session, row: Attachment) -> None:
    audit.record(session, row.org_id, "attachment.scanned", target_type="attachment",
                 target_id=row.id, data={"status": row.scan_status, "signature": row.signature,
                 "ticket_id": row.ticket_id, "attempt": row.scan_attempts})  # fmt: skip


def _record_error(attachment: Attachment, detail: str, now: datetime) -> None:
    attachment.scan_status = ScanStatus.ERROR.value
    attachment.scan_error = detail[:ERROR_MAX]
    attempts = attachment.scan_attempts
    if attempts >= MAX_ATTEMPTS:
        log.error(
            "attachment_scan_gave_up attachment_id=%s org_id=%s attempts=%s error=%r: the file "
            "stays blocked; once clamd works run `flask --app wsgi attachments rescan "
            "--status error`",
            attachment.id, attachment.org_id, attempts, detail,
            extra={"event": "attachment.scan_gave_up", "attachment_id": attachment.id,
                   "org_id": attachment.org_id, "attempts": attempts, "error": detail},
        )  # fmt: skip
        return
    retry_at = now + backoff(attempts)
    log.warning(
        "attachment_scan_failed attachment_id=%s attempt=%s/%s error=%r retry_at=%s",
        attachment.id, attempts, MAX_ATTEMPTS, detail, retry_at.isoformat(timespec="seconds"),
        extra={"event": "attachment.scan_failed", "attachment_id": attachment.id,
               "org_id": attachment.org_id, "attempt": attempts, "max_attempts": MAX_ATTEMPTS,
               "error": detail, "retry_at": retry_at},
    )  # fmt: skip


def _record_infected(
    session: Session, attachment: Attachment, signature: str, storage: ScanSource, now: datetime
) -> None:
    """Block the file and every row sharing its object; quarantine it; audit and announce."""
    siblings = session.scalars(
        select(Attachment)
        .where(
            Attachment.storage_key == attachment.storage_key,
            Attachment.id != attachment.id,
            Attachment.scan_status != ScanStatus.INFECTED,
        )
        .with_for_update(skip_locked=True)
    ).all()
    try:
        moved = storage.quarantine(attachment.storage_key)
        note = None
    except StorageError as exc:  # the row still blocks it: downloads check the status
        moved = False
        note = f"infected; removing the stored object failed ({exc}): it is never served"
        log.error("attachment_quarantine_failed attachment_id=%s key=%s error=%s",
                  attachment.id, attachment.storage_key, exc)  # fmt: skip
    for row in (attachment, *siblings):
        row.scan_status = ScanStatus.INFECTED.value
        row.signature = signature[:200]
        row.scan_error = note
        row.scanned_at = now
        _announce(session, row, signature, moved)
        _audit_verdict(session, row)
    log.warning("attachment_infected attachment_id=%s org_id=%s signature=%s quarantined=%s "
                "shared_rows=%s", attachment.id, attachment.org_id, signature, moved,
                len(siblings), extra={"event": "attachment.infected",
                "attachment_id": attachment.id, "org_id": attachment.org_id,
                "signature": signature, "quarantined": moved,
                "shared_rows": len(siblings)})  # fmt: skip


def _announce(session: Session, attachment: Attachment, signature: str, moved: bool) -> None:
    ticket = session.get(Ticket, attachment.ticket_id)
    session.add(
        TicketEvent(
            org_id=attachment.org_id,
            ticket_id=attachment.ticket_id,
            actor_id=None,
            field="attachment",
            old_value=attachment.filename,
            new_value=f"blocked: {signature}",
        )
    )
    outbox.emit(
        session,
        attachment.org_id,
        EventKind.ATTACHMENT_INFECTED,
        ticket=ticket,
        payload={
            "attachment_id": attachment.id,
            "filename": attachment.filename,
            "signature": signature,
            "quarantined": moved,
            "uploader_id": attachment.uploader_id,
        },
    )
