"""Forgot your password: ask for a link (/reset), then use it (/reset/<token>).

Registered on the auth blueprint (imported by its package). Asking answers with the same
redirect whether or not the address has an account; the link page changes nothing on GET
(mail scanners open links) and carries `Referrer-Policy: no-referrer` (security_headers).
Unknown, used and expired links all get one page, 404 "no longer valid": which of the three
it was is nobody's business. Rate limits: helpdesk/ratelimits.py (fail closed).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import logout_user
from werkzeug.wrappers import Response

from helpdesk.blueprints.auth.routes import NOTICE, bp
from helpdesk.db import get_session
from helpdesk.services import password_resets
from helpdesk.services.errors import ValidationError


def _forgot_page(status: int = 200, **ctx: Any) -> tuple[str, int]:
    ctx.setdefault("email", "")
    ctx.setdefault("errors", {})
    minutes = password_resets.current_minutes()
    return render_template("auth/forgot.html", minutes=minutes, **ctx), status


@bp.route("/reset", methods=["GET", "POST"])
def forgot_password() -> Response | tuple[str, int]:
    if request.method == "GET":
        return _forgot_page(sent=request.args.get("sent") == "1")
    email = request.form.get("email", "")
    try:
        password_resets.request_reset(get_session(), email)
    except ValidationError as exc:
        return _forgot_page(422, sent=False, email=email, errors=exc.errors)
    return redirect(url_for("auth.forgot_password", sent=1), code=303)


def _reset_page(token: str | None, status: int = 200, **ctx: Any) -> tuple[str, int]:
    ctx.setdefault("errors", {})
    return render_template("auth/reset.html", token=token, **ctx), status


def _invalid() -> tuple[str, int]:
    return _reset_page(None, 404)


@bp.route("/reset/<path:token>", methods=["GET", "POST"])  # any shape gets the clear page
def reset_password(token: str) -> Response | tuple[str, int]:
    if request.method == "GET":
        try:
            password_resets.check_reset(get_session(), token)
        except password_resets.InvalidReset:
            return _invalid()
        return _reset_page(token)
    new = request.form.get("new_password", "")
    confirm = request.form.get("confirm_password", "")
    try:
        password_resets.reset_password(get_session(), token, new, confirm)
    except password_resets.InvalidReset:
        return _invalid()
    except ValidationError as exc:
        return _reset_page(token, 422, errors=exc.errors)
    logout_user()  # whoever was logged in here, the account's sessions have all ended
    session.clear()
    flash("Your password was changed and every session ended. Log in with the new one.", NOTICE)
    return redirect(url_for("auth.login"), code=303)
