"""rq-dashboard at /ops/rq, for site operators only (everyone else gets 404).

Why a gate in front of a private dashboard app instead of registering rq-dashboard's
blueprint on our app: every request to the dashboard passes through the two views below,
so one check decides access for every page, JSON feed and action — a route added by an
rq-dashboard upgrade cannot bypass it — and the route inventory of our app holds two
rules instead of rq-dashboard's eighteen (several of which share an endpoint). The
dashboard app is built once per app (never at import) and shares the app's Redis client.

What the gate enforces, in order:

1. Logged-in user with `User.is_operator` (a site role, not an org role), else 404.
2. Routes that change state (every rule accepting POST: requeue, delete, empty, compact)
   answer only POST — rq-dashboard also serves `/requeue/<queue>` on GET — and POST needs
   our CSRF token. rq-dashboard's JavaScript sends the `_csrf_token` cookie back as
   `X-CSRFToken`, so every dashboard response sets that cookie (path /ops/rq only).
3. The relaxed content security policy the dashboard needs (see
   `helpdesk.security_headers`) is set on dashboard responses only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import rq_dashboard
from flask import Blueprint, Flask, abort, current_app, redirect, request
from flask.blueprints import BlueprintSetupState
from flask_login import current_user
from flask_wtf.csrf import generate_csrf
from redis import Redis
from rq.exceptions import NoSuchJobError
from werkzeug.exceptions import NotFound
from werkzeug.routing import RequestRedirect, Rule
from werkzeug.wrappers import Response

from helpdesk.extensions import csrf
from helpdesk.security_headers import RQ_DASHBOARD_CSP

PREFIX = "/ops/rq"
EXTENSION = "helpdesk.rq_dashboard"
CSRF_COOKIE = "_csrf_token"  # the name rq-dashboard's JavaScript reads

bp = Blueprint("ops_rq", __name__, url_prefix=PREFIX)
csrf.exempt(bp)  # checked in the view instead, after the operator check (404 first)


def build_dashboard(redis_url: str, redis: Redis) -> Flask:
    """Return the private rq-dashboard app, bound to the app's Redis client."""
    dashboard = Flask(rq_dashboard.__name__, static_folder="static")
    # Only displayed (the navbar's instance list); the client below does the connecting.
    dashboard.config["RQ_DASHBOARD_REDIS_URL"] = (_without_credentials(redis_url),)
    dashboard.register_blueprint(rq_dashboard.blueprint, url_prefix="")
    # Replace rq-dashboard's per-request hook, which builds a new Redis client from the URL
    # on every request: one instance (ours) and our client, whatever the URL scheme.
    dashboard.before_request_funcs["rq_dashboard"] = [_single_instance]
    dashboard.redis_conn = redis  # type: ignore[attr-defined]  # what rq-dashboard reads
    dashboard.register_error_handler(NoSuchJobError, _no_such_job)
    return dashboard


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _single_instance() -> None:
    if (request.view_args or {}).get("instance_number", 0) != 0:
        abort(404)


def _no_such_job(_exc: NoSuchJobError) -> tuple[str, int]:
    return "That job no longer exists (finished jobs expire).", 404


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    app = state.app
    app.extensions[EXTENSION] = build_dashboard(
        app.config["REDIS_URL"], app.extensions["helpdesk.redis"]
    )


@bp.before_request
def _operators_only() -> None:
    if not (current_user.is_authenticated and getattr(current_user, "is_operator", False)):
        abort(404)


@bp.route("/", methods=["GET", "POST"], strict_slashes=False)
def index() -> Response:
    """Show the dashboard's queue overview."""
    return _forward("")


@bp.route("/<path:subpath>", methods=["GET", "POST"])
def page(subpath: str) -> Response:
    """Serve any other dashboard page, JSON feed, asset or action (operators only)."""
    return _forward(subpath)


def _forward(subpath: str) -> Response:
    dashboard: Flask = current_app.extensions[EXTENSION]
    environ: dict[str, Any] = dict(request.environ)
    environ["SCRIPT_NAME"] = request.script_root + PREFIX
    environ["PATH_INFO"] = "/" + subpath
    try:
        rule = _match(dashboard, environ)
    except RequestRedirect as exc:  # e.g. /ops/rq/0 → /ops/rq/0/
        return redirect(exc.new_url, exc.code)
    if request.method == "POST":
        csrf.protect()
    elif "POST" in (rule.methods or ()):
        abort(405, valid_methods=["POST"])  # a state change is never a GET
    response: Response = current_app.response_class.from_app(
        dashboard.wsgi_app, environ, buffered=True
    )
    response.headers["Content-Security-Policy"] = RQ_DASHBOARD_CSP
    response.headers["Cache-Control"] = "no-store"
    response.set_cookie(
        CSRF_COOKIE,
        generate_csrf(),
        path=PREFIX,
        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")),
        httponly=False,  # rq-dashboard's JavaScript reads it
        samesite="Strict",
    )
    return response


def _match(dashboard: Flask, environ: dict[str, Any]) -> Rule:
    """Return the dashboard rule for this request (404 and 405 raised as usual)."""
    adapter = dashboard.url_map.bind_to_environ(environ)
    try:
        rule, _args = adapter.match(return_rule=True)
    except NotFound:
        abort(404)
    return rule
