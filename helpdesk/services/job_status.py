"""What the job runner is doing now: queues, workers, deliveries, outbox and periodic runs.

Why one module: `flask jobs status`, `/metrics` and `/readyz` must tell the same story, so
they read the same numbers the same cheap way — counters RQ keeps in Redis (LLEN, ZCARD),
the partial indexes on `deliveries` and `outbox_events`, one probe per org of the
(org_id, status, updated_at) index for dead deliveries, and the tiny `job_runs` table.
Nothing here counts tickets or scans a table that grows with them.

Draining is a marker, not a switch: `mark_draining` records in Redis that operators took a
queue out of service, so status and metrics can say why its backlog grows. Workers are
not told; they stop taking a queue only when restarted without it (docs/runbook.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from redis import Redis
from rq import Queue, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from sqlalchemy import BindParameter, Select, String, func, literal, select, true
from sqlalchemy.orm import Session

from helpdesk.models import Delivery, DeliveryStatus, JobRun, Organization, OutboxEvent
from helpdesk.services.tasks import QUEUES, get_queue

SWEEP_JOB = "sla.sweep"
RELAY_JOB = "notify.relay"
DIGEST_JOB = "notify.digests"
# Expected interval of each periodic job in jobs/cron.py (helpdesk never imports jobs) and
# the age of its last finished run after which it counts as stale: a minute for the
# 10 s sweep and the 5 s relay, three missed runs for the minutely digests.
PERIODIC_INTERVALS = {SWEEP_JOB: 10, RELAY_JOB: 5, DIGEST_JOB: 60}
STALE_AFTER = {SWEEP_JOB: 60, RELAY_JOB: 60, DIGEST_JOB: 180}
DRAIN_KEY = "helpdesk:drain:{queue}"
WORKER_COMMAND = "flask --app wsgi worker"
# Statuses counted through a partial index (due: pending/sending/failed; digest) or the
# per-org (org_id, status) probe (dead). Delivered and skipped rows grow without bound and
# are never counted.
COUNTED_STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.FAILED,
    DeliveryStatus.DEAD,
    DeliveryStatus.DIGEST,
)


@dataclass(frozen=True)
class QueueStatus:
    name: str
    depth: int
    oldest_age_seconds: float | None
    started: int
    failed: int
    scheduled: int
    workers: int
    draining_since: datetime | None


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    queues: tuple[str, ...]
    state: str
    current_job_id: str | None


@dataclass(frozen=True)
class DeliveryCounts:
    counts: dict[str, int]
    oldest_pending_age_seconds: float | None


@dataclass(frozen=True)
class DeadDelivery:
    id: int
    org_slug: str
    kind: str
    channel: str
    target: str
    attempts: int
    updated_at: datetime
    last_error: str | None


@dataclass(frozen=True)
class OutboxStatus:
    undispatched: int
    oldest_age_seconds: float | None


@dataclass(frozen=True)
class PeriodicRun:
    name: str
    started_at: datetime | None
    finished_at: datetime | None
    age_seconds: float | None  # since the last finished run; None if it never finished
    duration_seconds: float | None
    stale: bool


@dataclass(frozen=True)
class JobStatus:
    queues: list[QueueStatus]
    workers: list[WorkerStatus]
    deliveries: DeliveryCounts
    outbox: OutboxStatus
    periodic: list[PeriodicRun] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (datetimes as ISO 8601 strings)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else round(max(0.0, (now - then).total_seconds()), 3)


# --- Redis: queues, workers, drain markers -------------------------------------------------


def worker_status(conn: Redis) -> list[WorkerStatus]:
    """Return the live workers (registered and heartbeating) with their queues."""
    workers = []
    for worker in Worker.all(connection=conn):
        job_id = worker.get_current_job_id()
        state = worker.get_state()
        workers.append(
            WorkerStatus(
                name=worker.name,
                queues=tuple(worker.queue_names()),
                state=str(getattr(state, "value", state)),
                current_job_id=str(job_id) if job_id else None,
            )
        )
    return sorted(workers, key=lambda w: w.name)


def oldest_job_age(queue: Queue, now: datetime) -> float | None:
    """Seconds since the job at the head of the queue was enqueued (None when empty)."""
    ids = queue.get_job_ids(0, 2)  # the head may name a job whose data has expired
    for job in Job.fetch_many(ids, connection=queue.connection):
        if job is not None and job.enqueued_at is not None:
            return _age(now, job.enqueued_at)
    return None


def queue_status(
    conn: Redis, now: datetime, workers: Sequence[WorkerStatus] | None = None
) -> list[QueueStatus]:
    """Return depth, head age, started/failed/scheduled counts and workers per queue."""
    workers = worker_status(conn) if workers is None else workers
    drains = draining_queues(conn)
    result = []
    for name in QUEUES:
        queue = get_queue(name, conn)
        result.append(
            QueueStatus(
                name=name,
                depth=queue.count,
                oldest_age_seconds=oldest_job_age(queue, now),
                started=queue.started_job_registry.count,
                failed=queue.failed_job_registry.get_job_count(cleanup=False),
                scheduled=queue.scheduled_job_registry.get_job_count(cleanup=False),
                workers=sum(1 for w in workers if name in w.queues),
                draining_since=drains.get(name),
            )
        )
    return result


def mark_draining(conn: Redis, queue: str, now: datetime) -> datetime:
    """Record that `queue` is being drained; return since when (kept if already set)."""
    get_queue(queue, conn)  # validates the name
    conn.set(DRAIN_KEY.format(queue=queue), now.isoformat(), nx=True)
    return draining_queues(conn)[queue]


def clear_draining(conn: Redis, queue: str) -> bool:
    """Remove the drain marker of `queue`; return whether there was one."""
    get_queue(queue, conn)
    return bool(conn.delete(DRAIN_KEY.format(queue=queue)))


def draining_queues(conn: Redis) -> dict[str, datetime]:
    """Return the queues marked as draining and since when."""
    keys = [DRAIN_KEY.format(queue=q) for q in QUEUES]
    result = {}
    values = cast(list[bytes | None], conn.mget(keys))
    for name, raw in zip(QUEUES, values, strict=True):
        if raw:
            text = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                result[name] = datetime.fromisoformat(text)
            except ValueError:  # written by hand: still draining, time unknown
                result[name] = datetime.fromtimestamp(0, UTC)
    return result


def restart_command(queues: Iterable[str]) -> str:
    """The exact command that starts a worker on `queues` (kept in priority order)."""
    wanted = set(queues)
    ordered = [q for q in ("sla", "notify", "scan", "default") if q in wanted]
    return f"{WORKER_COMMAND} -q {','.join(ordered)}"


def requeue_failed(conn: Redis, queues: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Requeue every job in the failed registries; return {queue: (requeued, expired)}.

    A registry entry whose job data has already expired cannot run again: it is removed
    and counted as expired.
    """
    result = {}
    for name in queues:
        registry = get_queue(name, conn).failed_job_registry
        requeued = expired = 0
        for job_id in registry.get_job_ids(cleanup=False):
            try:
                registry.requeue(job_id)
                requeued += 1
            except NoSuchJobError:
                registry.remove(job_id)
                expired += 1
            except InvalidJobOperation:  # requeued meanwhile by someone else
                continue
        result[name] = (requeued, expired)
    return result


# --- database: deliveries, outbox, periodic runs -------------------------------------------


def _status(value: DeliveryStatus) -> BindParameter[str]:
    # Rendered into the SQL as a constant, so a partial index whose predicate names the
    # status stays usable even in a prepared statement's generic plan.
    return literal(value.value, String(), literal_execute=True)


def delivery_counts(session: Session, now: datetime) -> DeliveryCounts:
    """Count deliveries per unfinished status (cheap; `session` must be unscoped)."""
    due = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED)
    counts = {s.value: 0 for s in COUNTED_STATUSES}
    rows = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.status.in_([_status(s) for s in due]))
        .group_by(Delivery.status)
    )
    for status, count in rows:
        counts[status] = int(count)
    digest = select(func.count()).where(Delivery.status == _status(DeliveryStatus.DIGEST))
    counts[DeliveryStatus.DIGEST.value] = int(session.scalar(digest) or 0)
    counts[DeliveryStatus.DEAD.value] = _dead_count(session)
    oldest = session.scalar(
        select(func.min(Delivery.created_at)).where(
            Delivery.status == _status(DeliveryStatus.PENDING)
        )
    )
    return DeliveryCounts(counts=counts, oldest_pending_age_seconds=_age(now, oldest))


def dead_per_org_query() -> Select[Any]:
    """Count dead deliveries with one (org_id, status, updated_at) index probe per org.

    No partial index covers `dead`; the lateral join makes the per-org probe the plan, so
    this stays O(orgs + dead) instead of a scan over every delivery ever made.
    """
    per_org = (
        select(func.count().label("n"))
        .select_from(Delivery)
        .where(Delivery.org_id == Organization.id, Delivery.status == _status(DeliveryStatus.DEAD))
        .lateral("per_org")
    )
    return (
        select(func.coalesce(func.sum(per_org.c.n), 0))
        .select_from(Organization)
        .join(per_org, true())
    )


def _dead_count(session: Session) -> int:
    return int(session.scalar(dead_per_org_query()) or 0)


def dead_deliveries(session: Session, limit: int = 20) -> list[DeadDelivery]:
    """Return the most recently dead deliveries of all orgs, newest first (unscoped session).

    Each org contributes at most `limit` rows, read newest-first from its
    (org_id, status, updated_at) index, so this never scans delivered rows.
    """
    latest = (
        select(Delivery.id)
        .where(Delivery.org_id == Organization.id, Delivery.status == _status(DeliveryStatus.DEAD))
        .order_by(Delivery.updated_at.desc())
        .limit(limit)
        .lateral("latest")
    )
    ids = select(latest.c.id).select_from(Organization).join(latest, true())
    rows = session.execute(
        select(Delivery, OutboxEvent.kind, Organization.slug)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
        .join(Organization, Organization.id == Delivery.org_id)
        .where(Delivery.id.in_(ids))
        .order_by(Delivery.updated_at.desc(), Delivery.id.desc())
        .limit(limit)
    )
    return [
        DeadDelivery(
            id=d.id,
            org_slug=slug,
            kind=kind,
            channel=d.channel,
            target=d.target,
            attempts=d.attempts,
            updated_at=d.updated_at,
            last_error=d.last_error,
        )
        for d, kind, slug in rows
    ]


def outbox_status(session: Session, now: datetime) -> OutboxStatus:
    """Count undispatched outbox events and the age of the oldest (partial index)."""
    count, oldest = session.execute(
        select(func.count(), func.min(OutboxEvent.created_at)).where(
            OutboxEvent.dispatched_at.is_(None)
        )
    ).one()
    return OutboxStatus(undispatched=int(count or 0), oldest_age_seconds=_age(now, oldest))


def periodic_runs(session: Session, now: datetime) -> list[PeriodicRun]:
    """Return the last run of each periodic job (sweep, relay, digests), stale or not."""
    rows = {
        r.name: r
        for r in session.scalars(select(JobRun).where(JobRun.name.in_(PERIODIC_INTERVALS)))
    }
    result = []
    for name in PERIODIC_INTERVALS:
        run = rows.get(name)
        finished = run.finished_at if run else None
        age = _age(now, finished)
        duration = run.duration_ms / 1000 if run and run.duration_ms is not None else None
        result.append(
            PeriodicRun(
                name=name,
                started_at=run.started_at if run else None,
                finished_at=finished,
                age_seconds=age,
                duration_seconds=duration,
                stale=age is None or age > STALE_AFTER[name],
            )
        )
    return result


def snapshot(session: Session, conn: Redis, now: datetime) -> JobStatus:
    """Read everything `flask jobs status` shows (`session` must be unscoped)."""
    workers = worker_status(conn)
    return JobStatus(
        queues=queue_status(conn, now, workers),
        workers=workers,
        deliveries=delivery_counts(session, now),
        outbox=outbox_status(session, now),
        periodic=periodic_runs(session, now),
    )
