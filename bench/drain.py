"""Waiting for the stack's background work, so that it is not timed with an endpoint.

A reply queues its emails; the cron's first sweep fires every threshold that came due
while no stack was up. The job worker does that work on the same two cores as gunicorn
and PostgreSQL, so `bench.run` waits for it before it times anything (bench/README.md,
step 5).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import redis
from rq import Queue

from bench import schema
from bench.load import stderr_log
from helpdesk.services.tasks import QUEUES


def pending(conn: Any) -> int:
    """Outbox events not yet dispatched plus deliveries not yet done."""
    row = conn.execute(
        "SELECT (SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending'))"
        " + (SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL)"
    ).fetchone()
    return int(row[0]) if row else 0


def _queued(queues: list[Queue]) -> int:
    """Jobs waiting in these RQ queues."""
    return sum(queue.count for queue in queues)


def wait_drained(url: str, redis_url: str | None = None, limit_s: float = 300) -> float:
    """Wait until no outbox event or delivery is pending and, given `redis_url`, no job is
    queued (at most `limit_s`); seconds waited.

    The rows can be done while the queues still hold jobs for them: when the worker falls
    behind, the relay dispatches and re-queues what it finds overdue, and the jobs queued
    earlier for the same rows still run (and find nothing to do).
    """
    started = time.monotonic()
    queues = []
    if redis_url is not None:
        client = redis.Redis.from_url(redis_url)
        queues = [Queue(name, connection=client) for name in QUEUES]
    with schema.connect(url, autocommit=True) as conn:
        while (pending(conn) or _queued(queues)) and time.monotonic() - started < limit_s:
            time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def settle(url: str, limit_s: float = 300) -> dict[str, Any]:
    """Let the work the start caused finish before measuring anything.

    The cron's first SLA sweep fires every threshold that came due since the data was last
    served (the data's clock ran on while no stack was up), and the worker then mails the
    alerts: minutes of background CPU that would land on whichever endpoints are measured
    first. Wait for a sweep that started after the stack did, then for the outbox and the
    deliveries to drain (at most `limit_s`).
    """
    started = time.monotonic()
    with schema.connect(url, autocommit=True) as conn:
        since = conn.execute("SELECT now()").fetchone()
        while time.monotonic() - started < limit_s:
            swept = conn.execute(
                "SELECT 1 FROM job_runs WHERE name = 'sla.sweep' AND started_at >= %s",
                (since[0] if since else datetime.now(UTC),),
            ).fetchone()
            if swept and not pending(conn):
                break
            time.sleep(1)
        fired = conn.execute(
            "SELECT count(*) FROM outbox_events WHERE created_at >= %s",
            (since[0] if since else datetime.now(UTC),),
        ).fetchone()
        left = pending(conn)
    seconds = round(time.monotonic() - started, 1)
    stderr_log(f"run: settled in {seconds} s ({fired[0] if fired else 0} events, {left} left)")
    return {"seconds": seconds, "events": fired[0] if fired else 0, "left": left}
