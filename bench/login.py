"""Log in over HTTP like a browser: the session cookie and CSRF token a load tool replays.

wrk cannot fill in a form, so the benchmark logs in once here (GET /login for the CSRF
token, POST the form, follow to a page for the new session's token) and hands wrk the
Cookie header and the X-CSRFToken header the HTMX reply form would send. The session
cookie is marked Secure in production; it is read from Set-Cookie and sent back by hand,
since the benchmark talks plain HTTP on loopback.
"""

from __future__ import annotations

import http.client
import re
import urllib.parse
from dataclasses import dataclass

BENCH_PASSWORD = "bench-password-not-secret"  # noqa: S105 - throwaway benchmark databases
_CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


@dataclass(frozen=True)
class Login:
    """What a logged-in browser sends: the Cookie header value and the CSRF token."""

    cookie: str
    csrf: str


def _request(
    base_url: str, method: str, path: str, cookie: str = "", body: str | None = None
) -> tuple[int, dict[str, str], str, list[str]]:
    parts = urllib.parse.urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Cookie": cookie} if cookie else {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        cookies = [
            v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"
        ]
        return response.status, dict(response.getheaders()), text, cookies
    finally:
        conn.close()


def _csrf(text: str, where: str) -> str:
    match = _CSRF_META.search(text)
    if match is None:
        raise SystemExit(f"no CSRF token on {where}: is this the helpdesk app?")
    return match.group(1)


def login(base_url: str, email: str, password: str, landing: str) -> Login:
    """Log in through the real form; `landing` is a page to read the new CSRF token from."""
    status, _h, text, cookies = _request(base_url, "GET", "/login")
    if status != 200:
        raise SystemExit(f"GET /login answered {status}")
    form = urllib.parse.urlencode(
        {"email": email, "password": password, "csrf_token": _csrf(text, "/login")}
    )
    status, _h, _t, fresh = _request(base_url, "POST", "/login", "; ".join(cookies), form)
    if status != 303 or not fresh:
        raise SystemExit(
            f"logging in as {email} failed (HTTP {status}): the database was generated with"
            " another password. Regenerate it (bench.run --regenerate) or pass --password."
        )
    status, _h, text, updated = _request(base_url, "GET", landing, "; ".join(fresh))
    if status != 200:
        raise SystemExit(f"GET {landing} as {email} answered {status} after logging in")
    # The page minted the session's CSRF token: the cookie it set is the one to replay.
    return Login(_merge(fresh, updated), _csrf(text, landing))


def _merge(old: list[str], new: list[str]) -> str:
    """Cookie header from `old` pairs overridden by `new` ones of the same name."""
    jar = dict(pair.split("=", 1) for pair in [*old, *new] if "=" in pair)
    return "; ".join(f"{k}={v}" for k, v in jar.items())
