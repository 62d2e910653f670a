"""Every rate limit in one list, bound per app (flask-limiter on Redis).

Why a list instead of decorators: a module-level `Limiter` keeps one storage for every
app it is bound to, so a second app (a test, a script) would silently move the first
app's counters. Here each `create_app` builds its own `Limiter` and wraps the listed views.

Keys are the client address (`request.remote_addr`, which ProxyFix rewrites only for the
configured PROXY_HOPS — a raw X-Forwarded-For is never trusted) or a hash of the account
being tried. When Redis is unreachable the limited routes fail closed with a 503
(see `helpdesk.errors` and docs/decisions/0003-rate-limits-fail-closed.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from helpdesk.services.validation import normalize_email


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


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


@dataclass(frozen=True)
class Rule:
    limit: Callable[[], str]
    methods: tuple[str, ...] = ("POST",)
    key: Callable[[], str] = get_remote_address
    options: dict[str, Any] = field(default_factory=dict)


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
        Rule(_setting("LOGIN_LIMIT_ACCOUNT"), key=account_key),
    ],
    # The public request form fails closed too (a 503 while Redis is down): unthrottled, it
    # would let anyone create tickets in bulk and make us email any address over and over.
    # Every POST counts, valid or not, so parallel submissions cannot slip past a check.
    "request_form.submit": [
        Rule(_setting("REQUEST_LIMIT_IP")),
        Rule(_setting("REQUEST_LIMIT_ADDRESS"), key=address_key),
    ],
}


def install(app: Flask) -> Limiter:
    """Create this app's limiter and wrap every listed view (after blueprints exist)."""
    limiter = Limiter(key_func=get_remote_address, app=app)
    for endpoint, rules in LIMITS.items():
        view: Any = app.view_functions[endpoint]
        for rule in rules:
            view = limiter.limit(
                rule.limit, methods=list(rule.methods), key_func=rule.key, **rule.options
            )(view)
        app.view_functions[endpoint] = view
    app.extensions["helpdesk.limiter"] = limiter
    return limiter
