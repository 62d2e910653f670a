"""Inbound email jobs: process one received message, and re-queue messages left waiting.

`process(inbound_id)` is the one job that does not take an org id first: the org of an email
is what processing finds out (reply token, Message-ID, or the org's plus-address). It opens
a session with no tenant set; `services.inbound` does its cross-org lookups explicitly
unscoped and writes inside the org's tenant scope once the org is known.

`requeue_waiting` is for the periodic list (jobs/cron.py): an enqueue lost after the
request's commit (Redis down for a moment) leaves the row `received`; it is queued again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import session_scope, utcnow
from helpdesk.models import InboundMessage, InboundStatus
from helpdesk.services import inbound, tasks
from helpdesk.services.threading import MailIdentity

log = logging.getLogger(__name__)
WAITING_AFTER = timedelta(minutes=2)  # a message still `received` this long after arrival
REQUEUE_LIMIT = 500


@contextmanager
def _session() -> Iterator[Session]:
    factory = current_app.extensions["helpdesk.sessionmaker"]
    with session_scope(factory) as session:
        yield session


def process(inbound_id: int) -> str | None:
    """Turn one received email into a comment or ticket, or record why not (runs once)."""
    with _session() as session:
        return inbound.process(session, inbound_id, MailIdentity.from_config(current_app.config))


def requeue_waiting(now: datetime | None = None) -> int:
    """Queue again every message still waiting a while after it arrived; return how many."""
    cutoff = (now or utcnow()) - WAITING_AFTER
    with _session() as session:
        ids = list(
            session.scalars(
                select(InboundMessage.id)
                .where(
                    InboundMessage.status == InboundStatus.RECEIVED.value,
                    InboundMessage.received_at < cutoff,
                )
                .order_by(InboundMessage.id)
                .limit(REQUEUE_LIMIT)
            )
        )
    queued = 0
    for inbound_id in ids:
        try:
            tasks.enqueue(inbound.PROCESS_JOB, inbound_id, queue="default")
        except RedisError as exc:
            log.warning("inbound_requeue_failed error=%s", type(exc).__name__)
            break
        queued += 1
    return queued
