"""Liveness and readiness checks (no secrets or hostnames in their output).

The periodic jobs' freshness (`background`) is reported next to the readiness checks but
never fails them: readiness decides whether *this web process* gets traffic, and a dead
scheduler does not make it unable to serve. Failing every web instance because the SLA
sweep stalled would turn a background outage into a full one. A stale sweep is an alarm
instead (`helpdesk_sla_sweep_age_seconds`, docs/runbook.md "Background jobs").

Attachment storage *is* a readiness check (disk: the directory takes a new file; S3: the
endpoint answers and the buckets exist, created if missing). The app starts while S3 is down
so that this check, not a crash loop, is what reports it.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from flask import current_app, has_app_context
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from helpdesk import scanning
from helpdesk.services import job_status
from helpdesk.storage import Storage, StorageError, get_storage

MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


@cache
def migration_heads() -> tuple[str, ...]:
    """The revision ids the code expects (read once from migrations/)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))


def check_database(engine: Engine) -> tuple[bool, str]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError:
        return False, "unreachable"
    return True, "ok"


def check_migrations(engine: Engine) -> dict[str, Any]:
    expected = migration_heads()
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars()
            current = tuple(sorted(rows))
    except SQLAlchemyError:
        return {"ok": False, "detail": "cannot read alembic_version", "expected": expected}
    ok = current == expected
    detail = "at head" if ok else "database is not at the code's migration head"
    return {"ok": ok, "detail": detail, "current": current, "expected": expected}


def check_redis(client: Redis) -> dict[str, Any]:
    try:
        client.ping()
    except (RedisError, OSError):
        return {"ok": False, "detail": "unreachable"}
    return {"ok": True, "detail": "ok"}


def check_storage(storage: Storage) -> dict[str, Any]:
    """Report whether attachment storage takes writes now (the detail says what to fix)."""
    try:
        storage.check()
    except StorageError as exc:
        return {"ok": False, "detail": str(exc)}
    return {"ok": True, "detail": "ok"}


def readiness(
    engine: Engine, redis: Redis, storage: Storage | None = None
) -> dict[str, dict[str, Any]]:
    """Run every readiness check; each reports ok plus a short detail.

    Without `storage`, the current app's attachment storage is checked (when there is an app).
    """
    db_ok, db_detail = check_database(engine)
    checks = {
        "database": {"ok": db_ok, "detail": db_detail},
        "migrations": check_migrations(engine),
        "redis": check_redis(redis),
    }
    if storage is None and has_app_context():
        storage = get_storage(current_app)
    if storage is not None:
        checks["storage"] = check_storage(storage)
    clamd_url = str(current_app.config.get("CLAMD_URL") or "") if has_app_context() else ""
    if clamd_url:
        checks["clamd"] = check_clamd(clamd_url)
    return checks


def check_clamd(url: str) -> dict[str, Any]:
    """Report whether clamd answers PING (uploads stay unscanned — not downloadable — if not)."""
    if scanning.ping(url, timeout=2):
        return {"ok": True, "detail": "ok"}
    return {"ok": False, "detail": "clamd does not answer PING at CLAMD_URL"}


_BACKGROUND_NAMES = {
    job_status.SWEEP_JOB: "sla_sweep",
    job_status.RELAY_JOB: "relay",
    job_status.DIGEST_JOB: "digests",
}


def background(engine: Engine, now: datetime) -> dict[str, dict[str, Any]]:
    """Report when each periodic job last finished and whether that is stale."""
    try:
        with Session(engine) as session:
            runs = job_status.periodic_runs(session, now)
    except SQLAlchemyError:
        return {
            name: {"stale": None, "age_seconds": None, "detail": "cannot read job_runs"}
            for name in _BACKGROUND_NAMES.values()
        }
    return {_BACKGROUND_NAMES[run.name]: _freshness(run) for run in runs}


def _freshness(run: job_status.PeriodicRun) -> dict[str, Any]:
    interval = job_status.PERIODIC_INTERVALS[run.name]
    if run.age_seconds is None:
        detail = f"{run.name} has never finished: are a worker and `flask --app wsgi cron` running?"
    elif run.stale:
        detail = (
            f"{run.name} last finished {run.age_seconds:.0f} s ago (runs every {interval} s): "
            "check the cron process and the workers"
        )
    else:
        detail = f"{run.name} finished {run.age_seconds:.0f} s ago"
    return {
        "stale": run.stale,
        "age_seconds": run.age_seconds,
        "last_finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "detail": detail,
    }
