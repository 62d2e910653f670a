"""Prometheus metrics for the job runner, read from Redis and the database at scrape time.

Why a collector instead of gauges set as things happen: the web runs as several gunicorn
processes and the workers run elsewhere, so a gauge set in one process is invisible to a
scrape answered by another. Reading the shared state on each scrape (RQ's Redis keys, the
partial indexes of `helpdesk.services.job_status`, `job_runs`) makes every process answer
the same without a multiprocess directory.

Two things must be recorded as they happen, and both live in Redis so any process can
write and any can read: how long a job waited between enqueue and start (histogram
buckets in a hash: HINCRBY is atomic across processes; the worker calls
`record_job_start`), and the running count of fired SLA events, which the collector
advances from an id cursor so a scrape reads only the rows added since the last one.

The same registry also carries `helpdesk_ready` (the /readyz verdict, evaluated at scrape
time) and the per-request counters of `helpdesk.request_metrics` (every gunicorn process's,
summed, when PROMETHEUS_MULTIPROC_DIR is set).

/metrics answers only to `Authorization: Bearer <METRICS_TOKEN>` when that setting is set,
otherwise only to loopback clients that did not come through an unconfigured proxy.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from redis import Redis
from redis.exceptions import RedisError
from rq.job import Job
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from helpdesk import request_metrics
from helpdesk.models import BREACH_LEVEL, SlaEvent
from helpdesk.services import job_status, scan_queue
from helpdesk.services.tasks import QUEUES
from helpdesk.tenancy import unscoped

log = logging.getLogger(__name__)

LATENCY_KEY = "helpdesk:metrics:job_wait:{queue}"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
SLA_COUNTS_KEY = "helpdesk:metrics:sla_events"
SLA_LOCK_KEY = "helpdesk:metrics:sla_events:lock"


# --- recorded as it happens ---------------------------------------------------------------


def _bucket(seconds: float) -> str:
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return repr(bound)
    return "+Inf"


def record_job_start(job: Job, now: datetime | None = None) -> None:
    """Record how long `job` waited in its queue (call as the worker starts it).

    Never raises for a Redis problem: a lost sample must not fail the job.
    """
    if job.enqueued_at is None or job.origin not in QUEUES:
        return
    started = job.started_at or now or datetime.now(UTC)
    waited = max(0.0, (started - job.enqueued_at).total_seconds())
    key = LATENCY_KEY.format(queue=job.origin)
    try:
        with job.connection.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, _bucket(waited), 1)
            pipe.hincrby(key, "count", 1)
            pipe.hincrbyfloat(key, "sum", waited)
            pipe.execute()
    except RedisError as exc:
        log.warning("job_wait_not_recorded queue=%s error=%s", job.origin, type(exc).__name__)


def job_wait_histogram(conn: Redis) -> dict[str, tuple[list[tuple[str, float]], float]]:
    """Return {queue: (cumulative buckets, sum)} of recorded enqueue-to-start waits."""
    result = {}
    with conn.pipeline(transaction=False) as pipe:
        for queue in QUEUES:
            pipe.hgetall(LATENCY_KEY.format(queue=queue))
        raw_by_queue: list[dict[bytes, bytes]] = pipe.execute()
    for queue, raw in zip(QUEUES, raw_by_queue, strict=True):
        values = {_text(k): _text(v) for k, v in raw.items()}
        running = 0
        buckets = []
        for bound in LATENCY_BUCKETS:
            running += int(values.get(repr(bound), 0))
            buckets.append((repr(bound), float(running)))
        running += int(values.get("+Inf", 0))
        buckets.append(("+Inf", float(running)))
        result[queue] = (buckets, float(values.get("sum", 0.0)))
    return result


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def sla_event_totals(session: Session, conn: Redis) -> dict[str, int]:
    """Return {"warning": n, "breach": n}: SLA events fired so far.

    Counts only rows added since the last scrape (an id cursor in Redis, advanced under a
    short lock so concurrent scrapes do not count twice); the first scrape after Redis
    lost its data counts the table once. A row whose transaction commits after a scrape
    already saw a higher id is missed (rare: two sweeps racing); exact figures come from
    `sla_events` itself. `session` must be unscoped.
    """
    if conn.set(SLA_LOCK_KEY, "1", nx=True, ex=30):
        try:
            _advance_sla_counts(session, conn)
        finally:
            conn.delete(SLA_LOCK_KEY)
    raw = cast(dict[bytes, bytes], conn.hgetall(SLA_COUNTS_KEY))
    stored = {_text(k): int(_text(v)) for k, v in raw.items()}
    return {"warning": stored.get("warning", 0), "breach": stored.get("breach", 0)}


def _advance_sla_counts(session: Session, conn: Redis) -> None:
    cursor = int(_text(cast(bytes | None, conn.hget(SLA_COUNTS_KEY, "cursor")) or b"0"))
    newest = session.scalar(select(func.max(SlaEvent.id))) or 0
    if newest < cursor:  # the table was restored or emptied: count again from scratch
        conn.delete(SLA_COUNTS_KEY)
        cursor = 0
    if newest == cursor:
        return
    is_breach = SlaEvent.level == BREACH_LEVEL
    rows = session.execute(
        select(is_breach, func.count())
        .where(SlaEvent.id > cursor, SlaEvent.id <= newest)
        .group_by(is_breach)
    )
    with conn.pipeline(transaction=True) as pipe:
        for breach, count in rows:
            pipe.hincrby(SLA_COUNTS_KEY, "breach" if breach else "warning", int(count))
        pipe.hset(SLA_COUNTS_KEY, "cursor", str(newest))
        pipe.execute()


# --- read at scrape time ------------------------------------------------------------------

# Per-queue gauges: (name, help, value read from a QueueStatus).
QUEUE_GAUGES: tuple[tuple[str, str, Callable[[job_status.QueueStatus], float]], ...] = (
    ("helpdesk_queue_depth", "Jobs waiting in the queue", lambda q: q.depth),
    (
        "helpdesk_queue_oldest_job_age_seconds",
        "Seconds the job at the head of the queue has waited (0 when empty)",
        lambda q: q.oldest_age_seconds or 0.0,
    ),
    ("helpdesk_queue_started_jobs", "Jobs of the queue running now", lambda q: q.started),
    ("helpdesk_failed_jobs", "Jobs in the queue's failed registry", lambda q: q.failed),
    (
        "helpdesk_scheduled_jobs",
        "Jobs scheduled to run later (RQ retries included)",
        lambda q: q.scheduled,
    ),
    ("helpdesk_queue_workers", "Live workers listening on the queue", lambda q: q.workers),
    (
        "helpdesk_queue_draining",
        "1 while operators have marked the queue as draining (jobs drain)",
        lambda q: 1 if q.draining_since else 0,
    ),
)


def _gauge(name: str, doc: str, label: str, values: Mapping[str, float]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for label_value, number in values.items():
        family.add_metric([label_value], number)
    return family


class JobCollector(Collector):
    """Queue, delivery, outbox and SLA-sweep figures for one app's Redis and database."""

    def __init__(self, redis: Redis, sessions: sessionmaker[Session]) -> None:
        self.redis = redis
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        up = GaugeMetricFamily(
            "helpdesk_metrics_source_up",
            "1 when this scrape could read the source (redis, database), else 0",
            labels=["source"],
        )
        sources = (("redis", self._redis_metrics), ("database", self._database_metrics))
        for source, read in sources:
            try:
                metrics = list(read(now))
            except (RedisError, SQLAlchemyError) as exc:
                error = type(exc).__name__
                log.warning("metrics_source_unreachable source=%s error=%s", source, error)
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from metrics
        yield up

    def _redis_metrics(self, now: datetime) -> Iterator[Metric]:
        queues = job_status.queue_status(self.redis, now)
        for name, doc, read in QUEUE_GAUGES:
            yield _gauge(name, doc, "queue", {q.name: read(q) for q in queues})
        wait = HistogramMetricFamily(
            "helpdesk_job_enqueue_to_start_seconds",
            "Seconds between a job's enqueue and its start (recorded by the workers)",
            labels=["queue"],
        )
        for queue, (buckets, total) in job_wait_histogram(self.redis).items():
            wait.add_metric([queue], buckets, sum_value=total)
        yield wait

    def _database_metrics(self, now: datetime) -> Iterator[Metric]:
        with self.sessions() as session, unscoped(session):
            deliveries = job_status.delivery_counts(session, now)
            outbox = job_status.outbox_status(session, now)
            runs = {r.name: r for r in job_status.periodic_runs(session, now)}
            scan_backlog = scan_queue.backlog(session, now)
            try:
                sla_totals: dict[str, int] | None = sla_event_totals(session, self.redis)
            except RedisError:  # the cursor lives in Redis: skip only this counter
                sla_totals = None
        counts = deliveries.counts
        yield _gauge("helpdesk_deliveries", "Deliveries per unfinished status", "status", counts)
        yield GaugeMetricFamily(
            "helpdesk_delivery_oldest_pending_age_seconds",
            "Age of the oldest pending delivery (0 when none)",
            value=deliveries.oldest_pending_age_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "helpdesk_outbox_undispatched",
            "Outbox events not yet dispatched",
            value=outbox.undispatched,
        )
        yield GaugeMetricFamily(
            "helpdesk_outbox_oldest_undispatched_age_seconds",
            "Age of the oldest undispatched outbox event (0 when none)",
            value=outbox.oldest_age_seconds or 0.0,
        )
        yield from _periodic_metrics(runs)
        yield from _scan_metrics(scan_backlog)
        if sla_totals is not None:
            events = CounterMetricFamily(
                "helpdesk_sla_events", "SLA warnings and breaches fired", labels=["level"]
            )
            for level, count in sla_totals.items():
                events.add_metric([level], count)
            yield events


def _periodic_metrics(runs: Mapping[str, job_status.PeriodicRun]) -> Iterator[Metric]:
    sweep = runs[job_status.SWEEP_JOB]
    yield GaugeMetricFamily(
        "helpdesk_sla_sweep_age_seconds",
        "Seconds since the last SLA sweep finished (+Inf before the first)",
        value=_age_value(sweep),
    )
    yield GaugeMetricFamily(
        "helpdesk_sla_sweep_duration_seconds",
        "How long the last finished SLA sweep took (NaN before the first)",
        value=math.nan if sweep.duration_seconds is None else sweep.duration_seconds,
    )
    yield _gauge(
        "helpdesk_periodic_job_age_seconds",
        "Seconds since each periodic job last finished (+Inf before the first)",
        "job",
        {name: _age_value(run) for name, run in runs.items()},
    )


def _scan_metrics(backlog: scan_queue.ScanBacklog) -> Iterator[Metric]:
    yield _gauge(
        "helpdesk_attachments_scan_status",
        "Attachments not yet settled, by scan status (pending, error); not downloadable",
        "status",
        backlog.counts,
    )
    yield GaugeMetricFamily(
        "helpdesk_attachment_oldest_pending_age_seconds",
        "Age of the oldest attachment waiting for its virus scan (0 when none)",
        value=backlog.oldest_pending_age_seconds or 0.0,
    )
    yield GaugeMetricFamily(
        "helpdesk_attachment_scans_given_up",
        "Attachments whose scan failed every retry: alarm; fix clamd, then attachments rescan",
        value=backlog.given_up,
    )


def _age_value(run: job_status.PeriodicRun) -> float:
    return math.inf if run.age_seconds is None else run.age_seconds


# --- the endpoint's plumbing --------------------------------------------------------------


class ReadyCollector(Collector):
    """`helpdesk_ready`: the /readyz verdict, evaluated at scrape time (1 ready, 0 not)."""

    def __init__(self, readiness: Callable[[], Mapping[str, Mapping[str, object]]]) -> None:
        self.readiness = readiness

    def collect(self) -> Iterator[Metric]:
        try:
            checks = {name: bool(check["ok"]) for name, check in self.readiness().items()}
        except Exception as exc:  # a scrape must answer even when a check has a bug
            log.warning("readiness_unreadable error=%s", type(exc).__name__)
            checks = {"readiness": False}
        yield GaugeMetricFamily(
            "helpdesk_ready", "1 when /readyz would answer 200, else 0", value=all(checks.values())
        )
        yield _gauge(
            "helpdesk_ready_check",
            "Each /readyz check: 1 passing, 0 failing",
            "check",
            {name: 1 if ok else 0 for name, ok in checks.items()},
        )


def build_registry(
    redis: Redis,
    sessions: sessionmaker[Session],
    readiness: Callable[[], Mapping[str, Mapping[str, object]]] | None = None,
) -> CollectorRegistry:
    """Return the registry /metrics renders (one per app, never the global one).

    It holds the job collector, the readiness gauge (when `readiness` is given) and the
    request metrics of every web process (`helpdesk.request_metrics`).
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(JobCollector(redis, sessions))
    if readiness is not None:
        registry.register(ReadyCollector(readiness))
    request_metrics.register(registry)
    return registry


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """Return (body, content type): Prometheus text 0.0.4, or OpenMetrics if `accept` asks."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def scrape_allowed(
    token: str,
    authorization: str | None,
    remote_addr: str | None,
    forwarded: bool,
    proxy_hops: int,
) -> bool:
    """Decide whether a /metrics request may be answered.

    With a token configured, only `Bearer <token>` counts (from anywhere). Without one,
    only loopback clients — and not a request that came through a proxy the app was not
    told about (PROXY_HOPS=0 with a forwarding header): a proxy on the same host would
    make every visitor look local.
    """
    if token:
        expected = f"Bearer {token}".encode()
        return hmac.compare_digest((authorization or "").encode(), expected)
    if forwarded and proxy_hops == 0:
        return False
    try:
        return ipaddress.ip_address(remote_addr or "").is_loopback
    except ValueError:
        return False
