"""The scan queue's cross-org side: retries, lost scans, rescans and the backlog for metrics.

Every function here runs on an unscoped session (the scan relay, `flask attachments rescan`
and /metrics look across orgs); `helpdesk.services.scans` scans one attachment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from helpdesk.models import Attachment, ScanStatus
from helpdesk.services.scans import LOST_AFTER, MAX_ATTEMPTS, backoff

RELAY_LIMIT = 500
RESCANNABLE = {
    "error": (ScanStatus.ERROR,),
    "pending": (ScanStatus.PENDING,),
    "all": (ScanStatus.PENDING, ScanStatus.ERROR, ScanStatus.CLEAN, ScanStatus.UNSCANNED),
}


# --- retries and rescans: cross-org, on an unscoped session ---------------------------------


def _retry_due(now: datetime) -> ColumnElement[bool]:
    """Error rows whose backoff after their latest attempt has passed (and attempts remain)."""
    steps = [
        and_(Attachment.scan_attempts == n, Attachment.scanned_at <= now - backoff(n))
        for n in range(1, MAX_ATTEMPTS)
    ]
    no_attempt = Attachment.scan_attempts < 1  # an error row nobody attempted: queue it
    return and_(Attachment.scan_status == ScanStatus.ERROR, or_(no_attempt, *steps))


def _lost(now: datetime) -> ColumnElement[bool]:
    """Pending rows queued longer ago than LOST_AFTER (their job was lost or is stuck)."""
    queued_at = func.coalesce(Attachment.scanned_at, Attachment.created_at)
    return and_(Attachment.scan_status == ScanStatus.PENDING, queued_at < now - LOST_AFTER)


def rearm_due(session: Session, now: datetime, limit: int = RELAY_LIMIT) -> list[tuple[int, int]]:
    """Re-arm due retries and lost scans as pending; commit; return (org_id, id) to queue.

    Rows being scanned right now are locked and skipped. `session` must be unscoped.
    """
    rows = session.execute(
        select(Attachment.org_id, Attachment.id)
        .where(or_(_retry_due(now), _lost(now)))
        .order_by(Attachment.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    ids = [row.id for row in rows]
    if ids:
        session.execute(
            update(Attachment)
            .where(Attachment.id.in_(ids))
            .values(scan_status=ScanStatus.PENDING.value, scanned_at=now)
            .execution_options(synchronize_session=False)
        )
    session.commit()
    return [(row.org_id, row.id) for row in rows]


def rescan_batches(
    session: Session,
    which: str,
    since: datetime | None,
    now: datetime,
    batch: int = 500,
) -> Iterator[list[tuple[int, int]]]:
    """Set matching attachments back to pending with a fresh retry budget, batch by batch.

    `which` is "error", "pending" or "all" (everything but `infected`, whose object is gone).
    Each batch of (org_id, id) pairs is committed before it is yielded, so the caller queues
    only durable rows. `session` must be unscoped.
    """
    statuses = [s.value for s in RESCANNABLE[which]]
    after = 0
    while True:
        where = [Attachment.scan_status.in_(statuses), Attachment.id > after]
        if since is not None:
            where.append(Attachment.created_at >= since)
        rows = session.execute(
            update(Attachment)
            .where(Attachment.id.in_(
                select(Attachment.id).where(*where).order_by(Attachment.id).limit(batch)
            ))
            .values(scan_status=ScanStatus.PENDING.value, scan_attempts=0, scan_error=None,
                    signature=None, scanned_at=now)
            .returning(Attachment.org_id, Attachment.id)
            .execution_options(synchronize_session=False)
        ).all()  # fmt: skip
        session.commit()
        if not rows:
            return
        pairs = sorted((row.org_id, row.id) for row in rows)
        after = max(attachment_id for _org, attachment_id in pairs)
        yield pairs


def count_infected(session: Session, since: datetime | None) -> int:
    """Count infected attachments (a rescan skips them: their object is gone)."""
    stmt = select(func.count()).where(Attachment.scan_status == ScanStatus.INFECTED)
    if since is not None:
        stmt = stmt.where(Attachment.created_at >= since)
    return int(session.scalar(stmt) or 0)


@dataclass(frozen=True)
class ScanBacklog:
    """Unsettled attachments for /metrics: counts per status, oldest pending, given up."""

    counts: dict[str, int]
    oldest_pending_age_seconds: float | None
    given_up: int


def backlog(session: Session, now: datetime) -> ScanBacklog:
    """Read the unsettled rows (the partial index `ix_attachments_unsettled`); unscoped."""
    rows = session.execute(
        select(
            Attachment.scan_status,
            func.count(),
            func.min(Attachment.created_at),
            func.count().filter(Attachment.scan_attempts >= MAX_ATTEMPTS),
        )
        .where(Attachment.scan_status.in_([ScanStatus.PENDING.value, ScanStatus.ERROR.value]))
        .group_by(Attachment.scan_status)
    ).all()
    counts = {ScanStatus.PENDING.value: 0, ScanStatus.ERROR.value: 0}
    oldest: float | None = None
    given_up = 0
    for status, count, first, stuck in rows:
        counts[status] = int(count)
        if status == ScanStatus.PENDING and first is not None:
            oldest = max(0.0, (now - first).total_seconds())
        if status == ScanStatus.ERROR:
            given_up = int(stuck)
    return ScanBacklog(counts, oldest, given_up)
