"""`flask --app wsgi attachments rescan`: after a clamd outage, after a signature update.

The whole outage story runs against a real clamd that is stopped and started again, the
real scan queue on the test Redis and a worker run in-process.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from redis import Redis
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import ScanStatus
from helpdesk.services import scans
from jobs import scan as scan_jobs
from jobs import worker as worker_module
from tests.attachments import scan_helpers
from tests.attachments.clamd_fixture import EICAR, Clamd
from tests.attachments.s3_fixture import free_port
from tests.attachments.scan_helpers import (
    PDF_BYTES,
    TEXT_BYTES,
    add_attachment,
    queued_scans,
    reload,
    run_scan_jobs,
)
from tests.factories import make_ticket

app_ctx = scan_helpers.app_ctx  # fixtures
store = scan_helpers.store
pytestmark = pytest.mark.usefixtures("app_ctx", "store")


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    worker_module.init_app(app)  # what wsgi.py does
    return app.test_cli_runner()


@pytest.fixture
def tickets(session: Session, world):
    alpha, beta = world["alpha"], world["beta"]
    return (
        make_ticket(session, alpha["org"], alpha["agent"], subject="Alpha files"),
        make_ticket(session, beta["org"], beta["agent"], subject="Beta files"),
    )


def rescan(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=["attachments", "rescan", *args])


def exhaust_retries(app: Flask, session: Session, rows: list) -> None:
    """Let the relay retry failed scans until it gives up on them (clamd must be down)."""
    for wait in scans.BACKOFF_SECONDS:
        latest = max(reload(session, row).scanned_at for row in rows)
        assert scan_jobs.relay(latest + timedelta(seconds=wait))["queued"] == len(rows)
        assert run_scan_jobs(app) == len(rows)
    assert {reload(session, row).scan_attempts for row in rows} == {scans.MAX_ATTEMPTS}


def test_after_an_outage_rescan_turns_given_up_files_clean(
    app: Flask, runner, session, tickets, clamd: Clamd, app_clamd
):
    alpha, beta = tickets
    broken = add_attachment(session, alpha, PDF_BYTES)
    other = add_attachment(session, beta, TEXT_BYTES, filename="notes.txt")
    with clamd.stopped():
        assert scan_jobs.scan(alpha.org_id, broken.id) == "error"
        assert scan_jobs.scan(beta.org_id, other.id) == "error"
        exhaust_retries(app, session, [broken, other])
        refused = rescan(runner)
        assert refused.exit_code == 1
        assert f"clamd at {app_clamd} does not answer PING" in refused.output
        assert "Nothing was changed" in refused.output
        assert reload(session, broken).scan_status == "error"
    result = rescan(runner, "--status", "error")
    assert result.exit_code == 0, result.output
    assert (
        "2 attachment(s) set back to pending (error); 2 queued on the scan queue" in result.output
    )
    assert sorted(queued_scans(app)) == [(alpha.org_id, broken.id), (beta.org_id, other.id)]
    row = reload(session, broken)
    assert (row.scan_status, row.scan_attempts, row.scan_error) == ("pending", 0, None)
    assert run_scan_jobs(app) == 2
    assert [reload(session, r).scan_status for r in (broken, other)] == ["clean", "clean"]
    assert reload(session, broken).scan_attempts == 1


def test_the_default_rescans_only_failed_files(app: Flask, runner, session, tickets, app_clamd):
    alpha, _beta = tickets
    clean = add_attachment(session, alpha, PDF_BYTES, status=ScanStatus.CLEAN)
    failed = add_attachment(session, alpha, PDF_BYTES, status=ScanStatus.ERROR)
    result = rescan(runner)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("1 attachment(s) set back to pending (error); 1 queued")
    assert queued_scans(app) == [(alpha.org_id, failed.id)]
    assert reload(session, clean).scan_status == "clean"


def test_all_after_a_signature_update_rescans_everything_but_infected(
    app: Flask, runner, session, tickets, app_clamd
):
    alpha, beta = tickets
    was_clean = add_attachment(session, alpha, EICAR, filename="old.com", status=ScanStatus.CLEAN)
    unscanned = add_attachment(session, beta, PDF_BYTES, status=ScanStatus.UNSCANNED)
    stuck = add_attachment(session, beta, PDF_BYTES, status=ScanStatus.PENDING)
    infected = add_attachment(session, alpha, EICAR, status=ScanStatus.INFECTED)
    result = rescan(runner, "--status", "all")
    assert result.exit_code == 0, result.output
    assert "3 attachment(s) set back to pending (all); 3 queued" in result.output
    assert "1 infected attachment(s) skipped: their files were removed" in result.output
    assert reload(session, was_clean).scan_status == "pending"  # not served while unsure
    assert run_scan_jobs(app) == 3
    statuses = [reload(session, r).scan_status for r in (was_clean, unscanned, stuck, infected)]
    assert statuses == ["infected", "clean", "clean", "infected"]  # today's signatures caught it


def test_pending_rescans_stuck_scans_only(app: Flask, runner, session, tickets, app_clamd):
    alpha, _beta = tickets
    stuck = add_attachment(session, alpha, PDF_BYTES)
    add_attachment(session, alpha, PDF_BYTES, status=ScanStatus.ERROR)
    result = rescan(runner, "--status", "pending")
    assert result.exit_code == 0, result.output
    assert queued_scans(app) == [(alpha.org_id, stuck.id)]


def test_since_limits_the_rescan_to_recent_uploads(app: Flask, runner, session, tickets,
                                                   app_clamd):  # fmt: skip
    alpha, _beta = tickets
    old = add_attachment(session, alpha, PDF_BYTES, status=ScanStatus.ERROR,
                         created_at=datetime(2026, 1, 9, 23, 59, tzinfo=UTC))  # fmt: skip
    new = add_attachment(session, alpha, PDF_BYTES, status=ScanStatus.ERROR,
                         created_at=datetime(2026, 1, 10, 0, 0, tzinfo=UTC))  # fmt: skip
    result = rescan(runner, "--since", "2026-01-10")
    assert result.exit_code == 0, result.output
    assert "1 attachment(s) uploaded since 2026-01-10 set back to pending" in result.output
    assert queued_scans(app) == [(alpha.org_id, new.id)]
    assert reload(session, old).scan_status == "error"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--since", "10/01/2026"], "'10/01/2026' does not match the format '%Y-%m-%d'"),
        (["--since", "2026-02-30"], "'2026-02-30' does not match the format '%Y-%m-%d'"),
        (["--status", "clean"], "'clean' is not one of 'all', 'error', 'pending'"),
    ],
)
def test_bad_options_are_refused_with_the_reason(runner, app_clamd, args, message):
    result = rescan(runner, *args)
    assert result.exit_code == 2 and message in result.output


def test_without_clamd_url_it_refuses(app: Flask, runner, session, tickets):
    add_attachment(session, tickets[0], PDF_BYTES, status=ScanStatus.ERROR)
    result = rescan(runner)
    assert result.exit_code == 1
    assert "CLAMD_URL is empty, so there is nothing to scan with" in result.output
    assert queued_scans(app) == []


def test_with_redis_down_the_relay_queues_them_later(
    app: Flask, runner, session, tickets, app_clamd, monkeypatch
):
    alpha, _beta = tickets
    failed = add_attachment(session, alpha, PDF_BYTES, status=ScanStatus.ERROR)
    real = app.extensions["helpdesk.redis"]
    monkeypatch.setitem(app.extensions, "helpdesk.redis", Redis(port=free_port()))  # nobody there
    result = rescan(runner)
    assert result.exit_code == 0, result.output
    assert "1 attachment(s) set back to pending (error); 0 queued" in result.output
    assert "1 could not be queued (Redis unreachable)" in result.output
    monkeypatch.setitem(app.extensions, "helpdesk.redis", real)
    assert scan_jobs.relay() == {"rearmed": 0, "queued": 0}  # queued just now by the rescan
    later = utcnow() + scans.LOST_AFTER + timedelta(seconds=1)
    assert scan_jobs.relay(later) == {"rearmed": 1, "queued": 1}
    assert queued_scans(app) == [(alpha.org_id, failed.id)]
