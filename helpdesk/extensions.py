"""Extension objects: created here unbound, bound to an app in `create_app`."""

from __future__ import annotations

from typing import cast

from flask import current_app
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from redis import Redis

login_manager = LoginManager()
csrf = CSRFProtect()
# Keyed on request.remote_addr, which ProxyFix rewrites only for the configured hop count:
# a raw X-Forwarded-For from the client is never trusted.
limiter = Limiter(key_func=get_remote_address)


def get_redis() -> Redis:
    """Return the app's Redis client."""
    return cast(Redis, current_app.extensions["helpdesk.redis"])
