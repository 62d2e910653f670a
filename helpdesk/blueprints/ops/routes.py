"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from werkzeug.wrappers import Response

from helpdesk.services import health

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Liveness: the process is up and the database answers."""
    ok, detail = health.check_database(current_app.extensions["helpdesk.engine"])
    body = {"status": "ok" if ok else "fail", "database": detail}
    return jsonify(body), 200 if ok else 503


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: migrations at head and every dependency reachable."""
    checks = health.readiness(
        current_app.extensions["helpdesk.engine"], current_app.extensions["helpdesk.redis"]
    )
    ok = all(c["ok"] for c in checks.values())
    return jsonify({"status": "ok" if ok else "fail", "checks": checks}), 200 if ok else 503
