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


def account_key() -> str:
    """Key for the account being tried (hashed: no email addresses in Redis)."""
    email = request.form.get("email", "").strip().lower()
    return "account:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _setting(name: str) -> Callable[[], str]:
    return lambda: str(current_app.config[name])


@dataclass(frozen=True)
class Rule:
    limit: Callable[[], str]
    methods: tuple[str, ...] = ("POST",)
    key: Callable[[], str] = get_remote_address
    options: dict[str, Any] = field(default_factory=dict)


LIMITS: dict[str, list[Rule]] = {
    "auth.login": [
        Rule(_setting("LOGIN_LIMIT_IP")),
        Rule(_setting("LOGIN_LIMIT_ACCOUNT"), key=account_key),
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
