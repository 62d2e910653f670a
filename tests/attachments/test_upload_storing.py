"""Storing uploads: objects and rows together or not at all, dedupe, blocked content, who sees.

Real PostgreSQL, Redis and disk storage; a failing disk is a real one (a file where the
storage directory should be, or a file-size limit on this process).
"""

from __future__ import annotations

import io
import re
import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Attachment, Comment, Organization, ScanStatus, Ticket
from helpdesk.services import attachments, tickets
from helpdesk.services.attachments import IncomingFile
from helpdesk.services.errors import NotFound, ValidationError
from helpdesk.storage import StorageError
from helpdesk.tenancy import tenant_scope
from tests.attachments import upload_helpers as files
from tests.attachments.disk_fixture import disk_app, disk_root  # noqa: F401  (fixtures)
from tests.attachments.upload_helpers import attachment_rows, set_scan, stored_objects
from tests.factories import make_ticket

DOWN = "file storage is unavailable, nothing was saved"


def check(*items: tuple[bytes, str]) -> list[attachments.Prepared]:
    return attachments.check_uploads(
        [IncomingFile(n, io.BytesIO(d)) for d, n in items], existing_ticket_bytes=0
    )


@pytest.fixture
def alpha(app: Flask, session: Session, world: dict[str, Any]) -> Iterator[dict[str, Any]]:
    org = world["alpha"]["org"]
    ticket = make_ticket(session, org, world["alpha"]["agent"], world["alpha"]["requester"].user)
    with app.app_context(), tenant_scope(session, org.id):
        yield {**world["alpha"], "ticket": session.merge(ticket)}


def store(session: Session, alpha: dict[str, Any], *items: tuple[bytes, str],
          who: str = "agent", **kw: Any) -> list[Attachment]:  # fmt: skip
    rows = attachments.store_uploads(session, alpha[who], alpha["ticket"], check(*items), **kw)
    session.commit()
    return rows


def scan_jobs(app: Flask) -> list[tuple[Any, ...]]:
    queue = Queue("scan", connection=app.extensions["helpdesk.redis"])
    return [tuple(job.args) for job in queue.get_jobs()]


def test_a_file_becomes_an_object_and_a_row(
    app: Flask, session: Session, alpha: dict[str, Any], storage_root: Path
) -> None:
    data = files.pdf("quarterly numbers")
    [row] = store(session, alpha, (data, "Q3 report.pdf"))
    [saved] = attachment_rows(session, alpha["org"].id)
    assert saved.id == row.id
    assert (saved.filename, saved.content_type, saved.size) == (
        "Q3 report.pdf",
        "application/pdf",
        len(data),
    )
    assert re.fullmatch(r"[0-9a-f]{64}", saved.sha256)
    assert re.fullmatch(rf"{alpha['org'].id}/[0-9a-f]{{32}}", saved.storage_key)
    assert (storage_root / saved.storage_key).read_bytes() == data
    assert saved.uploader_id == alpha["agent"].user_id and saved.comment_id is None
    assert saved.scan_status == ScanStatus.UNSCANNED  # no CLAMD_URL: development mode
    assert scan_jobs(app) == []


def test_with_a_scanner_rows_start_pending_and_scans_queue_after_commit(
    app: Flask, session: Session, alpha: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
    storage_root: Path,
) -> None:  # fmt: skip
    monkeypatch.setitem(app.config, "CLAMD_URL", "tcp://127.0.0.1:3310")
    rows = attachments.store_uploads(session, alpha["agent"], alpha["ticket"],
                                     check((b"one\n", "1.txt"), (b"two\n", "2.txt")))  # fmt: skip
    assert [r.scan_status for r in rows] == ["pending", "pending"]
    assert scan_jobs(app) == []  # nothing before the commit
    session.commit()
    assert sorted(scan_jobs(app)) == sorted((alpha["org"].id, r.id) for r in rows)


def test_a_rolled_back_upload_leaves_no_object(
    app: Flask, session: Session, alpha: dict[str, Any], storage_root: Path
) -> None:
    attachments.store_uploads(session, alpha["agent"], alpha["ticket"], check((b"x\n", "a.txt")))
    assert len(stored_objects(storage_root)) == 1
    session.rollback()
    assert stored_objects(storage_root) == []
    assert attachment_rows(session, alpha["org"].id) == []
    # A request that fails unhandled only closes its session: the same clean-up applies.
    attachments.store_uploads(session, alpha["agent"], alpha["ticket"], check((b"y\n", "b.txt")))
    session.close()
    assert stored_objects(storage_root) == []


def test_identical_content_shares_one_object(
    session: Session, alpha: dict[str, Any], storage_root: Path
) -> None:
    first = store(session, alpha, (b"same bytes\n", "a.txt"))[0]
    second, third = store(session, alpha, (b"same bytes\n", "b.txt"), (b"same bytes\n", "c.txt"))
    assert first.storage_key == second.storage_key == third.storage_key
    assert [r.filename for r in attachment_rows(session, alpha["org"].id)] == [
        "a.txt", "b.txt", "c.txt"]  # fmt: skip
    assert len(stored_objects(storage_root)) == 1


def test_a_clean_twin_passes_its_verdict_on(session: Session, alpha: dict[str, Any]) -> None:
    first = store(session, alpha, (files.png(), "a.png"))[0]
    set_scan(session, alpha["org"].id, first.id, "clean")
    with tenant_scope(session, alpha["org"].id):
        second = store(session, alpha, (files.png(), "b.png"))[0]
    assert (second.storage_key, second.scan_status) == (first.storage_key, "clean")


def test_content_is_not_shared_across_orgs_or_with_a_vanished_object(
    app: Flask, session: Session, alpha: dict[str, Any], world: dict[str, Any],
    storage_root: Path,
) -> None:  # fmt: skip
    first = store(session, alpha, (b"shared\n", "a.txt"))[0]
    (storage_root / first.storage_key).unlink()
    again = store(session, alpha, (b"shared\n", "a.txt"))[0]
    assert again.storage_key != first.storage_key
    beta = world["beta"]
    ticket = make_ticket(session, beta["org"], beta["agent"])
    with tenant_scope(session, beta["org"].id):
        other = attachments.store_uploads(session, beta["agent"], session.merge(ticket),
                                          check((b"shared\n", "a.txt")))[0]  # fmt: skip
        session.commit()
        assert other.storage_key.startswith(f"{beta['org'].id}/")


def test_content_found_infected_is_refused_at_once(
    session: Session, alpha: dict[str, Any], storage_root: Path
) -> None:
    first = store(session, alpha, (b"pretend malware\n", "a.txt"))[0]
    set_scan(session, alpha["org"].id, first.id, "infected", "Eicar-Test-Signature")
    (storage_root / first.storage_key).unlink()  # what the scan job does with it
    with tenant_scope(session, alpha["org"].id), pytest.raises(ValidationError) as caught:
        store(session, alpha, (b"fine\n", "ok.txt"), (b"pretend malware\n", "again.txt"))
    assert caught.value.errors == {
        "files": "again.txt: this file was blocked earlier: Eicar-Test-Signature"}  # fmt: skip
    session.rollback()
    assert len(attachment_rows(session, alpha["org"].id)) == 1
    assert stored_objects(storage_root) == []


def test_storage_down_stores_nothing(
    app: Flask, session: Session, alpha: dict[str, Any], storage_root: Path
) -> None:
    storage_root.mkdir(parents=True, exist_ok=True)
    blocker = storage_root / str(alpha["org"].id)
    blocker.write_bytes(b"not a directory")  # the org's directory cannot be created
    try:
        with pytest.raises(StorageError, match=f"^{DOWN}$"):
            attachments.store_uploads(session, alpha["agent"], alpha["ticket"],
                                      check((b"x\n", "a.txt")))  # fmt: skip
        session.rollback()
    finally:
        blocker.unlink()
    assert attachment_rows(session, alpha["org"].id) == []
    assert stored_objects(storage_root) == []


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past `limit` bytes fail with EFBIG in this process (a disk filling up)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_failure_half_way_removes_what_was_already_written(
    session: Session, alpha: dict[str, Any], storage_root: Path
) -> None:
    prepared = check((b"small\n", "small.txt"), (b"b" * 200_000, "big.txt"))
    with pytest.raises(StorageError, match=f"^{DOWN}$"), file_size_limit(64 * 1024):
        attachments.store_uploads(session, alpha["agent"], alpha["ticket"], prepared)
    session.rollback()
    assert stored_objects(storage_root) == []
    assert attachment_rows(session, alpha["org"].id) == []


def test_requesters_upload_to_their_ticket_but_never_internal(
    session: Session, alpha: dict[str, Any]
) -> None:
    [row] = store(session, alpha, (b"my logs\n", "log.txt"), who="requester")
    assert row.internal is False and row.uploader_id == alpha["requester"].user_id
    with pytest.raises(ValidationError, match="only agents can attach files to internal notes"):
        store(session, alpha, (b"x\n", "x.txt"), who="requester", internal=True)
    other = make_ticket(session, alpha["org"], alpha["agent"], "someone@example.test")
    with tenant_scope(session, alpha["org"].id), pytest.raises(NotFound):
        attachments.store_uploads(session, alpha["requester"], session.merge(other),
                                  check((b"x\n", "x.txt")))  # fmt: skip


def test_requesters_never_see_files_of_internal_notes(
    session: Session, alpha: dict[str, Any]
) -> None:
    note = tickets.add_comment(session, alpha["agent"], 1, "between us", internal=True,
                               uploads=check((b"secret\n", "internal.txt")))  # fmt: skip
    reply = tickets.add_comment(session, alpha["agent"], 1, "here you go",
                                uploads=check((b"public\n", "public.txt")))  # fmt: skip
    staff_view = attachments.list_for_ticket(session, alpha["agent"], alpha["ticket"])
    assert [(a.filename, a.internal, a.comment_id) for a in staff_view] == [
        ("internal.txt", True, note.id), ("public.txt", False, reply.id)]  # fmt: skip
    mine = attachments.list_for_ticket(session, alpha["requester"], alpha["ticket"])
    assert [a.filename for a in mine] == ["public.txt"]
    with pytest.raises(NotFound):
        attachments.load_attachment(session, alpha["requester"], staff_view[0].id)
    assert attachments.load_attachment(session, alpha["agent"], staff_view[0].id).internal
    for missing in (0, -1, 2**63, 10**30, staff_view[1].id + 100):
        with pytest.raises(NotFound):
            attachments.load_attachment(session, alpha["agent"], missing)


def test_other_orgs_files_are_not_found(
    session: Session, alpha: dict[str, Any], world: dict[str, Any]
) -> None:
    beta = world["beta"]
    ticket = make_ticket(session, beta["org"], beta["agent"])
    with tenant_scope(session, beta["org"].id):
        beta_file = attachments.store_uploads(session, beta["admin"], session.merge(ticket),
                                              check((b"beta\n", "b.txt")))[0].id  # fmt: skip
        session.commit()
    with tenant_scope(session, alpha["org"].id), pytest.raises(NotFound):
        attachments.load_attachment(session, alpha["admin"], beta_file)


def test_a_new_ticket_keeps_its_files_with_its_first_message(
    session: Session, alpha: dict[str, Any]
) -> None:
    data = tickets.NewTicket(subject="Broken", body="See attached.",
                             requester_email="requester@alpha.test")  # fmt: skip
    ticket = tickets.open_ticket(session, alpha["org"], alpha["agent"], data, tickets.Channel.WEB,
                                 uploads=check((files.png(), "screen.png")))  # fmt: skip
    first = session.scalar(select(Comment).where(Comment.ticket_id == ticket.id))
    [row] = attachments.list_for_ticket(session, alpha["agent"], ticket)
    assert first is not None and row.comment_id == first.id and row.ticket_id == ticket.id


def test_a_message_is_not_saved_without_its_files(
    session: Session, alpha: dict[str, Any], storage_root: Path
) -> None:
    bad = store(session, alpha, (b"evil\n", "evil.txt"))[0]
    set_scan(session, alpha["org"].id, bad.id, "infected", "Win.Test.Evil")
    (storage_root / bad.storage_key).unlink()
    with tenant_scope(session, alpha["org"].id):
        org = session.get(Organization, alpha["org"].id)
        assert org is not None
        seq = org.ticket_seq
        data = tickets.NewTicket(subject="Hi", body="files", requester_email="r@example.test")
        with pytest.raises(ValidationError, match=r"blocked earlier: Win\.Test\.Evil"):
            tickets.open_ticket(
                session,
                alpha["org"],
                alpha["agent"],
                data,
                tickets.Channel.WEB,
                uploads=check((b"ok\n", "ok.txt"), (b"evil\n", "evil.txt")),
            )
        with pytest.raises(ValidationError, match="blocked earlier"):
            tickets.add_comment(session, alpha["agent"], 1, "reply",
                                uploads=check((b"evil\n", "evil.txt")))  # fmt: skip
        session.expire_all()
        assert org.ticket_seq == seq
        assert session.scalar(select(Ticket.number).order_by(Ticket.number.desc())) == 1
        assert len(session.scalars(select(Comment)).all()) == 1
    assert stored_objects(storage_root) == []
