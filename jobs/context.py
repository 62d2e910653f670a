"""What every job needs: a session in its org's tenant scope, and the request id it carries.

The worker builds the app once and keeps its app context pushed (see jobs/worker.py), so
jobs reach the engine and Redis through `current_app` like requests do.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from rq import get_current_job
from sqlalchemy.orm import Session

from helpdesk.db import session_scope
from helpdesk.tenancy import tenant_scope, unscoped


@contextmanager
def org_session(org_id: int) -> Iterator[Session]:
    """Open a session scoped to one org (the tenant gate applies as in a request)."""
    factory = current_app.extensions["helpdesk.sessionmaker"]
    with session_scope(factory) as session, tenant_scope(session, org_id):
        yield session


@contextmanager
def system_session() -> Iterator[Session]:
    """Open an unscoped session for deliberate cross-org work (sweep and relay loops)."""
    factory = current_app.extensions["helpdesk.sessionmaker"]
    with session_scope(factory) as session, unscoped(session):
        yield session


def job_request_id() -> str | None:
    """Return the request id carried in the current job's meta, if any."""
    job = get_current_job()
    if job is None:
        return None
    value = job.meta.get("request_id")
    return str(value) if value else None


class RequestIdFilter(logging.Filter):
    """Add `request_id` (from the running job) to every log record in the worker."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = job_request_id() or "-"
        return True
