"""Per-request metrics and the access log line, recorded as each request finishes.

Labels stay bounded: `route` is the URL rule template (`/o/<org_slug>/tickets/<int:number>`)
or "unmatched" — never the raw path, which is unbounded and may carry a link token —,
`method` is one of the HTTP methods or "OTHER", `status` is the numeric status.

Processes: under gunicorn every worker process keeps its own counters. With
`PROMETHEUS_MULTIPROC_DIR` set in the environment *before the process starts*
(prometheus_client reads it at import), each process writes its values to files in that
directory and /metrics sums them all (`MultiProcessCollector`); gunicorn's `child_exit`
hook (helpdesk/gunicorn_conf.py) marks a dead worker's files. Without it the values live
in memory and /metrics reports this process's only (one process: `flask run`, tests).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, values
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.wrappers import Response

from helpdesk.logs import address_prefix

access_log = logging.getLogger("helpdesk.access")

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
DENIED = ("401", "403", "404", "429")
QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})  # probes: DEBUG when fine
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
USER_AGENT_MAX = 120
_STARTED = "helpdesk.request_started"
_STATUS = "_helpdesk_status"

REQUESTS = Counter(
    "helpdesk_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
    registry=None,
)
DURATION = Histogram(
    "helpdesk_http_request_duration_seconds",
    "Seconds from the request's arrival to its response, by route template and method",
    ["route", "method"],
    buckets=BUCKETS,
    registry=None,
)
DENIED_TOTAL = Counter(
    "helpdesk_http_denied",
    "Requests answered 401, 403, 404 or 429 (login failures, bad tokens, tenancy, limits)",
    ["status"],
    registry=None,
)
DB_ERRORS = Counter(
    "helpdesk_db_errors",
    "Database connectivity errors (OperationalError, InterfaceError, lost connections)",
    registry=None,
)
for _status in DENIED:  # exposed at 0 from the start, so rate() and alerts see them
    DENIED_TOTAL.labels(_status)


def multiprocess() -> bool:
    """Whether prometheus_client writes values to PROMETHEUS_MULTIPROC_DIR in this process."""
    return values.ValueClass is not values.MutexValue


def register(registry: CollectorRegistry) -> None:
    """Expose the request metrics (of every process, in multiprocess mode) in `registry`."""
    if multiprocess():
        MultiProcessCollector(registry)
        return
    for metric in (REQUESTS, DURATION, DENIED_TOTAL, DB_ERRORS):
        registry.register(metric)


def record(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    REQUESTS.labels(route, method, str(status)).inc()
    DURATION.labels(route, method).observe(seconds)
    if str(status) in DENIED:
        DENIED_TOTAL.labels(str(status)).inc()


def count_db_error(context: ExceptionContext) -> None:
    """Engine `handle_error` listener: count connectivity errors (not pre-ping retries)."""
    if getattr(context, "is_pre_ping", False):
        return
    if context.is_disconnect or isinstance(
        context.sqlalchemy_exception, OperationalError | InterfaceError
    ):
        DB_ERRORS.inc()


# --- the request hooks --------------------------------------------------------------------


class _StartClock:
    """WSGI middleware noting when a request arrived (before any hook can answer it)."""

    def __init__(self, wsgi_app: Callable[..., Iterable[bytes]]) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[_STARTED] = time.perf_counter()
        return self.wsgi_app(environ, start_response)


def route_label() -> str:
    """The matched URL rule template, or "unmatched"."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def method_label() -> str:
    method = request.method
    return method if method in METHODS else "OTHER"


def _remember_status(response: Response) -> Response:
    setattr(g, _STATUS, response.status_code)
    return response


def _finish(_exc: BaseException | None) -> None:
    started = request.environ.get(_STARTED)
    if started is None:  # a test_request_context(), not a served request
        return
    seconds = time.perf_counter() - started
    status = int(g.pop(_STATUS, 500))  # no response recorded: an unhandled exception
    route, method = route_label(), method_label()
    record(route, method, status, seconds)
    quiet = route in QUIET_ROUTES and status < 400
    access_log.log(
        logging.DEBUG if quiet else logging.INFO,
        "http.request",
        extra={
            "event": "http.request",
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "ip_prefix": address_prefix(request.remote_addr),
            "user_agent": request.headers.get("User-Agent", "")[:USER_AGENT_MAX] or None,
        },
    )


def init_app(app: Flask, engine: Engine) -> None:
    """Time, count and log every request of `app`; count `engine`'s connectivity errors."""
    app.wsgi_app = _StartClock(app.wsgi_app)  # type: ignore[method-assign]
    app.after_request(_remember_status)
    app.teardown_request(_finish)
    if not event.contains(engine, "handle_error", count_db_error):
        event.listen(engine, "handle_error", count_db_error)
