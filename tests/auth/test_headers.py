"""HSTS over HTTPS only, the same headers on fragments, no-referrer on token pages, and
production cookies named __Host- with Secure, HttpOnly, SameSite=Lax, Path=/ and no Domain."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask

from helpdesk.config import ConfigError, Settings
from helpdesk.security_headers import HSTS
from tests.auth.conftest import app_with
from tests.browser import Browser, as_user

SECURITY_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options",
                    "Referrer-Policy", "Cross-Origin-Opener-Policy", "Permissions-Policy",
                    "Strict-Transport-Security")  # fmt: skip


def test_hsts_only_over_https(app: Flask, client) -> None:
    assert "Strict-Transport-Security" not in client.get("/login").headers
    secure = client.get("/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == HSTS
    # Without trusted proxies a client cannot claim HTTPS with X-Forwarded-Proto.
    claimed = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in claimed.headers


def test_hsts_behind_a_trusted_proxy(settings: Settings) -> None:
    with app_with(settings, proxy_hops=1) as proxied:
        client = proxied.test_client()
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
        assert client.get("/login", headers=forwarded).headers["Strict-Transport-Security"] == HSTS
        plain = client.get("/login", headers={"X-Forwarded-Proto": "http"})
        assert "Strict-Transport-Security" not in plain.headers


def test_fragments_carry_the_same_security_headers(app: Flask, world, password: str) -> None:
    browser = as_user(app, "agent@alpha.test", password)
    page = browser.get("/o/alpha/tickets", base_url="https://localhost")
    fragment = browser.get("/o/alpha/tickets", htmx=True, base_url="https://localhost")
    assert page.status_code == fragment.status_code == 200
    assert "<html" in page.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    for name in SECURITY_HEADERS:
        assert fragment.headers.get(name) == page.headers.get(name) is not None, name
    assert "HX-Request" in fragment.headers["Vary"]


@pytest.mark.parametrize("path", ["/t/" + "A" * 32, "/reset/" + "A" * 32, "/reset/x/y"])
def test_token_pages_send_no_referrer(client, path: str) -> None:
    assert client.get(path).headers["Referrer-Policy"] == "no-referrer"


def test_other_pages_keep_same_origin_referrers(client) -> None:
    for path in ("/login", "/reset", "/reset?sent=1"):
        assert client.get(path).headers["Referrer-Policy"] == "same-origin"


# Production with SESSION_COOKIE_SECURE left off: cookies are Secure in production regardless.
PRODUCTION = {"env": "production", "secret_key": "p" * 48, "clamd_url": "tcp://127.0.0.1:1",
              "session_cookie_secure": False}  # fmt: skip


def test_production_cookie_settings(settings: Settings) -> None:
    config = dataclasses.replace(settings, **PRODUCTION).flask_config()
    assert config["SESSION_COOKIE_NAME"] == "__Host-session"
    assert config["REMEMBER_COOKIE_NAME"] == "__Host-remember"
    for kind in ("SESSION", "REMEMBER"):
        assert config[f"{kind}_COOKIE_SECURE"] is True
        assert config[f"{kind}_COOKIE_HTTPONLY"] is True
        assert config[f"{kind}_COOKIE_SAMESITE"] == "Lax"
        assert config[f"{kind}_COOKIE_PATH"] == "/"
        assert config[f"{kind}_COOKIE_DOMAIN"] is None
    assert settings.flask_config()["SESSION_COOKIE_NAME"] == "session"  # development/test


def test_production_login_sets_a_host_prefixed_secure_cookie(
    settings: Settings, world, password: str
) -> None:
    with app_with(settings, **PRODUCTION) as prod:
        browser = Browser(prod.test_client())
        browser.get("/login", base_url="https://localhost")
        form = {"email": "agent@alpha.test", "password": password, "csrf_token": browser.csrf}
        response = browser.client.post("/login", data=form, base_url="https://localhost",
                                       headers={"Referer": "https://localhost/login"})  # fmt: skip
        assert response.status_code == 303
        [cookie] = response.headers.getlist("Set-Cookie")
        attributes = [part.strip() for part in cookie.split(";")]
        assert attributes[0].startswith("__Host-session=")
        assert {"Secure", "HttpOnly", "Path=/", "SameSite=Lax"} <= set(attributes)
        assert not any(a.lower().startswith("domain=") for a in attributes)
        assert response.headers["Strict-Transport-Security"] == HSTS
        page = browser.client.get("/o/alpha/tickets", base_url="https://localhost")
        assert page.status_code == 200  # the browser sends it back over HTTPS


def test_production_refuses_to_turn_secure_cookies_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_ENV", "production")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "false")
    with pytest.raises(ConfigError, match="SESSION_COOKIE_SECURE"):
        Settings.from_env()
