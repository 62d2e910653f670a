"""A thin wrapper over Flask's test client that behaves like a browser with a form.

It keeps the CSRF token from the last page it saw and sends it with every POST (as the
form field, or as the X-CSRFToken header for HTMX requests), like the real pages do.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class Browser:
    def __init__(self, client: FlaskClient):
        self.client = client
        self.csrf: str | None = None

    def _remember(self, response: TestResponse) -> TestResponse:
        if response.mimetype == "text/html":
            match = _CSRF_META.search(response.get_data(as_text=True))
            if match:
                self.csrf = match.group(1)
        return response

    def get(self, url: str, htmx: bool = False, **kw: Any) -> TestResponse:
        headers = kw.pop("headers", {})
        if htmx:
            headers["HX-Request"] = "true"
        return self._remember(self.client.get(url, headers=headers, **kw))

    def post(self, url: str, data: dict[str, Any] | None = None, htmx: bool = False,
             csrf: bool = True, **kw: Any) -> TestResponse:  # fmt: skip
        if csrf and self.csrf is None:
            self.get("/login")
        data = dict(data or {})
        headers = kw.pop("headers", {})
        if csrf:
            if htmx:
                headers["X-CSRFToken"] = self.csrf
            else:
                data.setdefault("csrf_token", self.csrf)
        if htmx:
            headers["HX-Request"] = "true"
        return self._remember(self.client.post(url, data=data, headers=headers, **kw))

    def login(self, email: str, password: str) -> TestResponse:
        self.get("/login")
        response = self.post("/login", {"email": email, "password": password})
        self.csrf = None  # the session was renewed at login: fetch a fresh token
        if response.status_code == 303:
            self.get("/login")  # logged-in GET redirects; fetch a page with the new token
            if self.csrf is None:
                self.get(response.headers["Location"], follow_redirects=True)
        return response


def as_user(app: Flask, email: str, password: str) -> Browser:
    """A fresh browser logged in as this user (a failed login fails the test here)."""
    browser = Browser(app.test_client())
    response = browser.login(email, password)
    assert response.status_code == 303, f"login as {email} failed: {response.status_code}"
    assert browser.csrf, f"no CSRF token after logging in as {email}"
    return browser
