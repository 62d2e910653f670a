"""The target database of a load: the safety check, the schema reset, indexes after the load.

Why each step:

* Safety: the generator replaces everything in the target database. It only does so when
  the database is empty, or when a previous run marked it as benchmark data (a JSON
  `COMMENT ON DATABASE`, written before the first row is copied, so an interrupted load is
  still recognised). Anything else needs `--force`.
* Reset: every table in the `public` schema is dropped and the app's own Alembic
  migrations build the schema again, so the data always matches the code's head.
* Indexes: building an index once over loaded rows is much faster than maintaining it row
  by row during COPY (and a GIN index over search vectors most of all). Every secondary
  index of the big tables is dropped before the load and re-created afterwards from its
  own definition (`pg_get_indexdef`), two at a time, so the schema ends exactly as the
  migrations made it; the tests compare the catalog before and after. One kind stays in
  place during the load: a partial index whose predicate holds an IN list
  (`status IN ('new', …)`). PostgreSQL prints it as `= ANY ((ARRAY[…])::text[])`, and that
  text parses back into a different expression, so the rebuilt index would not be the
  migrated one. Such indexes cover the open tickets only, a small share of the rows.
* Foreign keys stay declared; COPY runs with `session_replication_role = replica`, which
  skips their triggers (the generator writes consistent ids; the tests check them).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql

from helpdesk import embedded

ROOT = Path(__file__).resolve().parent.parent
MARKER_KEY = "helpdesk-bench"
BIG_TABLES = ("tickets", "comments", "ticket_events", "sla_events", "sla_pauses")
INDEX_MEMORY = "512MB"  # maintenance_work_mem of each index build


class Refused(SystemExit):
    """The target database is not one the generator may overwrite."""


@dataclass(frozen=True)
class IndexDef:
    """A secondary index to re-create, and the unique constraint it backs (if any)."""

    table: str
    name: str
    create: str
    constraint: bool


def connect(url: str, **kw: Any) -> psycopg.Connection:
    return psycopg.connect(embedded.libpq_url(url), **kw)


def marker(conn: psycopg.Connection) -> dict[str, Any] | None:
    """The bench marker on the current database, or None."""
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database"
        " WHERE datname = current_database()"
    ).fetchone()
    try:
        data = json.loads(row[0]) if row and row[0] else None
    except ValueError:
        return None
    return data if isinstance(data, dict) and MARKER_KEY in data else None


def set_marker(conn: psycopg.Connection, **info: Any) -> None:
    """Mark the database as benchmark data (state: loading / complete, and the options)."""
    name = conn.execute("SELECT current_database()").fetchone()
    assert name is not None
    text = json.dumps({MARKER_KEY: True, **info}, sort_keys=True)
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name[0]), sql.Literal(text))
    )


def check_target(url: str, force: bool) -> dict[str, Any] | None:
    """Create the database if missing; refuse one holding data not generated here."""
    embedded.create_database(url)
    with connect(url, autocommit=True) as conn:
        found = marker(conn)
        if found is not None or force:
            return found
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
        ]
        busy = [
            t
            for t in tables
            if conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {})").format(sql.SQL(t))).fetchone()
            == (True,)
        ]
    if busy:
        name = embedded.database_name(url)
        raise Refused(
            f"refusing: database {name!r} holds data that bench.generate did not write"
            f" (rows in {', '.join(sorted(busy)[:5])}{', …' if len(busy) > 5 else ''})."
            " Point --database-url / DATABASE_URL at an empty or benchmark database, or pass"
            " --force to drop every table in it."
        )
    return None


def reset(url: str) -> None:
    """Drop every table in the public schema, then migrate to the code's head."""
    with connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public'"
            )
        ]
        if tables:
            conn.execute(f"DROP TABLE {', '.join(tables)} CASCADE")
    migrate(url)


def migrate(url: str) -> None:
    """Bring the database to the code's migration head (the app's Alembic migrations)."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def secondary_indexes(conn: psycopg.Connection, tables: tuple[str, ...]) -> list[IndexDef]:
    """Every index of these tables except primary keys and those a foreign key relies on."""
    rows = conn.execute(
        "SELECT c.relname, i.relname, pg_get_indexdef(i.oid), con.oid IS NOT NULL"
        " FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
        " JOIN pg_class c ON c.oid = x.indrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
        " LEFT JOIN pg_constraint con ON con.conindid = i.oid AND con.contype = 'u'"
        " WHERE c.relname = ANY(%s) AND NOT x.indisprimary"
        " AND NOT EXISTS (SELECT FROM pg_constraint f WHERE f.contype = 'f'"
        "                 AND f.conindid = i.oid)"
        " ORDER BY pg_relation_size(c.oid) DESC, c.relname, i.relname",
        (list(tables),),
    )
    return [
        IndexDef(t, name, create, bool(unique))
        for t, name, create, unique in rows
        if not _predicate_changes_when_reparsed(create)
    ]


def _predicate_changes_when_reparsed(create: str) -> bool:
    """A partial index over an IN list: its printed definition is not what made it."""
    _, where, predicate = create.partition(" WHERE ")
    return bool(where) and " = ANY (" in predicate


def drop_indexes(conn: psycopg.Connection, indexes: list[IndexDef]) -> None:
    for index in indexes:
        if index.constraint:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(
                    sql.Identifier(index.table), sql.Identifier(index.name)
                )
            )
        else:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index.name)))


def _build(url: str, index: IndexDef) -> tuple[str, float]:
    started = time.perf_counter()
    with connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(INDEX_MEMORY)))
        conn.execute("SET max_parallel_maintenance_workers = 0")  # two builds use both cores
        conn.execute(index.create)
    return index.name, time.perf_counter() - started


def build_indexes(url: str, indexes: list[IndexDef], jobs: int) -> dict[str, float]:
    """Re-create the dropped indexes, `jobs` at a time; re-attach unique constraints."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        timings = dict(pool.map(lambda ix: _build(url, ix), indexes))
    with connect(url, autocommit=True) as conn:
        for index in indexes:
            if index.constraint:
                conn.execute(
                    sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE USING INDEX {}").format(
                        sql.Identifier(index.table),
                        sql.Identifier(index.name),
                        sql.Identifier(index.name),
                    )
                )
    return {k: round(v, 1) for k, v in timings.items()}


def vacuum(url: str, tables: list[str], jobs: int) -> None:
    """VACUUM ANALYZE: hint bits and the visibility map set, as on a settled database."""

    def one(table: str) -> None:
        with connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("SET maintenance_work_mem = {}").format(sql.Literal(INDEX_MEMORY)))
            conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(one, tables))


def schema_snapshot(conn: psycopg.Connection) -> dict[str, list[str]]:
    """Index and constraint definitions of the public schema (to compare before/after)."""
    indexes = [
        r[0]
        for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname"
        )
    ]
    constraints = [
        f"{r[0]} {r[1]} {r[2]}"
        for r in conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"
        )
    ]
    return {"indexes": indexes, "constraints": constraints}
