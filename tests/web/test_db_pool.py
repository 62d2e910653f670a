"""The connection pool hands out no connection the server has ended (no ping per request)."""

from __future__ import annotations

import time

import psycopg
from flask import Flask
from sqlalchemy import text

from tests.browser import as_user


def _backend_pid(app: Flask) -> int:
    with app.extensions["helpdesk.engine"].connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _end_connections(app: Flask, pid: int | None = None) -> int:
    """End one backend (or every other one of the test database) from outside the pool."""
    url = app.extensions["helpdesk.engine"].url.set(drivername="postgresql")
    dsn = url.render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND (%(pid)s::int IS NULL OR pid = %(pid)s)",
            {"pid": pid},
        ).fetchone()
    time.sleep(0.2)  # the server's goodbye reaches the pooled connections' sockets
    return int(ended[0]) if ended else 0


def test_a_connection_the_server_ended_is_replaced_at_checkout(app: Flask):
    pool = app.extensions["helpdesk.engine"].pool
    ended = _backend_pid(app)

    assert _end_connections(app, ended) == 1

    # Every idle connection comes round (the pool hands them out in turn): none is the
    # ended one, and checking them out raises nothing.
    seen = {_backend_pid(app) for _ in range(pool.checkedin() + 1)}
    assert ended not in seen


def test_pages_keep_working_after_the_database_ends_every_connection(
    app: Flask, world, password: str
):
    browser = as_user(app, "agent@alpha.test", password)
    assert browser.get("/o/alpha/tickets").status_code == 200

    assert _end_connections(app) >= 1  # a database restart looks the same to the pool

    assert browser.get("/o/alpha/tickets").status_code == 200
    assert browser.get("/o/alpha/tickets", headers={"HX-Request": "true"}).status_code == 200
