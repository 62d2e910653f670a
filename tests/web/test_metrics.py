"""/metrics: who may scrape it, and that each job-runner figure matches the real state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from rq import Queue, SimpleWorker
from rq.job import Job
from sqlalchemy import delete, text
from sqlalchemy.orm import Session

from helpdesk import create_app, metrics
from helpdesk.config import Settings
from helpdesk.models import (
    Delivery,
    JobRun,
    OutboxEvent,
    SlaEvent,
    SlaTarget,
)
from helpdesk.services import job_status
from helpdesk.tenancy import tenant_scope, unscoped
from tests.factories import make_ticket

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: FlaskClient, **kw: object) -> Samples:
    response = client.get("/metrics", **kw)
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def redis(app: Flask) -> Redis:
    conn: Redis = app.extensions["helpdesk.redis"]
    return conn


# --- access -------------------------------------------------------------------------------


def test_loopback_may_scrape_without_a_token(client: FlaskClient) -> None:
    samples = scrape(client)  # the test client comes from 127.0.0.1
    assert value(samples, "helpdesk_metrics_source_up", source="redis") == 1
    assert value(samples, "helpdesk_metrics_source_up", source="database") == 1
    assert scrape(client, environ_base={"REMOTE_ADDR": "::1"})
    assert client.get("/metrics").headers["Cache-Control"] == "no-store"


def test_openmetrics_when_the_scraper_asks_for_it(client: FlaskClient) -> None:
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    response = client.get("/metrics", headers={"Accept": accept})
    assert response.headers["Content-Type"].startswith("application/openmetrics-text")
    body = response.get_data(as_text=True)
    assert body.rstrip().endswith("# EOF") and 'helpdesk_queue_depth{queue="sla"} 0' in body


@pytest.mark.parametrize(
    "environ, headers",
    [
        ({"REMOTE_ADDR": "10.1.2.3"}, {}),
        ({"REMOTE_ADDR": "192.168.0.9"}, {"Authorization": "Bearer anything"}),
        # A proxy on the same host the app was not told about (PROXY_HOPS=0).
        ({"REMOTE_ADDR": "127.0.0.1"}, {"X-Forwarded-For": "203.0.113.7"}),
        ({"REMOTE_ADDR": "127.0.0.1"}, {"Forwarded": "for=203.0.113.7"}),
    ],
)
def test_everyone_else_gets_404_without_a_token(
    client: FlaskClient, environ: dict[str, str], headers: dict[str, str]
) -> None:
    response = client.get("/metrics", environ_base=environ, headers=headers)
    assert response.status_code == 404
    assert "helpdesk_" not in response.get_data(as_text=True)


def test_with_a_token_only_the_bearer_token_counts(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-scrape-token")
    assert client.get("/metrics").status_code == 404  # loopback is not enough any more
    for wrong in ("Bearer wrong", "s3cret-scrape-token", "Basic s3cret-scrape-token", ""):
        assert client.get("/metrics", headers={"Authorization": wrong}).status_code == 404
    far = {"REMOTE_ADDR": "10.1.2.3"}
    auth = {"Authorization": "Bearer s3cret-scrape-token"}
    assert scrape(client, environ_base=far, headers=auth)


def test_behind_a_configured_proxy_loopback_means_the_real_client(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "PROXY_HOPS", 1)
    assert scrape(client, headers={"X-Forwarded-For": "127.0.0.1"})


# --- figures ------------------------------------------------------------------------------


def test_queue_figures(client: FlaskClient, redis: Redis) -> None:
    notify = Queue("notify", connection=redis)
    first = notify.enqueue("operator.add", args=(1, 2))
    first.enqueued_at = datetime.now(UTC) - timedelta(seconds=42)
    first.save()
    notify.enqueue("operator.add", args=(3, 4))
    scan = Queue("scan", connection=redis)
    scan.enqueue("operator.truediv", args=(1, 0))
    SimpleWorker([scan], connection=redis).work(burst=True)
    redis.set(job_status.DRAIN_KEY.format(queue="notify"), datetime.now(UTC).isoformat())

    samples = scrape(client)
    assert value(samples, "helpdesk_queue_depth", queue="notify") == 2
    assert value(samples, "helpdesk_queue_depth", queue="sla") == 0
    assert 42 <= value(samples, "helpdesk_queue_oldest_job_age_seconds", queue="notify") < 60
    assert value(samples, "helpdesk_queue_oldest_job_age_seconds", queue="sla") == 0
    assert value(samples, "helpdesk_failed_jobs", queue="scan") == 1
    assert value(samples, "helpdesk_queue_draining", queue="notify") == 1
    assert value(samples, "helpdesk_queue_draining", queue="scan") == 0
    assert value(samples, "helpdesk_queue_workers", queue="scan") == 0  # the burst one left


def test_delivery_outbox_and_sweep_figures(client: FlaskClient, session: Session, world) -> None:
    now = datetime.now(UTC)
    for slug, statuses in (("alpha", ["dead", "dead", "pending"]), ("beta", ["dead", "digest"])):
        with tenant_scope(session, world[slug]["org"].id):
            for i, status in enumerate(statuses):
                event = OutboxEvent(kind="ticket.created", created_at=now - timedelta(minutes=2))
                session.add(event)
                session.flush()
                created = now - timedelta(seconds=75)
                session.add(Delivery(event_id=event.id, channel="email", target=f"user:{i}",
                                     status=status, created_at=created))  # fmt: skip
            session.commit()
    session.add(JobRun(name="sla.sweep", started_at=now - timedelta(seconds=91),
                       finished_at=now - timedelta(seconds=90), duration_ms=250))  # fmt: skip
    session.commit()

    samples = scrape(client)
    counts = {s.value: value(samples, "helpdesk_deliveries", status=s.value)
              for s in job_status.COUNTED_STATUSES}  # fmt: skip
    assert counts == {"pending": 1, "sending": 0, "failed": 0, "dead": 3, "digest": 1}
    assert 75 <= value(samples, "helpdesk_delivery_oldest_pending_age_seconds") < 100
    assert value(samples, "helpdesk_outbox_undispatched") == 5
    assert 120 <= value(samples, "helpdesk_outbox_oldest_undispatched_age_seconds") < 150
    assert 90 <= value(samples, "helpdesk_sla_sweep_age_seconds") < 120
    assert value(samples, "helpdesk_sla_sweep_duration_seconds") == 0.25
    assert value(samples, "helpdesk_periodic_job_age_seconds", job="notify.relay") == float("inf")


def test_sweep_age_is_infinite_before_the_first_sweep(client: FlaskClient) -> None:
    samples = scrape(client)
    assert value(samples, "helpdesk_sla_sweep_age_seconds") == float("inf")


def _fire(session: Session, ticket_ids: list[tuple[int, int]], level: str) -> None:
    now = datetime.now(UTC)
    for org_id, ticket_id in ticket_ids:
        with tenant_scope(session, org_id):
            session.add(SlaEvent(ticket_id=ticket_id, target=SlaTarget.RESOLUTION.value,
                                 level=level, due_at=now, threshold_at=now))  # fmt: skip
            session.commit()


def test_sla_event_counter_counts_new_rows_only_once(
    client: FlaskClient, session: Session, world
) -> None:
    tickets = [
        (w["org"].id, make_ticket(session, w["org"], w["agent"]).id)
        for w in (world["alpha"], world["beta"])
    ]
    _fire(session, tickets, "75%")
    _fire(session, tickets[:1], "breach")
    samples = scrape(client)
    assert value(samples, "helpdesk_sla_events_total", level="warning") == 2
    assert value(samples, "helpdesk_sla_events_total", level="breach") == 1
    assert value(scrape(client), "helpdesk_sla_events_total", level="warning") == 2  # no recount

    _fire(session, tickets[1:], "breach")
    samples = scrape(client)
    assert value(samples, "helpdesk_sla_events_total", level="breach") == 2
    assert value(samples, "helpdesk_sla_events_total", level="warning") == 2

    # The table restored to an older state (ids below the cursor): count again from scratch.
    with unscoped(session):
        session.execute(delete(SlaEvent))
        session.commit()
    samples = scrape(client)
    assert value(samples, "helpdesk_sla_events_total", level="breach") == 0
    _fire(session, tickets[:1], "breach")
    assert value(scrape(client), "helpdesk_sla_events_total", level="breach") == 1


def test_enqueue_to_start_histogram(client: FlaskClient, redis: Redis) -> None:
    now = datetime.now(UTC)
    sla = Queue("sla", connection=redis)
    for waited in (0.02, 3.0, 3.5, 900.0):
        job = sla.enqueue("operator.add", args=(1, 2))
        job.enqueued_at = now - timedelta(seconds=waited)
        metrics.record_job_start(job, now)
    samples = scrape(client)
    bucket = "helpdesk_job_enqueue_to_start_seconds_bucket"
    assert value(samples, bucket, queue="sla", le="0.05") == 1
    assert value(samples, bucket, queue="sla", le="2.5") == 1
    assert value(samples, bucket, queue="sla", le="5.0") == 3
    assert value(samples, bucket, queue="sla", le="600.0") == 3
    assert value(samples, bucket, queue="sla", le="+Inf") == 4
    assert value(samples, "helpdesk_job_enqueue_to_start_seconds_count", queue="sla") == 4
    total = value(samples, "helpdesk_job_enqueue_to_start_seconds_sum", queue="sla")
    assert total == pytest.approx(906.52)
    assert value(samples, bucket, queue="notify", le="+Inf") == 0


class RecordingWorker(SimpleWorker):
    """The hook jobs/worker.py is to add: record each job's wait as it starts."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        metrics.record_job_start(job)
        super().execute_job(job, queue)


def test_a_worker_with_the_hook_records_every_job(client: FlaskClient, redis: Redis) -> None:
    scan = Queue("scan", connection=redis)
    for _ in range(3):
        scan.enqueue("operator.add", args=(1, 2))
    RecordingWorker([scan], connection=redis).work(burst=True)
    samples = scrape(client)
    assert value(samples, "helpdesk_job_enqueue_to_start_seconds_count", queue="scan") == 3
    assert value(samples, "helpdesk_job_enqueue_to_start_seconds_bucket", queue="scan",
                 le="+Inf") == 3  # fmt: skip


def test_record_job_start_uses_the_started_time_and_ignores_foreign_queues(
    redis: Redis,
) -> None:
    job = Queue("default", connection=redis).enqueue("operator.add", args=(1, 2))
    assert job.enqueued_at is not None
    job.started_at = job.enqueued_at + timedelta(seconds=7)
    metrics.record_job_start(job)
    assert metrics.job_wait_histogram(redis)["default"][1] == pytest.approx(7.0)
    stray = Queue("mailer", connection=redis).enqueue("operator.add", args=(1, 2))
    metrics.record_job_start(stray)
    assert redis.exists(metrics.LATENCY_KEY.format(queue="mailer")) == 0


def test_a_dependency_down_is_reported_not_a_500(settings: Settings) -> None:
    broken = create_app(Settings(**{**settings.__dict__, "redis_url": "redis://127.0.0.1:1/0"}))
    samples = scrape(broken.test_client())
    assert value(samples, "helpdesk_metrics_source_up", source="redis") == 0
    assert value(samples, "helpdesk_metrics_source_up", source="database") == 1
    assert value(samples, "helpdesk_outbox_undispatched") == 0
    assert not any(name == "helpdesk_sla_events_total" for name, _ in samples)
    assert not any(name == "helpdesk_queue_depth" for name, _ in samples)
    broken.extensions["helpdesk.engine"].dispose()


def test_dead_count_can_use_the_org_status_index(session: Session) -> None:
    """Dead deliveries are counted by one probe of (org_id, status, …) per org, not a scan."""
    query = job_status.dead_per_org_query()
    sql = str(query.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    with unscoped(session):
        session.execute(text("SET LOCAL enable_seqscan = off"))  # what a big table would do
        plan = "\n".join(session.execute(text("EXPLAIN " + sql)).scalars())
        session.rollback()
    assert "ix_deliveries_org_status_updated" in plan, plan


# --- /readyz reports the sweep's freshness without failing readiness ---------------------


def test_readyz_reports_a_sweep_that_never_ran(client: FlaskClient) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["status"] == "ok"
    sweep = ready.json["background"]["sla_sweep"]
    assert sweep["stale"] is True and sweep["age_seconds"] is None
    assert "never finished" in sweep["detail"] and "flask --app wsgi cron" in sweep["detail"]
    assert set(ready.json["background"]) == {"sla_sweep", "relay", "digests"}


@pytest.mark.parametrize("age, stale", [(5, False), (300, True)])
def test_readyz_sweep_freshness(
    client: FlaskClient, session: Session, age: int, stale: bool
) -> None:
    finished = datetime.now(UTC) - timedelta(seconds=age)
    session.add(JobRun(name="sla.sweep", started_at=finished, finished_at=finished,
                       duration_ms=40))  # fmt: skip
    session.commit()
    ready = client.get("/readyz")
    assert ready.status_code == 200  # a stalled sweep never takes the web out of rotation
    sweep = ready.json["background"]["sla_sweep"]
    assert sweep["stale"] is stale and age <= sweep["age_seconds"] < age + 30
    assert sweep["last_finished_at"] == finished.isoformat()
    assert ("check the cron process" in sweep["detail"]) is stale
