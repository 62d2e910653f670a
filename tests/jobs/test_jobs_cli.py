"""`flask jobs …` and `flask operators …`: every command docs/runbook.md tells operators to run.

Jobs here are real RQ jobs on the test Redis; the "failing" and "harmless" job functions
are stdlib callables (`operator.truediv` by zero, `operator.add`), so nothing is mocked.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from redis import Redis
from rq import Queue, SimpleWorker
from rq.executions import Execution
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import (
    Delivery,
    DeliveryStatus,
    EventKind,
    JobRun,
    OutboxEvent,
    User,
    WebhookEndpoint,
)
from helpdesk.services.tasks import QUEUES
from helpdesk.tenancy import tenant_scope, unscoped
from jobs import worker as worker_module


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    worker_module.init_app(app)  # what wsgi.py does: adds worker, cron and jobs
    return app.test_cli_runner()


@pytest.fixture
def redis(app: Flask) -> Redis:
    conn: Redis = app.extensions["helpdesk.redis"]
    return conn


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """`flask worker` reconfigures the root logger; put it back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers, root.level = handlers, level


def invoke(runner: FlaskCliRunner, *args: str) -> Result:
    return runner.invoke(args=list(args), catch_exceptions=False)


def failed_job(redis: Redis, queue: str) -> str:
    """Run a job that raises through a real worker, leaving it in the failed registry."""
    q = Queue(queue, connection=redis)
    job = q.enqueue("operator.truediv", args=(1, 0))
    SimpleWorker([q], connection=redis).work(burst=True)
    assert job.id in q.failed_job_registry
    return job.id


def add_delivery(
    session: Session, org_id: int, status: DeliveryStatus, target: str, **extra: object
) -> Delivery:
    with tenant_scope(session, org_id):
        event = OutboxEvent(kind=extra.pop("kind", EventKind.TICKET_CREATED.value), payload={})
        session.add(event)
        session.flush()
        delivery = Delivery(
            event_id=event.id, channel="webhook", target=target, status=status.value, **extra
        )
        session.add(delivery)
        session.commit()
    return delivery


def add_endpoint(session: Session, org_id: int) -> WebhookEndpoint:
    with tenant_scope(session, org_id):
        endpoint = WebhookEndpoint(url="https://hooks.example.test/x", events=["*"], secret="s")
        session.add(endpoint)
        session.commit()
    return endpoint


# --- status ------------------------------------------------------------------------------


def test_status_on_an_idle_system(runner: FlaskCliRunner) -> None:
    result = invoke(runner, "jobs", "status")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == [
        "queue", "depth", "oldest", "started", "failed", "scheduled", "workers"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:5]] == list(QUEUES)
    assert "workers alive: 0" in result.output
    assert "sla.sweep: never finished" in result.output
    assert "outbox undispatched: 0" in result.output


def test_status_reports_queues_deliveries_outbox_and_periodic_runs(
    runner: FlaskCliRunner, redis: Redis, session: Session, world
) -> None:
    now = datetime.now(UTC)
    alpha, beta = world["alpha"]["org"].id, world["beta"]["org"].id
    notify = Queue("notify", connection=redis)
    notify.enqueue("operator.add", args=(1, 2))
    notify.enqueue("operator.add", args=(3, 4))
    Queue("sla", connection=redis).enqueue_in(timedelta(minutes=5), "operator.add", 1, 2)
    failed_job(redis, "scan")
    add_delivery(session, alpha, DeliveryStatus.PENDING, "webhook:1",
                 created_at=now - timedelta(seconds=30))  # fmt: skip
    add_delivery(session, alpha, DeliveryStatus.FAILED, "webhook:2")
    add_delivery(session, alpha, DeliveryStatus.DEAD, "webhook:3")
    add_delivery(session, beta, DeliveryStatus.DEAD, "webhook:4")
    add_delivery(session, beta, DeliveryStatus.DIGEST, "user:5")
    add_delivery(session, beta, DeliveryStatus.DELIVERED, "user:6")
    with tenant_scope(session, alpha):
        session.add(OutboxEvent(kind="ticket.updated", created_at=now - timedelta(seconds=90)))
        session.commit()
    session.add(JobRun(name="sla.sweep", started_at=now - timedelta(seconds=5),
                       finished_at=now - timedelta(seconds=4), duration_ms=120))  # fmt: skip
    session.commit()

    result = invoke(runner, "jobs", "status", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    queues = {q["name"]: q for q in data["queues"]}
    assert queues["notify"]["depth"] == 2 and queues["notify"]["oldest_age_seconds"] >= 0
    assert queues["sla"]["scheduled"] == 1 and queues["sla"]["depth"] == 0
    assert queues["sla"]["oldest_age_seconds"] is None
    assert queues["scan"]["failed"] == 1
    assert data["deliveries"]["counts"] == {
        "pending": 1, "sending": 0, "failed": 1, "dead": 2, "digest": 1
    }  # fmt: skip
    assert 29 <= data["deliveries"]["oldest_pending_age_seconds"] < 60
    # Every delivery above has its own event, plus the one added on its own.
    assert data["outbox"]["undispatched"] == 7
    assert data["outbox"]["oldest_age_seconds"] >= 89
    runs = {r["name"]: r for r in data["periodic"]}
    assert runs["sla.sweep"]["duration_seconds"] == 0.12
    assert runs["sla.sweep"]["stale"] is False and runs["notify.relay"]["stale"] is True

    text = invoke(runner, "jobs", "status").output
    assert "deliveries: pending 1, sending 0, failed 1, dead 2, digest 1" in text
    assert "sla.sweep: finished" in text and "notify.relay: never finished" in text


def test_status_names_an_unreachable_redis(settings) -> None:
    from helpdesk import create_app
    from helpdesk.config import Settings

    broken = create_app(Settings(**{**settings.__dict__, "redis_url": "redis://127.0.0.1:1/0"}))
    worker_module.init_app(broken)
    result = broken.test_cli_runner().invoke(args=["jobs", "status"])
    assert result.exit_code == 1
    assert "Redis is unreachable" in result.output and "REDIS_URL" in result.output
    broken.extensions["helpdesk.engine"].dispose()


# --- requeue-failed ----------------------------------------------------------------------


def test_requeue_failed_one_queue_then_all(runner: FlaskCliRunner, redis: Redis) -> None:
    sla_job = failed_job(redis, "sla")
    failed_job(redis, "notify")
    result = invoke(runner, "jobs", "requeue-failed", "--queue", "sla")
    assert result.exit_code == 0
    assert "sla: requeued 1" in result.output and "requeued 1 failed job(s)" in result.output
    sla = Queue("sla", connection=redis)
    assert sla.job_ids == [sla_job] and sla.failed_job_registry.count == 0
    assert Queue("notify", connection=redis).failed_job_registry.count == 1

    result = invoke(runner, "jobs", "requeue-failed")
    assert "notify: requeued 1" in result.output and "requeued 1 failed job(s)" in result.output
    assert Queue("notify", connection=redis).count == 1


def test_requeue_failed_removes_entries_whose_job_expired(
    runner: FlaskCliRunner, redis: Redis
) -> None:
    job_id = failed_job(redis, "default")
    redis.delete(f"rq:job:{job_id}")  # the job hash expired (result_ttl) before the requeue
    result = invoke(runner, "jobs", "requeue-failed", "--queue", "default")
    assert "default: requeued 0 (1 expired job(s) removed" in result.output
    assert Queue("default", connection=redis).failed_job_registry.count == 0


def test_requeue_failed_refuses_an_unknown_queue(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["jobs", "requeue-failed", "--queue", "emails"])
    assert result.exit_code == 2
    assert "'emails' is not one of 'default', 'notify', 'scan', 'sla'" in result.output


# --- retry-dead --------------------------------------------------------------------------


def test_retry_dead_by_endpoint_and_event_across_orgs(
    runner: FlaskCliRunner, redis: Redis, session: Session, world
) -> None:
    alpha, beta = world["alpha"]["org"].id, world["beta"]["org"].id
    hook = add_endpoint(session, alpha)
    on_hook = add_delivery(session, alpha, DeliveryStatus.DEAD, "webhook:a",
                           endpoint_id=hook.id, attempts=6)  # fmt: skip
    breach = add_delivery(session, beta, DeliveryStatus.DEAD, "webhook:b",
                          kind=EventKind.SLA_BREACHED.value)  # fmt: skip
    other = add_delivery(session, beta, DeliveryStatus.DEAD, "webhook:c")

    result = invoke(runner, "jobs", "retry-dead", "--endpoint", str(hook.id))
    assert "1 dead delivery(ies) set back to pending" in result.output
    assert "queued for delivery on notify" in result.output
    result = invoke(runner, "jobs", "retry-dead", "--event", "sla.breached")
    assert "1 dead delivery(ies) set back to pending" in result.output

    session.expire_all()
    with unscoped(session):
        status = dict(session.execute(select(Delivery.id, Delivery.status)).all())
        attempts = session.get(Delivery, on_hook.id).attempts
    assert status == {on_hook.id: "pending", breach.id: "pending", other.id: "dead"}
    assert attempts == 0
    queued = [job.args for job in Queue("notify", connection=redis).jobs]
    assert sorted(queued) == sorted([(alpha, on_hook.id), (beta, breach.id)])

    result = invoke(runner, "jobs", "retry-dead")
    assert "1 dead delivery(ies) set back to pending" in result.output


def test_dead_lists_the_newest_dead_deliveries_of_every_org(
    runner: FlaskCliRunner, session: Session, world
) -> None:
    assert invoke(runner, "jobs", "dead").output.strip() == "no dead deliveries"
    now = datetime.now(UTC)
    alpha, beta = world["alpha"]["org"].id, world["beta"]["org"].id
    old = add_delivery(session, alpha, DeliveryStatus.DEAD, "webhook:1", attempts=6,
                       updated_at=now - timedelta(hours=2), last_error="HTTP 500")  # fmt: skip
    new = add_delivery(session, beta, DeliveryStatus.DEAD, "user:9", attempts=6,
                       updated_at=now - timedelta(minutes=1), kind="sla.breached",
                       last_error="SMTP 550 mailbox unavailable")  # fmt: skip
    mid = add_delivery(session, alpha, DeliveryStatus.DEAD, "webhook:2",
                       updated_at=now - timedelta(hours=1))  # fmt: skip
    add_delivery(session, alpha, DeliveryStatus.DELIVERED, "webhook:3")

    lines = invoke(runner, "jobs", "dead", "--limit", "2").output.splitlines()
    assert lines[0].startswith(f"#{new.id} org=beta event=sla.breached user:9 attempts=6 dead")
    assert lines[0].endswith(": SMTP 550 mailbox unavailable")
    assert lines[1].startswith(f"#{mid.id} org=alpha event=ticket.created webhook:2")
    assert lines[1].endswith(": (no error recorded)")
    assert lines[2].startswith("fix the cause, then: flask --app wsgi jobs retry-dead")
    assert f"#{old.id} " in invoke(runner, "jobs", "dead").output


def test_retry_dead_explains_bad_filters(runner: FlaskCliRunner, world) -> None:
    result = runner.invoke(args=["jobs", "retry-dead", "--endpoint", "999"])
    assert result.exit_code == 1 and "no webhook endpoint with id 999" in result.output
    result = runner.invoke(args=["jobs", "retry-dead", "--event", "ticket.deleted"])
    assert result.exit_code == 2 and "'ticket.deleted' is not one of" in result.output
    result = invoke(runner, "jobs", "retry-dead")
    assert result.output.strip() == "0 dead delivery(ies) set back to pending"


# --- drain / undrain ---------------------------------------------------------------------


def live_worker(redis: Redis, queues: list[str], name: str) -> SimpleWorker:
    """A worker registered in Redis as alive (what a running `flask worker` looks like)."""
    worker = SimpleWorker([Queue(q, connection=redis) for q in queues], connection=redis,
                          name=name)  # fmt: skip
    worker.register_birth()
    return worker


def test_drain_prints_restart_commands_and_waits_until_drained(
    runner: FlaskCliRunner, redis: Redis, app: Flask, keep_logging: None
) -> None:
    busy = live_worker(redis, ["sla", "notify", "scan", "default"], "w-all")
    only = live_worker(redis, ["notify"], "w-notify")
    result = invoke(runner, "jobs", "drain", "--queue", "notify")
    assert result.exit_code == 0
    assert "notify is marked as draining since" in result.output
    assert "Workers are not told" in result.output
    assert "w-all (queues sla,notify,scan,default): flask --app wsgi worker -q sla,scan,default" \
        in result.output  # fmt: skip
    assert "w-notify (queues notify): (nothing: it served only this queue)" in result.output
    status = invoke(runner, "jobs", "status").output
    assert "DRAINING since" in next(x for x in status.splitlines() if x.startswith("notify"))

    result = runner.invoke(args=["jobs", "drain", "--queue", "notify", "--wait", "0"])
    assert result.exit_code == 1
    assert "not drained after 0 s: 2 worker(s) still listen on it (w-all, w-notify)" in (
        result.output
    )

    # The operator restarts the workers as told; jobs keep arriving on notify meanwhile.
    busy.register_death()
    only.register_death()
    Queue("notify", connection=redis).enqueue("operator.add", args=(1, 2))
    sla_job = Queue("sla", connection=redis).enqueue("operator.add", args=(2, 3))
    result = invoke(runner, "worker", "-q", "sla,scan,default", "--burst")
    assert result.exit_code == 0, result.output
    assert sla_job.get_status(refresh=True) == "finished"
    result = invoke(runner, "jobs", "drain", "--queue", "notify", "--wait", "5")
    assert result.exit_code == 0
    assert "notify is drained: no live worker listens on it and none of its jobs is running; " \
        "1 job(s) wait in it until you undrain." in result.output  # fmt: skip

    result = invoke(runner, "jobs", "undrain", "--queue", "notify")
    assert "notify is no longer marked as draining." in result.output
    assert "No live worker listens on notify yet (1 job(s) waiting). Start one: " \
        "flask --app wsgi worker -q sla,notify,scan,default" in result.output  # fmt: skip
    assert "DRAINING" not in invoke(runner, "jobs", "status").output
    again = invoke(runner, "jobs", "undrain", "--queue", "notify")
    assert "notify is not marked as draining." in again.output

    # Put back: workers on every queue again (recycled after --max-jobs) take the backlog.
    Queue("notify", connection=redis).enqueue("operator.add", args=(5, 6))
    assert invoke(runner, "worker", "--burst", "--max-jobs", "1").exit_code == 0
    assert Queue("notify", connection=redis).count == 1
    assert invoke(runner, "worker", "--burst").exit_code == 0
    assert Queue("notify", connection=redis).count == 0


def test_drain_wait_counts_running_jobs(runner: FlaskCliRunner, redis: Redis) -> None:
    q = Queue("scan", connection=redis)
    job = q.enqueue("operator.add", args=(1, 2))
    with redis.pipeline() as pipe:  # what a worker elsewhere does as it starts the job
        Execution.create(job, ttl=60, pipeline=pipe)
        pipe.execute()
    result = runner.invoke(args=["jobs", "drain", "--queue", "scan", "--wait", "0"])
    assert result.exit_code == 1
    assert "0 worker(s) still listen on it (none), 1 job(s) running" in result.output
    assert "No live worker listens on scan." in result.output


def test_drain_needs_a_known_queue(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["jobs", "drain"])
    assert result.exit_code == 2 and "Missing option '--queue'" in result.output
    result = runner.invoke(args=["jobs", "drain", "--queue", "mail"])
    assert result.exit_code == 2 and "'mail' is not one of" in result.output


# --- operators ---------------------------------------------------------------------------


def test_operators_grant_list_revoke(runner: FlaskCliRunner, session: Session, world) -> None:
    assert "no site operators" in invoke(runner, "operators", "list").output
    result = invoke(runner, "operators", "grant", "--email", "Agent@Alpha.test")
    assert result.output.strip() == "agent@alpha.test is now a site operator (can open /ops/rq)"
    assert invoke(runner, "operators", "list").output.strip() == "agent@alpha.test"
    user = session.scalar(select(User).where(User.email == "agent@alpha.test"))
    assert user is not None and user.is_operator
    result = invoke(runner, "operators", "revoke", "--email", "agent@alpha.test")
    assert result.output.strip() == "agent@alpha.test is no longer a site operator"
    session.refresh(user)
    assert not user.is_operator


def test_operators_grant_needs_an_existing_account(runner: FlaskCliRunner, world) -> None:
    result = runner.invoke(args=["operators", "grant", "--email", "nobody@example.test"])
    assert result.exit_code == 1
    assert "no account with email 'nobody@example.test'" in result.output
