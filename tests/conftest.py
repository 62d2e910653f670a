"""Shared fixtures: a real PostgreSQL database and Redis, the app, clients and builders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.config import Config
from flask import Flask
from sqlalchemy import text
from sqlalchemy.orm import Session

from helpdesk import create_app, embedded
from helpdesk.config import Settings
from helpdesk.db import Base
from tests import conftest_services as services
from tests.browser import Browser
from tests.factories import PASSWORD, make_member, make_org

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def run_migrations(url: str, revision: str = "head", down: bool = False) -> None:
    config = Config("alembic.ini")
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    if down:
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_servers() -> Iterator[None]:
    """Stop any embedded PostgreSQL/Redis the session started (no-op with real servers)."""
    yield
    embedded.stop_all()


@pytest.fixture(scope="session")
def database_url() -> str:
    url = services.test_database_url()
    services.recreate_database(url)
    run_migrations(url)
    return url


@pytest.fixture(scope="session")
def redis_url() -> str:
    return services.test_redis_url()


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        env="test",
        secret_key=TEST_SECRET,
        database_url=database_url,
        redis_url=redis_url,
        login_limit_ip="1000 per minute",
        login_limit_account="1000 per minute",
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["helpdesk.engine"].dispose()


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts with empty tables and an empty Redis test database."""
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with app.extensions["helpdesk.engine"].begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    app.extensions["helpdesk.redis"].flushdb()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """A database session for arranging and checking data (outside any request)."""
    s = app.extensions["helpdesk.sessionmaker"]()
    yield s
    s.close()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def browser(app: Flask) -> Browser:
    return Browser(app.test_client())


@pytest.fixture
def world(session: Session):
    """Two orgs, each with an admin, an agent and a requester (shared test password)."""
    from helpdesk.models import Role

    data = {}
    for slug in ("alpha", "beta"):
        org = make_org(session, slug)
        data[slug] = {
            "org": org,
            "admin": make_member(session, org, Role.ADMIN, f"admin@{slug}.test"),
            "agent": make_member(session, org, Role.AGENT, f"agent@{slug}.test"),
            "requester": make_member(session, org, Role.REQUESTER, f"requester@{slug}.test"),
        }
    return data


@pytest.fixture
def password() -> str:
    return PASSWORD
