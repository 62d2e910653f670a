"""The per-token and per-user ceilings, the three 429 renderings, fail modes, proxy hops."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.config import Settings
from helpdesk.errors import MESSAGES
from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope
from tests.auth.conftest import DEAD_REDIS, app_with
from tests.browser import Browser, as_user

API = "/api/v1/orgs/alpha/tickets"
PAGE = "/o/alpha/tickets"


def bearer(session: Session, member, name: str = "t") -> str:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, name)
    return plaintext


def assert_too_many_page(response) -> None:
    assert response.status_code == 429 and response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    assert MESSAGES[429] in response.get_data(as_text=True)
    assert "<html" in response.get_data(as_text=True)


def test_api_calls_are_limited_per_token(
    app: Flask, client, world, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "API_LIMIT_TOKEN", "3 per minute")
    agent = world["alpha"]["agent"]
    token, spare = bearer(session, agent, "a"), bearer(session, agent, "b")
    for _ in range(3):
        assert client.get(API, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # Spelling the header differently does not make a new bucket.
    blocked = client.get(API, headers={"Authorization": f"bearer   {token} "})
    assert blocked.status_code == 429 and blocked.mimetype == "application/problem+json"
    assert blocked.json["status"] == 429 and blocked.json["detail"] == MESSAGES[429]
    assert int(blocked.headers["Retry-After"]) > 0
    assert client.get(API, headers={"Authorization": f"Bearer {spare}"}).status_code == 200
    # The public OpenAPI document and refused tokens do not count against anyone.
    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get(API, headers={"Authorization": "Bearer hdk_" + "A" * 43}).status_code == 401


def test_every_user_has_one_ceiling_over_web_and_api(
    app: Flask, world, session: Session, password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = as_user(app, "agent@alpha.test", password)
    other = as_user(app, "admin@alpha.test", password)
    token = bearer(session, world["alpha"]["agent"])
    api = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    monkeypatch.setitem(app.config, "USER_LIMIT", "4 per minute")
    assert browser.get(PAGE).status_code == 200
    assert api.get(API, headers=headers).status_code == 200
    assert browser.get(PAGE).status_code == 200
    assert api.get(API, headers=headers).status_code == 200
    assert_too_many_page(browser.get(PAGE))
    assert api.get(API, headers=headers).status_code == 429
    fragment = browser.get(PAGE, htmx=True)
    assert fragment.status_code == 429 and "<html" not in fragment.get_data(as_text=True)
    assert MESSAGES[429] in fragment.get_data(as_text=True)
    assert json.loads(fragment.headers["HX-Trigger"]) == {"toast": MESSAGES[429]}
    assert int(fragment.headers["Retry-After"]) > 0
    assert other.get(PAGE).status_code == 200  # another user has their own budget
    assert app.test_client().get("/login").status_code == 200  # anonymous pages: no ceiling


def test_blocks_are_logged_without_keys_or_addresses(
    app: Flask, client, world, session: Session, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO, logger="helpdesk.ratelimits")
    monkeypatch.setitem(app.config, "API_LIMIT_TOKEN", "1 per minute")
    token = bearer(session, world["alpha"]["agent"])
    for _ in range(2):
        client.get(API, headers={"Authorization": f"Bearer {token}"})
    [record] = [r for r in caplog.records if r.name == "helpdesk.ratelimits"]
    assert record.getMessage() == "ratelimit.blocked"
    fields = {k: getattr(record, k) for k in ("event", "route", "limit", "kind")}
    assert fields == {"event": "ratelimit.blocked", "route": "api.list_tickets",
                      "limit": "1 per 1 minute", "kind": "token"}  # fmt: skip
    dumped = json.dumps(record.__dict__, default=str)
    assert token not in dumped and token[4:20] not in dumped and "127.0.0.1" not in dumped


def test_login_block_renders_for_pages_and_htmx(
    app: Flask, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_IP", "1 per minute")
    browser = Browser(app.test_client())
    assert browser.login("agent@alpha.test", "wrong password!").status_code == 401
    assert_too_many_page(browser.login("agent@alpha.test", "wrong password!"))
    htmx = browser.post("/login", {"email": "a@alpha.test", "password": "x"}, htmx=True)
    assert htmx.status_code == 429 and "HX-Trigger" in htmx.headers
    assert int(htmx.headers["Retry-After"]) > 0


def test_ceilings_fail_open_and_credentials_fail_closed_without_redis(
    settings: Settings, world, session: Session, password: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    token = bearer(session, world["alpha"]["agent"])
    with app_with(settings) as healthy:  # log in while the counters still work
        cookie = as_user(healthy, "agent@alpha.test", password).client.get_cookie("session")
        assert cookie is not None
    with app_with(settings, ratelimit_storage_uri=DEAD_REDIS, user_limit="1 per minute",
                  api_limit_token="1 per minute") as broken:  # fmt: skip
        web = broken.test_client()
        web.set_cookie("session", cookie.value)
        for _ in range(3):  # the ceilings cannot count: they let everything through
            assert web.get(PAGE).status_code == 200
            response = broken.test_client().get(API, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200
        # The outage is said once per process and minute, not once per request.
        down = [r for r in caplog.records if r.getMessage() == "ratelimit.unavailable"]
        assert len(down) == 1 and down[0].levelname == "WARNING"
        refused = Browser(broken.test_client()).login("agent@alpha.test", password)
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "30"
        assert broken.test_client().get("/t/" + "A" * 32).status_code == 503


def _login_from(browser: Browser, forwarded_for: str | None) -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    form = {"email": "agent@alpha.test", "password": "wrong password!"}
    return browser.post("/login", form, headers=headers).status_code


def test_forwarded_for_is_ignored_without_proxy_hops(
    app: Flask, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "LOGIN_LIMIT_IP", "2 per minute")
    browser = Browser(app.test_client())
    browser.get("/login")
    assert _login_from(browser, "198.51.100.1") == 401
    assert _login_from(browser, "198.51.100.2") == 401
    assert _login_from(browser, "198.51.100.3") == 429  # one client, whatever it claims


@pytest.mark.parametrize(
    ("hops", "same_client", "other_client"),
    [
        (1, ["203.0.113.7", "spoofed, 203.0.113.7"], "203.0.113.8"),
        (2, ["203.0.113.7, 10.0.0.1", "spoofed, 203.0.113.7, 10.0.0.2"], "203.0.113.8, 10.0.0.1"),
    ],
)
def test_forwarded_for_is_honoured_for_exactly_the_configured_hops(
    settings: Settings, world, hops: int, same_client: list[str], other_client: str
) -> None:
    with app_with(settings, proxy_hops=hops, login_limit_ip="2 per minute") as proxied:
        browser = Browser(proxied.test_client())
        browser.get("/login")
        assert [_login_from(browser, xff) for xff in same_client] == [401, 401]
        assert _login_from(browser, same_client[0]) == 429  # entries left of the hops: ignored
        assert _login_from(browser, other_client) == 401  # the real client differs


def test_limits_are_checked_by_their_views_not_by_a_hook_on_every_request(app: Flask) -> None:
    """flask-limiter's before-request check finds nothing in this app: it is not installed.

    The fail-closed limits still hold (the login, reset and form tests above and beside
    this one); this checks that no request pays for a check that has nothing to check.
    """
    limiter = app.extensions["helpdesk.limiter"]
    hooks = app.before_request_funcs.get(None, [])
    assert hooks and all(getattr(h, "__self__", None) is not limiter for h in hooks)
    assert getattr(app.view_functions["auth.login"], "__wrapped__", None) is not None
