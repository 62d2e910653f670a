"""Every rate limit in two lists, bound per app (flask-limiter on Redis).

Why lists instead of decorators: a module-level `Limiter` keeps one storage for every
app it is bound to, so a second app (a test, a script) would silently move the first
app's counters. Here each `create_app` builds its own limiters and wraps the listed views.

Two kinds, because Redis being down must mean different things (docs/decisions/0003):

* `LIMITS` guard credentials and abuse levers (login, password reset and change, emailed
  links, the public form, inbound mail). They FAIL CLOSED: while Redis is unreachable
  these routes answer 503 (`helpdesk.errors`) rather than allow unthrottled guessing.
  flask-limiter counts them (each `create_app` builds its own `Limiter`).
* `CEILINGS` are broad budgets over many views (per API token, per user). They FAIL OPEN:
  a Redis outage must not take the whole app down with it. `helpdesk.ceilings` counts
  them, all of a request's in one Redis round trip (they apply to nearly every request).

Keys are the client address (`request.remote_addr`, which ProxyFix rewrites only for the
configured PROXY_HOPS — a raw X-Forwarded-For is never trusted), a hash of the account
being tried, the user id, or a hash of the API token: never an email, token or password in
Redis or in logs. Each refusal is logged as `ratelimit.blocked` with the route, the limit
and the kind of key, and answered 429 with Retry-After (rendered in `helpdesk.errors`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address
from flask_login import current_user

from helpdesk import ceilings
from helpdesk.services.validation import normalize_email

log = logging.getLogger(__name__)
# Counters live in Redis: a hung server must not hang requests (fail-open needs an answer).
STORAGE_OPTIONS: dict[str, str | int] = {"socket_connect_timeout": 2, "socket_timeout": 2}


def account_key() -> str:
    """Key for the account being tried (hashed: no email addresses in Redis)."""
    email = request.form.get("email", "").strip().lower()
    return "account:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def address_key() -> str:
    """Key for the address a public request names (hashed); malformed ones share the IP's."""
    email = normalize_email(request.form.get("email", ""))
    if email is None:  # no shared bucket for every empty or garbled address
        return "address-invalid:" + get_remote_address()
    return "address:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def user_key() -> str | None:
    """Key for the authenticated user (API token owner or logged-in user); None if anonymous."""
    token = g.get("api_token")
    if token is not None:
        return f"user:{token.user_id}"
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return None


def api_token_key() -> str | None:
    """Key for the API token of an authenticated API call (hashed); None otherwise."""
    if g.get("api_token") is None:
        return None
    parts = request.headers.get("Authorization", "").split()
    secret = parts[-1] if len(parts) == 2 else ""
    return "token:" + hashlib.sha256(secret.encode()).hexdigest()[:32]


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


def _blocked(kind: str) -> Callable[[RequestLimit], Response]:
    """on_breach: log the refusal (no key, no address) and carry Retry-After to the 429."""

    def breach(limit: RequestLimit) -> Response:
        log.info(
            "ratelimit.blocked",
            extra={
                "event": "ratelimit.blocked",
                "route": request.endpoint,
                "limit": str(limit.limit),
                "kind": kind,
            },
        )
        wait = max(1, math.ceil(limit.reset_at - time.time()))
        return Response(status=429, headers={"Retry-After": str(wait)})

    return breach


@dataclass(frozen=True)
class Rule:
    """A fail-closed limit on one view. kind names the key in logs: ip, account, user …"""

    limit: Callable[[], str]
    methods: tuple[str, ...] = ("POST",)
    key: Callable[[], str] = get_remote_address
    kind: str = "ip"


@dataclass(frozen=True)
class Ceiling:
    """A fail-open budget shared by every view `applies` accepts; exempt when key is None.

    `setting` names the config value holding the limit (read per request); counted by
    `helpdesk.ceilings`, one Redis round trip for all of a request's ceilings.
    """

    scope: str
    setting: str
    key: Callable[[], str | None]
    kind: str
    applies: Callable[[str], bool]


def _or_empty(key: Callable[[], str | None]) -> Callable[[], str]:
    return lambda: key() or ""


LIMITS: dict[str, list[Rule]] = {
    # Inbound email: per client address (the inbound-mail service's few IPs), generous, and
    # fail closed like login (503 while Redis is down: the service retries; mail is not lost).
    "inbound.receive": [Rule(_setting("INBOUND_LIMIT_IP"))],
    # Emailed-link lookups fail closed like login (a 503 while Redis is down): unthrottled,
    # /t/ is a free token-guessing oracle and a lever on the database. HEAD counts too
    # (some mail scanners use it); both share one counter per client address.
    "links.open_link": [Rule(_setting("LINK_LIMIT_IP"), methods=("GET", "HEAD"))],
    "auth.login": [
        Rule(_setting("LOGIN_LIMIT_IP")),
        Rule(_setting("LOGIN_LIMIT_ACCOUNT"), key=account_key, kind="account"),
    ],
    # Forgot-password fails closed: unthrottled, it would mail any address over and over.
    # Every POST counts, account or not, so the answer stays the same either way.
    "auth.forgot_password": [
        Rule(_setting("RESET_LIMIT_IP")),
        Rule(_setting("RESET_LIMIT_ACCOUNT"), key=account_key, kind="account"),
    ],
    # Reset links are token lookups like /t/: same per-address budget, fail closed.
    "auth.reset_password": [Rule(_setting("LINK_LIMIT_IP"), methods=("GET", "HEAD", "POST"))],
    # Password change re-checks the current password: a guessing oracle for whoever holds a
    # session. Every POST counts, per user; fail closed like login.
    "profile.change_password": [
        Rule(_setting("PASSWORD_LIMIT_USER"), key=_or_empty(user_key), kind="user")
    ],
    # The public request form fails closed too (a 503 while Redis is down): unthrottled, it
    # would let anyone create tickets in bulk and make us email any address over and over.
    # Every POST counts, valid or not, so parallel submissions cannot slip past a check.
    "request_form.submit": [
        Rule(_setting("REQUEST_LIMIT_IP")),
        Rule(_setting("REQUEST_LIMIT_ADDRESS"), key=address_key, kind="address"),
    ],
}

CEILINGS: list[Ceiling] = [
    # Per API token, over every /api/v1 call it authenticates. Fails OPEN: an outage of the
    # counters must not cut off every integration (tokens are long random secrets already).
    Ceiling(
        "api-token",
        "API_LIMIT_TOKEN",
        api_token_key,
        "token",
        lambda endpoint: endpoint.startswith("api."),
    ),
    # Per user, over every request they make, web and API together. Fails OPEN: it caps a
    # runaway script or a stolen session, and must not become a single point of failure.
    Ceiling("user", "USER_LIMIT", user_key, "user", lambda endpoint: endpoint != "static"),
]


def install(app: Flask) -> Limiter:
    """Create this app's limiters and wrap every listed view (after blueprints exist)."""
    closed = Limiter(key_func=get_remote_address, app=app, storage_options=STORAGE_OPTIONS)
    _drop_request_hook(app, closed)
    for endpoint, rules in LIMITS.items():
        view: Any = app.view_functions[endpoint]
        for rule in rules:
            view = closed.limit(
                rule.limit,
                methods=list(rule.methods),
                key_func=rule.key,
                on_breach=_blocked(rule.kind),
            )(view)
        app.view_functions[endpoint] = view
    app.extensions["helpdesk.limiter"] = closed
    app.extensions["helpdesk.ceilings"] = _install_ceilings(app)
    return closed


def _drop_request_hook(app: Flask, limiter: Limiter) -> None:
    """Remove flask-limiter's check that runs before every request of the app.

    Every limit here wraps its view (`limit()` below), and a wrapped view checks its own
    limits when it runs. The hook looks for application, default and blueprint limits on
    every request — this app sets none — at 2% of a list request's CPU. If a default,
    application or meta limit is configured, the hook stays; a limit on a whole blueprint
    would need it too, so limits go on views, as in `LIMITS`.
    """
    if any(app.config.get(f"RATELIMIT_{name}") for name in ("DEFAULT", "APPLICATION", "META")):
        return
    hooks = app.before_request_funcs.get(None, [])
    app.before_request_funcs[None] = [
        hook for hook in hooks if getattr(hook, "__self__", None) is not limiter
    ]


def _install_ceilings(app: Flask) -> ceilings.Checker:
    uri = str(app.config["RATELIMIT_STORAGE_URI"])
    if uri.startswith("redis+unix://"):  # the `limits` spelling of a unix socket
        uri = "unix://" + uri[len("redis+unix://") :]
    return ceilings.install(app, CEILINGS, uri)
