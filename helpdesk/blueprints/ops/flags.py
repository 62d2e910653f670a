"""/ops/flags: site operators see and flip the feature flags (everyone else gets 404).

The gate is /ops/rq's (`User.is_operator`, else 404), and it runs before the CSRF check
(the blueprint is exempt and the view calls `csrf.protect()` itself), so a stranger's POST
gets the same 404 as a GET and cannot learn that the page exists. A flip is one
`flags.set_flag` call: audited, committed, seen by this process at once and by every other
process within FLAG_CACHE_SECONDS. Plain forms get a 303 back to the page; HTMX gets the
table and a toast.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from helpdesk.blueprints.ops.rq import _operators_only as operators_only
from helpdesk.db import get_session
from helpdesk.extensions import csrf
from helpdesk.htmx import is_htmx, render, trigger
from helpdesk.services import flags
from helpdesk.services.errors import ValidationError

bp = Blueprint("ops_flags", __name__, url_prefix="/ops/flags")
csrf.exempt(bp)  # checked in the view instead, after the operator check (404 first)
bp.before_request(operators_only)


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(status: int = 200, **extra: Any) -> Response:
    config = current_app.config
    switches = {f.name: f.env_switch for f in flags.FLAGS.values() if f.env_switch}
    ctx: dict[str, Any] = {
        "flags": flags.list_flags(get_session()),
        "env_off": {name: not config[switch] for name, switch in switches.items()},
        "cache_seconds": config.get("FLAG_CACHE_SECONDS", flags.DEFAULT_CACHE_SECONDS),
        "errors": {},
        "typed": {},
        **extra,
    }
    return render("ops/flags.html", block="flags", status=status, **ctx)


@bp.get("", strict_slashes=False)
def index() -> Response:
    """List every flag with its state, who changed it when, and why."""
    return _page()


# GET is routed too, so that it reaches the operator check: a stranger gets 404, not 405.
@bp.route("/<name>", methods=["GET", "POST"])
def set_flag(name: str) -> Response:
    """Turn one flag on or off (form fields: state=on|off, reason)."""
    if request.method != "POST":
        abort(405, valid_methods=["POST"])  # a state change is never a GET
    csrf.protect()
    if name not in flags.FLAGS:
        abort(404)
    reason = request.form.get("reason", "")
    try:
        enabled = flags.parse_state(request.form.get("state", ""))
        changed = flags.set_flag(get_session(), name, enabled, current_user.id, reason)
    except ValidationError as exc:
        get_session().rollback()
        return _page(422, errors={name: exc.errors}, typed={name: reason})
    if not is_htmx():
        return redirect(url_for("ops_flags.index"), code=303)
    state = "on" if enabled else "off"
    toast = f"{name} is now {state}" if changed else f"{name} was already {state} (noted)"
    return trigger(_page(), toast=toast)
