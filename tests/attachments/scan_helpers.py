"""Helpers for the scan job and rescan tests: stored attachments, a disk store, the scan queue.

Attachments are written the way the upload service writes them (bytes into the app's
storage under `new_key`, then the row), so the scan code under test reads real objects.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Attachment, Membership, OutboxEvent, ScanStatus, Ticket, TicketEvent
from helpdesk.storage import EXTENSION, DiskStorage, Storage, get_storage, new_key
from helpdesk.tenancy import tenant_scope
from tests.attachments.clamd_fixture import EICAR

PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
TEXT_BYTES = "Hello,\nthe printer on floor 3 is jammed again. Grüße\n".encode()


def eicar_zip() -> bytes:
    """A ZIP archive holding the EICAR test file in a folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/readme.txt", b"see the attached tool")
        archive.writestr("tools/eicar.com", EICAR)
    return buffer.getvalue()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[None]:
    """Jobs and after-commit enqueues need the app context, as in the worker."""
    with app.app_context():
        yield


@pytest.fixture
def store(app: Flask, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> DiskStorage:
    """Make the session app keep attachments on disk under this test's tmp dir."""
    storage = DiskStorage(tmp_path / "attachments")
    monkeypatch.setitem(app.extensions, EXTENSION, storage)
    return storage


def add_attachment(
    session: Session,
    ticket: Ticket,
    data: bytes,
    *,
    uploader: Membership | None = None,
    filename: str = "report.pdf",
    content_type: str = "application/pdf",
    status: ScanStatus = ScanStatus.PENDING,
    created_at: datetime | None = None,
    storage_key: str | None = None,
    store_bytes: bool = True,
    size: int | None = None,
) -> Attachment:
    """Store `data` in the app's storage and add its attachment row (committed)."""
    from flask import current_app

    storage: Storage = get_storage(current_app)
    key = storage_key or new_key(ticket.org_id)
    if store_bytes and storage_key is None:
        storage.put(key, io.BytesIO(data), len(data), content_type)
    with tenant_scope(session, ticket.org_id):
        row = Attachment(
            ticket_id=ticket.id,
            uploader_id=uploader.user_id if uploader else None,
            filename=filename,
            content_type=content_type,
            size=len(data) if size is None else size,
            sha256=hashlib.sha256(data).hexdigest(),
            storage_key=key,
            scan_status=status.value,
        )
        if created_at is not None:
            row.created_at = created_at
        session.add(row)
        session.commit()
    return row


def reload(session: Session, attachment: Attachment) -> Attachment:
    """Return the attachment's row as the database has it now."""
    session.expire_all()
    with tenant_scope(session, attachment.org_id):
        row = session.get(Attachment, attachment.id)
        assert row is not None
        return row


def infected_events(session: Session, org_id: int) -> list[OutboxEvent]:
    """The org's attachment.infected outbox events, oldest first."""
    with tenant_scope(session, org_id):
        return list(
            session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.kind == "attachment.infected")
                .order_by(OutboxEvent.id)
            )
        )


def attachment_history(session: Session, org_id: int) -> list[TicketEvent]:
    """The org's ticket history rows about attachments, oldest first."""
    with tenant_scope(session, org_id):
        return list(
            session.scalars(
                select(TicketEvent)
                .where(TicketEvent.field == "attachment")
                .order_by(TicketEvent.id)
            )
        )


def scan_queue(app: Flask) -> Queue:
    return Queue("scan", connection=app.extensions["helpdesk.redis"])


def queued_scans(app: Flask) -> list[tuple[Any, ...]]:
    """(org_id, attachment_id) of every scan job waiting on the scan queue."""
    jobs = scan_queue(app).get_jobs()
    assert all(job.func_name == "jobs.scan.scan" for job in jobs)
    return [tuple(job.args) for job in jobs]


def run_scan_jobs(app: Flask) -> int:
    """Run every queued scan job in-process (burst); fail the test if one raised; count them."""
    redis = app.extensions["helpdesk.redis"]
    queue = scan_queue(app)
    failed = FailedJobRegistry(queue=queue)
    before = set(failed.get_job_ids())
    waiting = queue.count
    SimpleWorker([queue], connection=redis).work(burst=True)
    new = [queue.fetch_job(i) for i in set(failed.get_job_ids()) - before]
    if new:
        details = [(j.func_name, str(j.latest_result())) for j in new if j is not None]
        pytest.fail(f"scan jobs failed: {details}")
    assert queue.count == 0
    return int(waiting)
