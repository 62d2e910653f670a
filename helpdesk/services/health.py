"""Liveness and readiness checks (no secrets or hostnames in their output)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

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


def readiness(engine: Engine, redis: Redis) -> dict[str, dict[str, Any]]:
    """Run every readiness check; each reports ok plus a short detail."""
    db_ok, db_detail = check_database(engine)
    return {
        "database": {"ok": db_ok, "detail": db_detail},
        "migrations": check_migrations(engine),
        "redis": check_redis(redis),
    }
