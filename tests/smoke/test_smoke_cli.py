"""`flask --app wsgi smoke`: passes against a healthy live server, fails — saying what to
look at — against a stopped one, a bad URL, a failing /readyz or an unreachable database."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.db import make_engine
from helpdesk.smoke import check_database, check_endpoint, run_checks
from tests.factories import make_ticket

ROOT = Path(__file__).resolve().parents[2]
FLASK = str(Path(sys.executable).with_name("flask"))


def smoke(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the real command in a subprocess with the test database and Redis."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(ROOT)),
        "FLASK_SKIP_DOTENV": "1",
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url,
        "SECRET_KEY": settings.secret_key,
        **env,
    }
    return subprocess.run(  # noqa: S603 - our own command
        [FLASK, "--app", "wsgi", "smoke", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def stopped_url() -> str:
    """The address of a server that has just stopped (nothing listens there now)."""
    server = make_server("127.0.0.1", 0, lambda env, start: [])
    url = f"http://127.0.0.1:{server.server_port}"
    server.server_close()
    return url


@pytest.fixture
def redis_down_url(settings: Settings) -> Iterator[str]:
    """A live server whose Redis is unreachable: /healthz 200, /readyz 503."""
    app = create_app(dataclasses.replace(settings, redis_url="redis://127.0.0.1:1/0"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)
    app.extensions["helpdesk.engine"].dispose()


# --- the real command ----------------------------------------------------------------


def test_smoke_passes_against_a_healthy_server(
    settings: Settings, live_url: str, session: Session, world
) -> None:
    for slug in ("alpha", "beta"):
        make_ticket(session, world[slug]["org"], world[slug]["agent"])
    done = smoke(settings, BASE_URL=live_url)  # the BASE_URL setting is the default
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ok    database: 2 ticket(s) in 2 org(s)"
    assert lines[1] == f"ok    GET /healthz: 200 from {live_url}/healthz"
    assert lines[2] == f"ok    GET /readyz: 200 from {live_url}/readyz"
    assert lines[-1] == "smoke ok: all 3 checks passed"


def test_smoke_fails_against_a_stopped_server_and_says_where_to_look(
    settings: Settings, stopped_url: str
) -> None:
    done = smoke(settings, "--base-url", stopped_url, "--timeout", "2")
    assert done.returncode == 1
    assert done.stdout.startswith("ok    database: 0 ticket(s) in 0 org(s)\n")
    assert f"FAIL  GET /healthz: no answer from {stopped_url}/healthz" in done.stdout
    assert "is the web process running" in done.stdout
    assert done.stdout.splitlines()[-1] == (
        "smoke FAILED: 2 of 3 checks (GET /healthz, GET /readyz)"
    )


def test_smoke_refuses_a_bad_url(settings: Settings) -> None:
    done = smoke(settings, "--base-url", "ftp://example.test")
    assert done.returncode == 1
    assert "FAIL  GET /healthz: the base URL must start with http:// or https://" in done.stdout
    assert "pass --base-url http(s)://host[:port]" in done.stdout


def test_smoke_fails_when_production_secrets_are_not_set(settings: Settings) -> None:
    done = smoke(settings, HELPDESK_ENV="production", SECRET_KEY="")
    assert done.returncode == 1
    assert "SECRET_KEY must be set to a random value in production" in done.stderr
    assert "smoke ok" not in done.stdout


# --- each check ----------------------------------------------------------------------


def test_a_failing_readyz_names_the_failing_checks(redis_down_url: str) -> None:
    healthz = check_endpoint(redis_down_url, "/healthz")
    readyz = check_endpoint(redis_down_url, "/readyz")
    assert healthz.ok
    assert not readyz.ok
    assert readyz.detail.startswith(f"503 from {redis_down_url}/readyz; failing: redis (")
    assert "Observability and health checks" in readyz.hint
    assert "FAIL  GET /readyz: 503" in readyz.line()


def test_an_answer_that_is_not_health_json_is_reported(live_url: str) -> None:
    check = check_endpoint(live_url, "/no-such-page")
    assert not check.ok
    not_json = "the answer is not the app's health JSON"
    assert check.detail == f"404 from {live_url}/no-such-page; {not_json}"


def test_an_unreachable_database_fails_with_a_hint(
    settings: Settings, database_url: str, live_url: str
) -> None:
    engine = make_engine(database_url.rsplit("/", 1)[0] + "/helpdesk_no_such_database")
    try:
        checks = run_checks(engine, live_url, timeout=2)
    finally:
        engine.dispose()
    database = checks[0]
    assert (database.name, database.ok) == ("database", False)
    assert "helpdesk_no_such_database" in database.detail
    assert "check DATABASE_URL" in database.hint
    assert [c.ok for c in checks[1:]] == [True, True]


def test_the_database_check_counts_across_orgs_with_no_tenant_set(
    app, session: Session, world
) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    check = check_database(app.extensions["helpdesk.engine"])
    assert (check.ok, check.detail) == (True, "1 ticket(s) in 2 org(s)")
