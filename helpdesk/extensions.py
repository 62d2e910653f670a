"""Extension objects: created here unbound, bound to an app in `create_app`.

The rate limiter is per app instead: see `helpdesk.ratelimits`.
"""

from __future__ import annotations

from typing import cast

from flask import current_app
from flask_login import LoginManager
from flask_wtf import CSRFProtect
from redis import Redis

login_manager = LoginManager()
csrf = CSRFProtect()


def get_redis() -> Redis:
    """Return the app's Redis client."""
    return cast(Redis, current_app.extensions["helpdesk.redis"])
