"""Health endpoints for load balancers and orchestrators, and /metrics for Prometheus."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from werkzeug.wrappers import Response

from helpdesk import metrics
from helpdesk.services import health

bp = Blueprint("ops", __name__, cli_group=None)  # `flask operators …` at the top level
METRICS_EXTENSION = "helpdesk.metrics"


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    engine, redis = app.extensions["helpdesk.engine"], app.extensions["helpdesk.redis"]
    app.extensions[METRICS_EXTENSION] = metrics.build_registry(
        redis,
        app.extensions["helpdesk.sessionmaker"],
        readiness=lambda: health.readiness(engine, redis),  # runs in the scrape's request
    )


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Liveness: the process is up and the database answers."""
    ok, detail = health.check_database(current_app.extensions["helpdesk.engine"])
    body = {"status": "ok" if ok else "fail", "database": detail}
    return jsonify(body), 200 if ok else 503


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: migrations at head and every dependency reachable.

    `background` reports the periodic jobs' freshness; it never fails readiness (see
    `health.background`).
    """
    engine = current_app.extensions["helpdesk.engine"]
    checks = health.readiness(engine, current_app.extensions["helpdesk.redis"])
    ok = all(c["ok"] for c in checks.values())
    body = {
        "status": "ok" if ok else "fail",
        "checks": checks,
        "background": health.background(engine, datetime.now(UTC)),
    }
    return jsonify(body), 200 if ok else 503


@bp.get("/metrics", endpoint="metrics")
def metrics_page() -> Response:
    """Prometheus text exposition (bearer token, or loopback when no token is set)."""
    config = current_app.config
    allowed = metrics.scrape_allowed(
        token=config["METRICS_TOKEN"],
        authorization=request.headers.get("Authorization"),
        remote_addr=request.remote_addr,
        forwarded=bool(request.headers.get("X-Forwarded-For") or request.headers.get("Forwarded")),
        proxy_hops=int(config["PROXY_HOPS"]),
    )
    if not allowed:
        abort(404)
    registry = current_app.extensions[METRICS_EXTENSION]
    body, content_type = metrics.render(registry, request.headers.get("Accept"))
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response
