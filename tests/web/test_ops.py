"""/healthz and /readyz answer truthfully, including when a dependency is down."""

from __future__ import annotations

from flask import Flask

from helpdesk import create_app
from helpdesk.config import Settings
from tests import conftest_services
from tests.browser import Browser


def test_healthz_and_readyz_ok(client) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert set(ready.json["checks"]) == {"database", "migrations", "redis", "storage"}
    assert ready.json["checks"]["migrations"]["detail"] == "at head"


def _app_with(settings: Settings, **changes: str) -> Flask:
    values = {**settings.__dict__, **changes}
    return create_app(Settings(**values))


def test_redis_down_fails_readiness_not_liveness(settings: Settings) -> None:
    app = _app_with(settings, redis_url="redis://127.0.0.1:1/0")
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["redis"]["ok"] is False
    app.extensions["helpdesk.engine"].dispose()


def test_login_fails_closed_with_503_when_rate_limit_storage_is_down(
    settings: Settings, app: Flask
) -> None:
    broken = _app_with(settings, redis_url="redis://127.0.0.1:1/0")
    broken.config["TESTING"] = True
    browser = Browser(broken.test_client())
    browser.get("/login")
    response = browser.post("/login", {"email": "a@alpha.test", "password": "whatever"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "try again" in response.get_data(as_text=True)
    broken.extensions["helpdesk.engine"].dispose()
    # Regression: the second app must not move the first app's rate-limit storage.
    healthy = Browser(app.test_client())
    healthy.get("/login")
    assert healthy.post("/login", {"email": "a@alpha.test", "password": "x"}).status_code == 401


def test_database_down_fails_both(settings: Settings) -> None:
    app = _app_with(settings, database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    client = app.test_client()
    assert client.get("/healthz").status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["checks"]["database"]["ok"] is False


def test_unmigrated_database_is_not_ready(settings: Settings, database_url: str) -> None:
    url = database_url.rsplit("/", 1)[0] + "/helpdesk_test_unmigrated"
    if "?" in database_url:  # socket URLs keep their query after the database name
        base, query = database_url.split("?", 1)
        url = base.rsplit("/", 1)[0] + "/helpdesk_test_unmigrated?" + query
    conftest_services.recreate_database(url)
    app = _app_with(settings, database_url=url)
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["migrations"]["ok"] is False
    app.extensions["helpdesk.engine"].dispose()


def test_readyz_does_not_leak_connection_details(client, settings: Settings) -> None:
    body = client.get("/readyz").get_data(as_text=True)
    assert "postgres" not in body.lower() and "127.0.0.1" not in body
