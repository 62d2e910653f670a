"""Enqueue background jobs by dotted name; ids only, org id first.

`helpdesk` never imports `jobs`: it names the job function ("jobs.notify.dispatch") and
RQ imports it in the worker. Work that must follow a commit (dispatching an outbox event)
is queued with `after_commit`: it is enqueued only once the transaction is durable, and
if Redis is down at that moment nothing is lost — the periodic relay finds the row.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from sqlalchemy import event
from sqlalchemy.orm import Session

from helpdesk.requestid import current_request_id
from helpdesk.tenancy import TenantSession

QUEUES = ("default", "notify", "scan", "sla")
PENDING_KEY = "helpdesk.after_commit_jobs"
log = logging.getLogger(__name__)


Arg = int | Callable[[], int]  # an id, or a callable read after commit (a new row's id)


@dataclass(frozen=True)
class JobCall:
    name: str
    args: tuple[Arg, ...]
    queue: str

    def resolved(self) -> tuple[int, ...]:
        return tuple(a() if callable(a) else a for a in self.args)


def redis_connection() -> Redis:
    """Return the app's Redis client (jobs and requests alike run inside an app context)."""
    conn: Redis = current_app.extensions["helpdesk.redis"]
    return conn


def get_queue(name: str, connection: Redis | None = None) -> Queue:
    """Return one of the four queues."""
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}; use one of {', '.join(QUEUES)}")
    return Queue(name, connection=connection or redis_connection())


def correlation_id() -> str | None:
    """The request id that caused the current work: from the request, else the job meta."""
    rid = current_request_id()
    if rid:
        return rid
    job = get_current_job()
    if job is not None:
        value = job.meta.get("request_id")
        return str(value) if value else None
    return None


def enqueue(
    name: str, *args: int, queue: str = "default", at: datetime | None = None, **opts: Any
) -> str:
    """Put a job on a queue now (or at `at`); return its id. Raises RedisError if down."""
    if not name.startswith("jobs."):
        raise ValueError("job names are dotted paths under jobs.")
    q = get_queue(queue)
    meta = {"request_id": correlation_id()}
    if at is not None:
        job = q.enqueue_at(at, name, args=args, meta=meta, **opts)
    else:
        job = q.enqueue(name, args=args, meta=meta, **opts)
    return str(job.id)


def after_commit(session: Session, name: str, *args: Arg, queue: str = "default") -> None:
    """Enqueue a job once this session's transaction commits (dropped on rollback).

    An argument may be a callable returning the id, for rows that get their id only when
    the commit flushes them (`lambda: event.id`).
    """
    session.info.setdefault(PENDING_KEY, []).append(JobCall(name, args, queue))


def _enqueue_pending(session: Session) -> None:
    calls: list[JobCall] = session.info.pop(PENDING_KEY, [])
    if not calls or not has_app_context():
        return
    by_queue: defaultdict[str, list[JobCall]] = defaultdict(list)
    for call in calls:
        by_queue[call.queue].append(call)
    meta = {"request_id": correlation_id()}
    for name, batch in by_queue.items():
        queue = get_queue(name)
        try:  # one round trip per queue, however many jobs (a sweep may announce 1,000)
            with queue.connection.pipeline() as pipe:
                queue.enqueue_many(
                    [Queue.prepare_data(c.name, args=c.resolved(), meta=meta) for c in batch],
                    pipeline=pipe,
                )
                pipe.execute()
        except RedisError as exc:  # the relay re-dispatches what is left behind
            log.warning("enqueue_failed job=%s queue=%s jobs=%d error=%s", batch[0].name, name,
                        len(batch), type(exc).__name__)  # fmt: skip


def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def install() -> None:
    """Hook after-commit enqueueing into every helpdesk session (idempotent)."""
    if not event.contains(TenantSession, "after_commit", _enqueue_pending):
        event.listen(TenantSession, "after_commit", _enqueue_pending)
        event.listen(TenantSession, "after_soft_rollback", _drop_pending_on_rollback)


def _drop_pending_on_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        _drop_pending(session)
