"""`flask --app wsgi jobs …`: look at and steer the job runner (status, requeue, drain).

Draining is honest about what it can do: RQ workers take the queues they were started
with, so `jobs drain` marks the queue (status and /metrics show it), prints the exact
command to restart each worker without that queue and, with `--wait`, waits until no live
worker listens on it and none of its jobs is running. Jobs enqueued meanwhile stay in the
queue until a worker takes it again. See docs/runbook.md, "Background jobs".
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime

import click
from flask.cli import AppGroup
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.models import EventKind, WebhookEndpoint
from helpdesk.services import deliveries, job_status
from helpdesk.services.tasks import QUEUES, get_queue, redis_connection
from jobs.context import system_session

QUEUE_CHOICE = click.Choice(QUEUES)


@click.group("jobs", cls=AppGroup)
def jobs_group() -> None:
    """Inspect and steer background jobs."""


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _row(cells: tuple[object, ...]) -> str:
    name, *numbers = cells
    widths = (6, 9, 8, 7, 10, 8)
    return f"{name!s:<8}" + "".join(
        f" {cell!s:>{w}}" for cell, w in zip(numbers, widths, strict=True)
    )


@jobs_group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document")
def status(as_json: bool) -> None:
    """Show queues, workers, deliveries, outbox and the last periodic runs."""
    try:
        with system_session() as session:
            snap = job_status.snapshot(session, redis_connection(), _now())
    except RedisError as exc:
        raise click.ClickException(
            f"Redis is unreachable ({type(exc).__name__}): check REDIS_URL and the Redis server"
        ) from exc
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"the database is unreachable ({type(exc).__name__}): check DATABASE_URL"
        ) from exc
    if as_json:
        click.echo(json.dumps(snap.to_dict(), indent=2, sort_keys=True))
        return
    _print_status(snap)


def _print_status(snap: job_status.JobStatus) -> None:
    columns = ("queue", "depth", "oldest", "started", "failed", "scheduled", "workers")
    click.echo(_row(columns))
    for q in snap.queues:
        age = _seconds(q.oldest_age_seconds)
        line = _row((q.name, q.depth, age, q.started, q.failed, q.scheduled, q.workers))
        if q.draining_since:
            line += f"  DRAINING since {q.draining_since.isoformat(timespec='seconds')}"
        click.echo(line)
    click.echo(f"workers alive: {len(snap.workers)}")
    for w in snap.workers:
        job = f" job {w.current_job_id}" if w.current_job_id else ""
        click.echo(f"  {w.name} {w.state} queues={','.join(w.queues)}{job}")
    d = snap.deliveries
    counts = ", ".join(f"{name} {n}" for name, n in d.counts.items())
    click.echo(f"deliveries: {counts}; oldest pending {_seconds(d.oldest_pending_age_seconds)}")
    outbox, oldest = snap.outbox, _seconds(snap.outbox.oldest_age_seconds)
    click.echo(f"outbox undispatched: {outbox.undispatched}; oldest {oldest}")
    for run in snap.periodic:
        if run.finished_at is None:
            click.echo(f"{run.name}: never finished")
            continue
        stale = "  STALE" if run.stale else ""
        took = _seconds(run.duration_seconds)
        click.echo(f"{run.name}: finished {_seconds(run.age_seconds)} ago, took {took}{stale}")


@jobs_group.command("requeue-failed")
@click.option("--queue", type=QUEUE_CHOICE, help="Only this queue (default: all)")
def requeue_failed(queue: str | None) -> None:
    """Put every job of RQ's failed registry back on its queue."""
    names: Sequence[str] = [queue] if queue else QUEUES
    result = job_status.requeue_failed(redis_connection(), names)
    total = sum(requeued for requeued, _expired in result.values())
    for name, (requeued, expired) in result.items():
        note = f" ({expired} expired job(s) removed: their data was gone)" if expired else ""
        click.echo(f"{name}: requeued {requeued}{note}")
    click.echo(f"requeued {total} failed job(s)")


@jobs_group.command("dead")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True)
def dead(limit: int) -> None:
    """List the most recent dead deliveries (all orgs) with their last error."""
    with system_session() as session:
        rows = job_status.dead_deliveries(session, limit)
    if not rows:
        click.echo("no dead deliveries")
        return
    for row in rows:
        when = row.updated_at.isoformat(timespec="seconds")
        click.echo(
            f"#{row.id} org={row.org_slug} event={row.kind} {row.target} "
            f"attempts={row.attempts} dead since {when}: {row.last_error or '(no error recorded)'}"
        )
    click.echo(
        "fix the cause, then: flask --app wsgi jobs retry-dead [--event KIND] [--endpoint ID]"
    )


@jobs_group.command("retry-dead")
@click.option(
    "--event", "kind", type=click.Choice([k.value for k in EventKind]), help="Only this event"
)
@click.option("--endpoint", "endpoint_id", type=int, help="Only this webhook endpoint id")
def retry_dead(kind: str | None, endpoint_id: int | None) -> None:
    """Move dead deliveries (all orgs) back to pending and queue each for delivery."""
    with system_session() as session:
        if endpoint_id is not None and session.get(WebhookEndpoint, endpoint_id) is None:
            raise click.ClickException(
                f"no webhook endpoint with id {endpoint_id} (ids are on the org's webhook page)"
            )
        count = deliveries.retry_dead(session, kind=kind, endpoint_id=endpoint_id, now=_now())
    click.echo(f"{count} dead delivery(ies) set back to pending")
    if not count:
        return
    try:
        redis_connection().ping()
    except RedisError:
        click.echo(
            "Redis is unreachable, so they could not be queued now: the relay queues them "
            "within seconds of Redis (and the cron) coming back."
        )
        return
    click.echo(f"queued for delivery on notify ({deliveries.DELIVER_JOB})")


@jobs_group.command("drain")
@click.option("--queue", required=True, type=QUEUE_CHOICE, help="The queue to take out")
@click.option(
    "--wait",
    type=click.IntRange(min=0),
    default=None,
    help="Wait up to this many seconds until no worker listens on it and nothing runs",
)
def drain(queue: str, wait: int | None) -> None:
    """Mark a queue as draining and print how to restart the workers without it."""
    conn = redis_connection()
    since = job_status.mark_draining(conn, queue, _now())
    stamp = since.isoformat(timespec="seconds")
    click.echo(f"{queue} is marked as draining since {stamp} (jobs status and /metrics show it).")
    click.echo(
        f"Workers are not told: a worker keeps taking {queue} jobs until it is restarted "
        f"without {queue}. New {queue} jobs keep arriving and wait in the queue."
    )
    _print_restarts(conn, queue)
    if wait is None:
        return
    deadline = time.monotonic() + wait
    while True:
        listening, running, depth = _drain_state(conn, queue)
        if not listening and not running:
            click.echo(
                f"{queue} is drained: no live worker listens on it and none of its jobs is "
                f"running; {depth} job(s) wait in it until you undrain."
            )
            return
        if time.monotonic() >= deadline:
            names = ", ".join(w.name for w in listening) or "none"
            raise click.ClickException(
                f"{queue} is not drained after {wait} s: {len(listening)} worker(s) still "
                f"listen on it ({names}), {running} job(s) running, {depth} waiting. "
                "Restart those workers with the commands above, then wait again."
            )
        time.sleep(1)


def _listening(conn: Redis, queue: str) -> list[job_status.WorkerStatus]:
    return [w for w in job_status.worker_status(conn) if queue in w.queues]


def _drain_state(conn: Redis, queue: str) -> tuple[list[job_status.WorkerStatus], int, int]:
    q = get_queue(queue, conn)
    return _listening(conn, queue), q.started_job_registry.count, q.count


def _print_restarts(conn: Redis, queue: str) -> None:
    listening = _listening(conn, queue)
    if not listening:
        click.echo(f"No live worker listens on {queue}.")
        return
    click.echo(
        f"Live workers listening on {queue}: {len(listening)}. Stop each with SIGTERM "
        "(warm shutdown: its current job finishes), then start instead:"
    )
    for worker in listening:
        rest = [q for q in worker.queues if q != queue]
        command = (
            job_status.restart_command(rest) if rest else "(nothing: it served only this queue)"
        )
        click.echo(f"  {worker.name} (queues {','.join(worker.queues)}): {command}")


@jobs_group.command("undrain")
@click.option("--queue", required=True, type=QUEUE_CHOICE, help="The queue to put back")
def undrain(queue: str) -> None:
    """Clear a queue's draining mark and print how to start workers on it again."""
    conn = redis_connection()
    was = job_status.clear_draining(conn, queue)
    click.echo(f"{queue} is {'no longer' if was else 'not'} marked as draining.")
    listening = _listening(conn, queue)
    depth = get_queue(queue, conn).count
    if listening:
        click.echo(f"{len(listening)} live worker(s) listen on {queue}; {depth} job(s) waiting.")
    else:
        click.echo(
            f"No live worker listens on {queue} yet ({depth} job(s) waiting). Start one: "
            f"{job_status.restart_command(QUEUES)} (or add {queue} to a worker's -q)."
        )
