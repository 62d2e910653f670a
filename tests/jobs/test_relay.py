"""The relay: events whose dispatch was lost, deliveries that are due, lost or abandoned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from helpdesk.config import Settings
from helpdesk.db import utcnow
from helpdesk.models import Delivery, JobRun
from helpdesk.services import deliveries
from helpdesk.tenancy import unscoped
from jobs import notify
from tests.conftest import TEST_SECRET
from tests.factories import make_ticket
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    Receiver,
    SmtpSink,
    _app_context,
    _notify_app,
    _receiver,
    _receiver_server,
    _smtp,
    _smtp_server,
    add_endpoint,
    all_deliveries,
    events_of,
    free_port,
    hang,
    queued,
    reply,
    run_jobs,
)

ROOT = Path(__file__).resolve().parents[2]


def test_relay_dispatches_what_a_redis_outage_left_behind(
    app: Flask,
    session: Session,
    world,
    smtp: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    alpha = world["alpha"]
    down = Redis(host="127.0.0.1", port=free_port(), retry=Retry(NoBackoff(), 0))
    with monkeypatch.context() as patch:  # Redis is unreachable while the ticket commits
        patch.setitem(app.extensions, "helpdesk.redis", down)
        make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    down.close()
    assert "enqueue_failed job=jobs.notify.dispatch" in caplog.text
    assert queued(app) == []
    (event,) = events_of(session)
    assert event.dispatched_at is None
    soon = event.created_at + timedelta(seconds=2)
    assert notify.relay(soon)["events"] == 0  # younger than 3 s: its own job may still come
    info = notify.relay(event.created_at + timedelta(seconds=4))
    assert info["events"] == 1
    run_jobs(app)
    assert events_of(session)[0].dispatched_at is not None
    assert [d.status for d in all_deliveries(session)] == ["delivered"]
    assert len(smtp.delivered("requester@alpha.test")) == 1
    with unscoped(session):
        run = session.get(JobRun, "notify.relay")
    assert run is not None and run.info["events"] == 1 and run.duration_ms is not None


def test_relay_requeues_due_and_lost_deliveries_only(
    app: Flask, session: Session, world, smtp: SmtpSink
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    make_ticket(session, beta["org"], beta["agent"], beta["requester"].user)
    for event in events_of(session):
        notify.dispatch(event.org_id, event.id)
    app.extensions["helpdesk.redis"].flushdb()  # both deliver jobs are lost
    lost, due = all_deliveries(session)
    now = utcnow()
    with unscoped(session):
        session.execute(
            update(Delivery)
            .where(Delivery.id == due.id)
            .values(status="failed", attempts=1, next_attempt_at=now - timedelta(seconds=1))
        )
        session.commit()
    nothing = {"events": 0, "event_errors": 0, "due": 0, "lost": 0, "abandoned": 0}
    assert notify.relay(now - timedelta(seconds=5)) == nothing  # not due, not lost yet
    later = now + timedelta(seconds=11)  # the failed one is due, the pending one is lost
    assert notify.relay(later) == {**nothing, "due": 1, "lost": 1}
    assert sorted(queued(app)) == [
        ("jobs.notify.deliver", (alpha["org"].id, lost.id)),
        ("jobs.notify.deliver", (beta["org"].id, due.id)),
    ]
    assert notify.relay(later + timedelta(seconds=2)) == nothing  # just re-armed: not again
    run_jobs(app)
    assert [(d.status, d.attempts) for d in all_deliveries(session)] == [
        ("delivered", 1),
        ("delivered", 2),
    ]


@pytest.fixture
def worker_env(settings: Settings, smtp_server: tuple[SmtpSink, int]) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "PYTEST"))}
    env.update(
        HELPDESK_ENV="test",
        SECRET_KEY=TEST_SECRET,
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        SMTP_URL=f"smtp://127.0.0.1:{smtp_server[1]}",
        MAIL_FROM="support@helpdesk.test",
        WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        WEBHOOK_TIMEOUT="30",
    )
    yield env


def test_a_worker_killed_mid_delivery_is_recovered_by_the_relay(
    app: Flask,
    session: Session,
    world,
    receiver: Receiver,
    worker_env: dict[str, str],
    tmp_path: Path,
) -> None:
    alpha = world["alpha"]
    endpoint = add_endpoint(session, alpha["org"], receiver.url(), ["ticket.created"])
    receiver.default = hang
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "worker", "-q", "notify", "--burst"],
            cwd=ROOT,
            env=worker_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        arrived = receiver.arrived.wait(30)
        assert arrived, f"the worker never called the receiver:\n{log.read_text()[-3000:]}"
        hook = _webhook_delivery(session)
        assert (hook.status, hook.attempts) == ("sending", 1)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    assert worker.returncode == -signal.SIGKILL
    receiver.default = reply(200)
    assert notify.relay()["abandoned"] == 0  # still within the timeout + 60 s grace
    later = utcnow() + deliveries.abandon_after() + timedelta(seconds=1)
    assert notify.relay(later)["abandoned"] == 1
    run_jobs(app, allow_failed=True)  # RQ may file the killed worker's job as failed
    hook = _webhook_delivery(session)
    assert (hook.status, hook.attempts) == ("delivered", 2)
    assert receiver.answered_ok == 1
    first, second = receiver.hits
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"dlv_{hook.id}"
    Webhook(endpoint.secret).verify(second.body, second.headers)


def _webhook_delivery(session: Session) -> Delivery:
    deadline = time.monotonic() + 10
    while True:  # the claim commits just before the request goes out
        session.expire_all()
        with unscoped(session):
            hook = session.scalar(select(Delivery).where(Delivery.channel == "webhook"))
        session.rollback()
        if hook is not None and (hook.status != "pending" or time.monotonic() > deadline):
            return hook
        time.sleep(0.05)


def test_relay_query_reads_the_partial_index(app: Flask) -> None:
    stmt = deliveries.relay_query(utcnow())
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    with app.extensions["helpdesk.engine"].connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: make the plan stable
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(f"EXPLAIN {sql}"))
    assert "Index Scan using ix_deliveries_due" in plan
