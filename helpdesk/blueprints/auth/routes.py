"""Log in, log out (here or everywhere), and the landing page."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from helpdesk.blueprints.urls import safe_local_path
from helpdesk.db import get_session
from helpdesk.services import auth as auth_service
from helpdesk.services.orgs import user_orgs

bp = Blueprint("auth", __name__)
NOTICE = "notice"  # flash category the login page shows (flask-login's own messages are not)


@bp.get("/")
def home() -> Response | str:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    memberships = user_orgs(get_session(), current_user)
    if len(memberships) == 1:
        return redirect(url_for("tickets.index", org_slug=memberships[0][0].slug))
    return render_template("home.html", memberships=memberships)


@bp.route("/login", methods=["GET", "POST"])  # rate limits: helpdesk/ratelimits.py
def login() -> Response | tuple[str, int] | str:
    next_url = safe_local_path(request.values.get("next"))
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(next_url or url_for("auth.home"))
        return render_template("auth/login.html", next=next_url, error=None, email="")
    email = request.form.get("email", "")
    user = auth_service.authenticate(get_session(), email, request.form.get("password", ""))
    if user is None:
        error = "That email and password do not match an account."
        html = render_template("auth/login.html", next=next_url, error=error, email=email)
        return html, 401
    session.clear()  # a fresh session on login: nothing from before survives (no fixation)
    login_user(user)
    return redirect(next_url or url_for("auth.home"), code=303)


@bp.post("/logout")
@login_required
def logout() -> Response:
    auth_service.log_out(get_session(), current_user)  # copied cookies die too
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"), code=303)


@bp.post("/logout/everywhere")  # the button is on the profile page
@login_required
def logout_everywhere() -> Response:
    auth_service.revoke_sessions(get_session(), current_user, source="self")
    logout_user()
    session.clear()
    flash("You are logged out everywhere: every browser and device must log in again.", NOTICE)
    return redirect(url_for("auth.login"), code=303)
