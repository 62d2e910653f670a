"""gunicorn settings for the web: `gunicorn -c helpdesk/gunicorn_conf.py wsgi:app`.

Logs: gunicorn's own lines go through the app's handler (JSON, or LOG_FORMAT=text), and its
access log stays off — the app writes one `http.request` line per request with the route
template, never the raw path (paths can carry link tokens). `AppLogger` makes "off" mean
off: with a `logconfig_dict` gunicorn would otherwise build every request's access-log
fields (1.5 % of a list request's CPU) for a logger nobody reads.

Metrics: with PROMETHEUS_MULTIPROC_DIR set (in the environment, before gunicorn starts),
every worker process writes its request metrics to files there and /metrics sums them.
The master empties the directory when it starts (files of an earlier run would otherwise
be summed forever) and marks a dead worker's files, as prometheus_client requires.
Command-line options (--bind, --workers) still apply on top of this file.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger

from helpdesk.logs import gunicorn_logconfig


class AppLogger(Logger):
    """gunicorn's logger with no access log at all: the app logs each request itself."""

    @property
    def access_log_enabled(self) -> bool:
        return False

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        return None


accesslog = None
logger_class = AppLogger
logconfig_dict = gunicorn_logconfig(
    os.environ.get("LOG_FORMAT", "json").strip().lower() or "json",
    os.environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
)


def metrics_dir() -> Path | None:
    """The multiprocess metrics directory, when one is configured."""
    value = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "").strip()
    return Path(value) if value else None


def prepare_metrics_dir(path: Path) -> None:
    """Create `path` if needed and delete metric files left by an earlier run."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def on_starting(_server: Any) -> None:
    path = metrics_dir()
    if path is not None:
        prepare_metrics_dir(path)


def child_exit(_server: Any, worker: Any) -> None:
    if metrics_dir() is not None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_worker_init(_worker: Any) -> None:
    """Hide what the worker built at start-up from the garbage collector: it lives as long.

    The app's modules, templates and caches are ~150,000 objects, and a full collection
    walks every one: ~60 ms, paid by whichever request triggered it. Frozen objects are
    never scanned again, so a full collection walks only what requests left behind. The
    list's p99 fell from 21-33 ms to 10-13 ms (docs/performance.md, F12).
    """
    gc.collect()
    gc.freeze()
