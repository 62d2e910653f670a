"""The scan job and its state machine: a real clamd, PostgreSQL, Redis and attachment storage.

Every data test has two orgs (the `world` fixture): the second one must never see or change
anything of the first.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import zipfile
from datetime import timedelta

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Attachment, ScanStatus
from helpdesk.services import scans
from helpdesk.storage import DiskStorage, Storage
from helpdesk.tenancy import tenant_scope
from jobs import scan as scan_jobs
from tests.attachments import scan_helpers
from tests.attachments.clamd_fixture import EICAR, Clamd
from tests.attachments.scan_helpers import (
    PDF_BYTES,
    TEXT_BYTES,
    add_attachment,
    attachment_history,
    eicar_zip,
    infected_events,
    queued_scans,
    reload,
    run_scan_jobs,
)
from tests.factories import make_ticket

app_ctx = scan_helpers.app_ctx  # fixtures
store = scan_helpers.store
pytestmark = pytest.mark.usefixtures("app_ctx")
MiB = 1024 * 1024


@pytest.fixture
def ticket(session: Session, world):
    alpha = world["alpha"]
    return make_ticket(session, alpha["org"], alpha["agent"], subject="Invoice attached")


# --- verdicts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [PDF_BYTES, TEXT_BYTES], ids=["pdf", "text"])
def test_a_harmless_file_becomes_clean(session, world, ticket, store, app_clamd, data):
    row = add_attachment(session, ticket, data, uploader=world["alpha"]["requester"])
    assert scan_jobs.scan(ticket.org_id, row.id) == "clean"
    row = reload(session, row)
    assert (row.scan_status, row.scan_attempts, row.signature, row.scan_error) == (
        "clean", 1, None, None,
    )  # fmt: skip
    assert row.scanned_at is not None and store.exists(row.storage_key)
    assert infected_events(session, ticket.org_id) == []


def test_eicar_is_quarantined_recorded_audited_and_announced(
    app: Flask, session, world, ticket, store: DiskStorage, app_clamd
):
    row = add_attachment(session, ticket, EICAR, filename="invoice.pdf")
    assert scan_jobs.scan(ticket.org_id, row.id) == "infected"
    row = reload(session, row)
    assert row.scan_status == "infected"
    assert row.signature is not None and row.signature.endswith(".UNOFFICIAL")
    assert not store.exists(row.storage_key)  # out of reach …
    assert (store.root / "_quarantine" / row.storage_key).read_bytes() == EICAR  # … kept aside
    [event] = infected_events(session, ticket.org_id)
    assert event.ticket_id == ticket.id and event.actor_id is None
    assert event.payload == {
        "number": ticket.number,
        "attachment_id": row.id,
        "filename": "invoice.pdf",
        "signature": row.signature,
        "quarantined": True,
        "uploader_id": None,
    }
    [history] = attachment_history(session, ticket.org_id)
    assert (history.ticket_id, history.actor_id) == (ticket.id, None)
    assert (history.old_value, history.new_value) == ("invoice.pdf", f"blocked: {row.signature}")
    dispatch = Queue("notify", connection=app.extensions["helpdesk.redis"]).get_jobs()
    assert ("jobs.notify.dispatch", (ticket.org_id, event.id)) in [
        (j.func_name, tuple(j.args)) for j in dispatch
    ]
    beta = world["beta"]["org"].id
    assert infected_events(session, beta) == [] and attachment_history(session, beta) == []


def test_eicar_in_a_zip_on_s3_is_deleted_without_a_quarantine_bucket(
    session, ticket, app_s3_storage: Storage, app_clamd
):
    row = add_attachment(session, ticket, eicar_zip(), filename="tools.zip",
                         content_type="application/zip")  # fmt: skip
    assert app_s3_storage.exists(row.storage_key)
    assert scan_jobs.scan(ticket.org_id, row.id) == "infected"
    row = reload(session, row)
    assert row.signature == "Test.EICAR.NDB.UNOFFICIAL"
    assert not app_s3_storage.exists(row.storage_key)
    [event] = infected_events(session, ticket.org_id)
    assert event.payload["quarantined"] is False and event.payload["number"] == ticket.number


def test_rows_sharing_the_infected_object_are_blocked_with_it(session, world, store, app_clamd):
    alpha = world["alpha"]
    first = make_ticket(session, alpha["org"], alpha["agent"], subject="First")
    second = make_ticket(session, alpha["org"], alpha["agent"], subject="Second")
    old = add_attachment(session, first, EICAR, filename="old.txt", status=ScanStatus.CLEAN)
    new = add_attachment(session, second, EICAR, filename="new.txt", storage_key=old.storage_key)
    assert scan_jobs.scan(second.org_id, new.id) == "infected"
    assert [reload(session, r).scan_status for r in (old, new)] == ["infected", "infected"]
    assert reload(session, old).signature == reload(session, new).signature
    history = attachment_history(session, first.org_id)
    assert sorted((h.ticket_id, h.old_value) for h in history) == [
        (first.id, "old.txt"), (second.id, "new.txt"),
    ]  # fmt: skip
    payloads = [e.payload for e in infected_events(session, first.org_id)]
    assert sorted((p["number"], p["attachment_id"]) for p in payloads) == [
        (first.number, old.id), (second.number, new.id),
    ]  # fmt: skip


# --- never clean when the scan could not be complete ----------------------------------------


def test_a_file_over_clamds_stream_limit_is_never_clean(
    app: Flask, session, ticket, store, app_clamd, monkeypatch
):
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 30 * MiB)  # past clamd's 25M
    row = add_attachment(session, ticket, os.urandom(25 * MiB + 1), filename="big.bin")
    assert scan_jobs.scan(ticket.org_id, row.id) == "error"
    row = reload(session, row)
    assert "INSTREAM size limit exceeded" in (row.scan_error or "")
    assert store.exists(row.storage_key)  # not malware: kept, blocked, retried


def test_a_zip_hiding_malware_past_clamds_file_limit_is_never_clean(
    session, ticket, store, app_clamd
):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", b"\0" * (30 * MiB) + EICAR)
    row = add_attachment(session, ticket, buffer.getvalue(), filename="report.zip",
                         content_type="application/zip")  # fmt: skip
    assert scan_jobs.scan(ticket.org_id, row.id) == "error"
    error = reload(session, row).scan_error or ""
    assert error.startswith("clamd said OK, but a file inside the archive expands beyond")


def test_a_file_over_attachment_max_bytes_is_not_scanned(
    app: Flask, session, ticket, store, app_clamd, monkeypatch
):
    row = add_attachment(session, ticket, TEXT_BYTES * 100)
    monkeypatch.setitem(app.config, "ATTACHMENT_MAX_BYTES", 1000)
    assert scan_jobs.scan(ticket.org_id, row.id) == "error"
    assert "over ATTACHMENT_MAX_BYTES (1000)" in (reload(session, row).scan_error or "")


def test_a_missing_object_is_an_error(session, ticket, store, app_clamd):
    row = add_attachment(session, ticket, PDF_BYTES, store_bytes=False)
    assert scan_jobs.scan(ticket.org_id, row.id) == "error"
    error = reload(session, row).scan_error
    assert error == "could not read the stored file: the file is not in attachment storage"


def test_an_object_of_another_size_than_recorded_is_an_error(session, ticket, store, app_clamd):
    row = add_attachment(session, ticket, PDF_BYTES, size=len(PDF_BYTES) + 1)
    assert scan_jobs.scan(ticket.org_id, row.id) == "error"
    assert "does not have the" in (reload(session, row).scan_error or "")


def test_clamd_down_is_an_error_with_the_reason(session, ticket, store, clamd: Clamd, app_clamd):
    row = add_attachment(session, ticket, PDF_BYTES)
    with clamd.stopped():
        assert scan_jobs.scan(ticket.org_id, row.id) == "error"
    row = reload(session, row)
    assert (row.scan_status, row.scan_attempts) == ("error", 1)
    assert row.scan_error == f"clamd at {app_clamd} is unreachable: Connection refused"


def test_without_clamd_in_development_files_are_unscanned(app: Flask, session, ticket, store):
    assert not app.config["CLAMD_URL"]
    row = add_attachment(session, ticket, PDF_BYTES)
    assert scan_jobs.scan(ticket.org_id, row.id) == "unscanned"
    row = reload(session, row)
    assert row.scan_error == "not scanned: CLAMD_URL is empty (development only)"


def test_production_never_marks_a_file_unscanned(session, ticket, store):
    row = add_attachment(session, ticket, PDF_BYTES)
    settings = scans.ScanSettings(clamd_url="", max_bytes=25 * MiB, production=True)
    with tenant_scope(session, ticket.org_id):
        assert scans.scan_attachment(session, row.id, settings, store) == "error"
    assert reload(session, row).scan_error == "CLAMD_URL is not set: files cannot be scanned"


# --- claims: one verdict per attempt ------------------------------------------------------


def test_a_second_job_for_a_settled_attachment_records_nothing(session, ticket, store, app_clamd):
    row = add_attachment(session, ticket, EICAR)
    assert scan_jobs.scan(ticket.org_id, row.id) == "infected"
    assert scan_jobs.scan(ticket.org_id, row.id) is None
    assert reload(session, row).scan_attempts == 1
    assert len(infected_events(session, ticket.org_id)) == 1
    assert len(attachment_history(session, ticket.org_id)) == 1


def test_a_job_skips_an_attachment_another_job_is_scanning(app: Flask, session, ticket, store,
                                                           app_clamd):  # fmt: skip
    row = add_attachment(session, ticket, EICAR)
    other = app.extensions["helpdesk.sessionmaker"]()
    try:
        with tenant_scope(other, ticket.org_id):
            assert scans.claim(other, row.id) is not None  # holds the row lock
            assert scan_jobs.scan(ticket.org_id, row.id) is None
        other.rollback()
    finally:
        other.close()
    assert reload(session, row).scan_status == "pending"
    assert scan_jobs.scan(ticket.org_id, row.id) == "infected"


def test_two_concurrent_jobs_record_one_verdict(app: Flask, session, ticket, store, app_clamd):
    row = add_attachment(session, ticket, EICAR)
    results: list[str | None] = []
    start = threading.Barrier(2)

    def run() -> None:
        with app.app_context():
            start.wait(5)
            results.append(scan_jobs.scan(ticket.org_id, row.id))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results, key=str) == [None, "infected"]
    assert reload(session, row).scan_attempts == 1
    assert len(infected_events(session, ticket.org_id)) == 1
    assert len(attachment_history(session, ticket.org_id)) == 1


def test_a_job_for_another_orgs_attachment_does_nothing(session, world, ticket, store, app_clamd):
    row = add_attachment(session, ticket, EICAR)
    assert scan_jobs.scan(world["beta"]["org"].id, row.id) is None
    assert reload(session, row).scan_status == "pending"


# --- retries, the relay and the alarm ---------------------------------------------------------


def test_failed_scans_are_retried_with_backoff_then_raise_the_alarm(
    app: Flask, session, ticket, store, clamd: Clamd, app_clamd, caplog
):
    row = add_attachment(session, ticket, PDF_BYTES)
    caplog.set_level(logging.WARNING, logger="helpdesk.services.scans")
    with clamd.stopped():
        assert scan_jobs.scan(ticket.org_id, row.id) == "error"
        for attempt, wait in enumerate(scans.BACKOFF_SECONDS, start=1):
            failed_at = reload(session, row).scanned_at
            assert failed_at is not None
            early = scan_jobs.relay(failed_at + timedelta(seconds=wait - 1))
            assert early == {"rearmed": 0, "queued": 0}
            due = scan_jobs.relay(failed_at + timedelta(seconds=wait))
            assert due == {"rearmed": 1, "queued": 1}
            assert reload(session, row).scan_status == "pending"  # "scanning…" again
            assert queued_scans(app) == [(ticket.org_id, row.id)]
            assert run_scan_jobs(app) == 1
            assert reload(session, row).scan_attempts == attempt + 1
    row = reload(session, row)
    assert (row.scan_status, row.scan_attempts) == ("error", scans.MAX_ATTEMPTS)
    later = (row.scanned_at or utcnow()) + timedelta(days=1)
    assert scan_jobs.relay(later) == {"rearmed": 0, "queued": 0}  # no more automatic tries
    alarms = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(alarms) == 1 and "attachment_scan_gave_up" in alarms[0].getMessage()
    assert "attachments rescan --status error" in alarms[0].getMessage()
    warnings = [r for r in caplog.records if "attachment_scan_failed" in r.getMessage()]
    assert len(warnings) == scans.MAX_ATTEMPTS - 1


def test_the_relay_queues_a_lost_scan_once_per_interval(app: Flask, session, world, ticket,
                                                        store):  # fmt: skip
    now = utcnow()
    row = add_attachment(session, ticket, PDF_BYTES, created_at=now - timedelta(minutes=3))
    beta = world["beta"]
    beta_ticket = make_ticket(session, beta["org"], beta["agent"])
    fresh = add_attachment(session, beta_ticket, PDF_BYTES, created_at=now)
    assert scan_jobs.relay(now) == {"rearmed": 1, "queued": 1}
    assert queued_scans(app) == [(ticket.org_id, row.id)]
    assert scan_jobs.relay(now + timedelta(seconds=30)) == {"rearmed": 0, "queued": 0}
    later = now + scans.LOST_AFTER + timedelta(seconds=1)
    assert scan_jobs.relay(later) == {"rearmed": 2, "queued": 2}  # still waiting, and `fresh`
    assert sorted(queued_scans(app))[-1] == (fresh.org_id, fresh.id)


def test_the_relay_leaves_a_row_being_scanned_alone(app: Flask, session, ticket, store):
    row = add_attachment(session, ticket, PDF_BYTES, created_at=utcnow() - timedelta(hours=1))
    other = app.extensions["helpdesk.sessionmaker"]()
    try:
        with tenant_scope(other, ticket.org_id):
            assert scans.claim(other, row.id) is not None
            assert scan_jobs.relay() == {"rearmed": 0, "queued": 0}
        other.rollback()
    finally:
        other.close()
    assert scan_jobs.relay() == {"rearmed": 1, "queued": 1}


def test_metrics_show_the_scan_backlog_and_the_alarm(app: Flask, session, world, store):
    alpha, beta = world["alpha"], world["beta"]
    now = utcnow()
    a = make_ticket(session, alpha["org"], alpha["agent"])
    b = make_ticket(session, beta["org"], beta["agent"])
    add_attachment(session, a, PDF_BYTES, created_at=now - timedelta(minutes=10))
    add_attachment(session, b, PDF_BYTES)
    add_attachment(session, a, PDF_BYTES, status=ScanStatus.CLEAN)
    stuck = add_attachment(session, b, PDF_BYTES, status=ScanStatus.ERROR)
    add_attachment(session, a, PDF_BYTES, status=ScanStatus.ERROR)
    with tenant_scope(session, b.org_id):
        session.get(Attachment, stuck.id).scan_attempts = scans.MAX_ATTEMPTS
        session.commit()
    body = app.test_client().get("/metrics").get_data(as_text=True)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    assert samples[("helpdesk_attachments_scan_status", (("status", "pending"),))] == 2
    assert samples[("helpdesk_attachments_scan_status", (("status", "error"),))] == 2
    assert samples[("helpdesk_attachment_scans_given_up", ())] == 1
    oldest = samples[("helpdesk_attachment_oldest_pending_age_seconds", ())]
    assert 600 <= oldest < 660


def test_the_relay_is_a_periodic_job_on_the_scan_queue(app: Flask):
    from jobs.cron import PERIODIC
    from jobs.worker import build_scheduler

    [spec] = [s for s in PERIODIC if s["func"] is scan_jobs.relay]
    assert spec["queue_name"] == "scan"
    assert spec["interval"] <= min(scans.BACKOFF_SECONDS)  # a retry is never late by more
    registered = [job.func for job in build_scheduler().get_jobs()]
    assert scan_jobs.relay in registered
