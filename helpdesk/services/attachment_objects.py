"""Stored objects of attachments: shared by identical content, never left orphaned.

Why: identical content in one org is stored once (a second upload of the same file gets a
new row pointing at the same key), and content the scanner found infected is refused at
once. Objects are written before the rows exist, so a write that fails removes what it
already wrote, and objects written for a transaction that then rolls back are deleted by a
session hook: storage never keeps a file no row points at.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, event, select
from sqlalchemy.orm import Session

from helpdesk.models import Attachment, ScanStatus
from helpdesk.services.errors import ValidationError
from helpdesk.storage import Storage, StorageError, new_key

if TYPE_CHECKING:
    from helpdesk.services.upload_checks import Prepared

STORAGE_DOWN = "file storage is unavailable, nothing was saved"
WRITTEN_KEY = "helpdesk.attachments_written"  # session.info: objects this transaction stored
log = logging.getLogger(__name__)


@dataclass
class Known:
    """Where identical content is already stored, and its scan state."""

    key: str
    status: str
    scanned_at: datetime | None


def refuse_blocked(session: Session, prepared: Sequence[Prepared]) -> None:
    """Refuse content this org's scanner already found infected, naming the signature."""
    hashes = {p.sha256 for p in prepared}
    rows = session.execute(
        select(Attachment.sha256, Attachment.signature).where(
            Attachment.sha256.in_(hashes), Attachment.scan_status == ScanStatus.INFECTED.value
        )
    ).all()
    blocked = {sha: signature or "malware" for sha, signature in rows}
    problems = [f"{p.filename}: this file was blocked earlier: {blocked[p.sha256]}"
                for p in prepared if p.sha256 in blocked]  # fmt: skip
    if problems:
        raise ValidationError({"files": "; ".join(problems)})


def known_objects(session: Session, prepared: Sequence[Prepared]) -> dict[str, Known]:
    """Stored objects with the same content in this org (clean ones preferred)."""
    reusable = (ScanStatus.CLEAN, ScanStatus.PENDING, ScanStatus.ERROR, ScanStatus.UNSCANNED)
    clean_first = case((Attachment.scan_status == ScanStatus.CLEAN.value, 0), else_=1)
    rows = session.execute(
        select(Attachment.sha256, Attachment.storage_key, Attachment.scan_status,
               Attachment.scanned_at)
        .where(Attachment.sha256.in_({p.sha256 for p in prepared}),
               Attachment.scan_status.in_([s.value for s in reusable]))
        .order_by(clean_first, Attachment.id.desc())
    ).all()  # fmt: skip
    known: dict[str, Known] = {}
    for sha, key, status, scanned_at in rows:
        known.setdefault(sha, Known(key, status, scanned_at))
    return known


def put_objects(
    storage: Storage,
    org_id: int,
    prepared: Sequence[Prepared],
    known: dict[str, Known],
    initial_status: str,
) -> tuple[list[Known], list[str]]:
    """Store each file (or reuse an object with the same content); all or nothing.

    Returns where each file is, and the keys written now.
    """
    written: list[str] = []
    placed: list[Known] = []
    try:
        for item in prepared:
            found = known.get(item.sha256)
            if found is not None and (found.key in written or storage.exists(found.key)):
                placed.append(found)
                continue
            key = new_key(org_id)
            item.stream.seek(0)
            storage.put(key, item.stream, item.size, item.content_type)
            written.append(key)
            known[item.sha256] = Known(key, initial_status, None)
            placed.append(known[item.sha256])
    except StorageError as exc:
        _remove(storage, written)
        log.warning("upload_storage_failed org=%s files=%d error=%s", org_id, len(prepared), exc)
        raise StorageError(STORAGE_DOWN) from exc
    return placed, written


def _forget_on_commit(session: Session) -> None:
    session.info.pop(WRITTEN_KEY, None)


def _remove_unless_committed(session: Session, transaction: Any) -> None:
    """At the end of the outermost transaction: delete what a commit did not keep."""
    if transaction.parent is None:  # rollback, or close without commit (not a savepoint)
        for storage, keys in session.info.pop(WRITTEN_KEY, []):
            _remove(storage, keys)


def track_written(session: Session, storage: Storage, keys: list[str]) -> None:
    """Delete these new objects again unless the caller's transaction commits."""
    if not keys:
        return
    if not event.contains(session, "after_commit", _forget_on_commit):
        event.listen(session, "after_commit", _forget_on_commit)
        event.listen(session, "after_transaction_end", _remove_unless_committed)
    session.info.setdefault(WRITTEN_KEY, []).append((storage, keys))


def _remove(storage: Storage, keys: Sequence[str]) -> None:
    for key in keys:
        try:
            storage.delete(key)
        except StorageError as exc:  # storage is failing anyway: the object stays orphaned
            log.warning("upload_cleanup_failed key=%s error=%s", key, exc)


def status_for(found: Known, initial_status: str) -> tuple[str, datetime | None]:
    """A new row's scan state: a clean twin's verdict holds for identical bytes."""
    if found.status == ScanStatus.CLEAN.value:
        return found.status, found.scanned_at
    return initial_status, None
