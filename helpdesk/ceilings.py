"""The fail-open ceilings (per API token, per user): one Redis round trip per request.

Why not flask-limiter here: these budgets apply to nearly every request, and going through
flask-limiter cost a Redis round trip per ceiling plus its per-request bookkeeping — the
largest single item in a list request's profile (docs/performance.md, F6). A ceiling is a
fixed-window counter, the strategy flask-limiter uses by default (the window opens at the
key's first hit): every window item of every ceiling that applies to the request is one
`INCR`, an `EXPIRE … NX` and a `TTL` (for Retry-After), all sent in one pipeline.

Fail open: when Redis cannot answer, the request goes through (logged once a minute per
process, not once per request). The credential limits in `helpdesk.ratelimits` fail closed.
Keys are the user id or a hash of the API token (never the token), as before.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask, Response, current_app, request
from limits import RateLimitItem, parse_many
from redis import Redis
from redis.exceptions import RedisError
from werkzeug.exceptions import TooManyRequests

log = logging.getLogger("helpdesk.ratelimits")
PREFIX = "ceiling"
QUIET_SECONDS = 60.0  # while Redis is down, say so at most once a minute per process


@functools.lru_cache(maxsize=64)
def parse(text: str) -> tuple[RateLimitItem, ...]:
    """Window items of a limit string such as "600 per minute" or "5/minute;30/hour"."""
    return tuple(parse_many(text))


class Checker:
    """Counts one request against the ceilings that apply to it, in one round trip."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._quiet_until = 0.0

    def check(self, ceilings: Sequence[Any]) -> None:
        """Raise TooManyRequests when a ceiling is exceeded; let everything through on errors."""
        counted = []  # (ceiling, item) in the order of the pipeline's triples
        pipe = self.redis.pipeline(transaction=False)
        for ceiling in ceilings:
            key = ceiling.key()
            if key is None:
                continue
            for item in parse(str(current_app.config[ceiling.setting])):
                name = f"{PREFIX}/{ceiling.scope}/{key}/{item.key_for()}"
                pipe.incr(name)
                pipe.expire(name, item.get_expiry(), nx=True)  # the window opens at its first hit
                pipe.ttl(name)
                counted.append((ceiling, item))
        if not counted:
            return
        try:
            replies = pipe.execute()
        except RedisError as exc:
            self._unavailable(exc)
            return
        for i, (ceiling, item) in enumerate(counted):
            hits, ttl = int(replies[3 * i]), int(replies[3 * i + 2])
            if hits > item.amount:
                self._blocked(ceiling.kind, item, ttl if ttl > 0 else item.get_expiry())

    def _blocked(self, kind: str, item: RateLimitItem, wait: float) -> None:
        extra = {"event": "ratelimit.blocked", "route": request.endpoint,
                 "limit": str(item), "kind": kind}  # fmt: skip
        log.info("ratelimit.blocked", extra=extra)
        retry = str(max(1, math.ceil(wait)))
        raise TooManyRequests(response=Response(status=429, headers={"Retry-After": retry}))

    def _unavailable(self, exc: RedisError) -> None:
        now = time.monotonic()
        if now < self._quiet_until:
            return
        self._quiet_until = now + QUIET_SECONDS
        log.warning(
            "ratelimit.unavailable",
            extra={"event": "ratelimit.unavailable", "scope": "ceilings",
                   "error_type": type(exc).__name__},
        )  # fmt: skip


def describe(app: Flask, ceilings: Sequence[Any]) -> list[str]:
    """One line per ceiling: scope, setting, its current value, who it counts, where."""
    lines = []
    for ceiling in ceilings:
        endpoints = sorted(e for e in app.view_functions if ceiling.applies(e))
        value = app.config[ceiling.setting]
        lines.append(f"{ceiling.scope}: {ceiling.setting}={value} per {ceiling.kind}, "
                     f"fails open, {len(endpoints)} endpoints")  # fmt: skip
    return lines


def install(app: Flask, ceilings: Sequence[Any], redis_url: str) -> Checker:
    """Wrap every view a ceiling applies to with one check of all its ceilings."""
    redis = Redis.from_url(redis_url, socket_connect_timeout=2, socket_timeout=2)
    checker = Checker(redis)
    for endpoint in list(app.view_functions):
        applying = [c for c in ceilings if c.applies(endpoint)]
        if applying:
            app.view_functions[endpoint] = _wrap(app.view_functions[endpoint], checker, applying)
    return checker


def _wrap(view: Callable[..., Any], checker: Checker, applying: list[Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        if current_app.config.get("RATELIMIT_ENABLED", True):
            checker.check(applying)
        return view(*args, **kwargs)

    return limited
