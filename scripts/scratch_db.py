"""Scratch databases for release checks and runbook drills, on the test PostgreSQL server.

Names derive from `TEST_DATABASE_URL`'s database so parallel runs on one server (each with
its own test database) never collide: `helpdesk_test` gives `helpdesk_drill_<role>`,
`helpdesk_test_ci2` gives `helpdesk_drill_ci2_<role>`, any other name
`helpdesk_drill_<name>_<role>`.
Without `TEST_DATABASE_URL` the embedded test server under instance/test-pg is used, as the
test suite does.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
from psycopg import sql

from helpdesk import embedded

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "helpdesk_drill"
MAX_NAME = 63  # PostgreSQL identifiers


def test_server_url() -> str:
    """TEST_DATABASE_URL, else the embedded test server's `helpdesk_test` database."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    return embedded.start_postgres(ROOT / "instance" / "test-pg", database="helpdesk_test")


def scratch_name(test_database: str, role: str) -> str:
    """The scratch database name for `role`, derived from the test database's name."""
    tail = test_database.removeprefix("helpdesk_test").strip("_")
    parts = [PREFIX, tail, role] if tail else [PREFIX, role]
    name = re.sub(r"[^a-z0-9_]", "_", "_".join(parts).lower())
    return name[:MAX_NAME]


def scratch_url(base_url: str, role: str) -> str:
    """`base_url` (SQLAlchemy form) pointing at the scratch database for `role`."""
    name = scratch_name(embedded.database_name(base_url), role)
    head, _, rest = base_url.partition("://")
    netloc, _, path_and_query = rest.partition("/")
    query = path_and_query.partition("?")[2]
    return f"{head}://{netloc}/{name}" + (f"?{query}" if query else "")


def drop(url: str) -> None:
    """Drop the database named in `url` (forcing other sessions off) if it exists."""
    name = embedded.database_name(url)
    if not name.startswith(PREFIX):
        raise ValueError(f"refusing to drop {name!r}: not a scratch database")
    with psycopg.connect(embedded.libpq_url(url, "postgres"), autocommit=True) as conn:
        ident = sql.Identifier(name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))


def recreate(url: str) -> None:
    """Drop and create the scratch database named in `url` (empty, no schema)."""
    drop(url)
    embedded.create_database(url)


# Helpers, not tests: keep pytest from collecting them if a test module imports them.
test_server_url.__test__ = False  # type: ignore[attr-defined]
