"""Scan jobs on the "scan" queue: one attachment's scan, and the periodic retry relay.

`scan(org_id, attachment_id)` is queued after an upload commits (and by the relay and
`attachments rescan`); it runs `services.scans.scan_attachment` in the org's tenant scope.
Duplicates are harmless: only a `pending` row that nobody has locked is scanned.

`relay` is in the periodic list (jobs/cron.py): it re-arms failed scans whose backoff has
passed and pending scans whose job was lost, then queues them. The row is the truth, so a
lost enqueue (Redis down) only delays the scan until the next relay run.
"""

from __future__ import annotations

import logging
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError

from helpdesk.db import utcnow
from helpdesk.services import scan_queue, scans, tasks
from helpdesk.storage import get_storage
from jobs.context import org_session, system_session

log = logging.getLogger(__name__)
SCAN_JOB_TIMEOUT = 120  # RQ's limit; the clamd conversation itself gives up after 30 s


def scan(org_id: int, attachment_id: int) -> str | None:
    """Scan one attachment and record the verdict; return its new status (None: not ours)."""
    settings = scans.ScanSettings.from_config(current_app.config)
    storage = get_storage(current_app)
    with org_session(org_id) as session:
        return scans.scan_attachment(session, attachment_id, settings, storage)


def queue_scans(rows: list[tuple[int, int]]) -> int:
    """Queue a scan job per (org_id, attachment_id); return how many made it to Redis."""
    queued = 0
    for org_id, attachment_id in rows:
        try:
            tasks.enqueue(
                scans.SCAN_JOB, org_id, attachment_id, queue="scan", job_timeout=SCAN_JOB_TIMEOUT
            )
        except RedisError as exc:
            log.warning("scan_enqueue_failed queued=%s left=%s error=%s (the relay retries)",
                        queued, len(rows) - queued, type(exc).__name__)  # fmt: skip
            break
        queued += 1
    return queued


def relay(now: datetime | None = None) -> dict[str, int]:
    """Re-arm and queue due scan retries and lost scans (all orgs)."""
    with system_session() as session:
        rows = scan_queue.rearm_due(session, now or utcnow())
    queued = queue_scans(rows)
    if rows:
        log.info("scan_relay rearmed=%s queued=%s", len(rows), queued)
    return {"rearmed": len(rows), "queued": queued}
