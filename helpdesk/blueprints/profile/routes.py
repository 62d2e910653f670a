"""The user's profile in an org: personal API tokens, password, and sessions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user, login_user
from werkzeug.wrappers import Response

from helpdesk.blueprints import gate
from helpdesk.db import get_session
from helpdesk.htmx import render
from helpdesk.services import api_tokens
from helpdesk.services import auth as auth_service
from helpdesk.services.errors import ValidationError

bp = Blueprint("profile", __name__, url_prefix="/o/<org_slug>/profile")
gate.install(bp)
NOTICE = "notice"


def _page(status: int = 200, **extra: Any) -> Response:
    member = gate.current_member()
    ctx: dict[str, Any] = {
        "org": gate.current_org(),
        "member": member,
        "tokens": api_tokens.list_tokens(get_session(), member),
        "new_token": None,
        "errors": {},
        "password_errors": {},
        "name": "",
        **extra,
    }
    return render("profile/show.html", status=status, **ctx)


@bp.get("")
def show(org_slug: str) -> Response:
    return _page()


@bp.post("/tokens")
def create_token(org_slug: str) -> Response:
    name = request.form.get("name", "")
    try:
        _token, plaintext = api_tokens.create_token(get_session(), gate.current_member(), name)
    except ValidationError as exc:
        return _page(422, errors=exc.errors, name=name)
    # Shown once, in this response only; never stored in plaintext or put in a URL.
    return _page(201, new_token=plaintext)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(org_slug: str, token_id: int) -> Response:
    api_tokens.revoke_token(get_session(), gate.current_member(), token_id)
    return redirect(url_for("profile.show", org_slug=org_slug), code=303)


@bp.post("/password")  # rate limit: helpdesk/ratelimits.py (per user, fail closed)
def change_password(org_slug: str) -> Response:
    form = request.form
    try:
        auth_service.change_password(get_session(), current_user, form.get("current_password", ""),
                                     form.get("new_password", ""),
                                     form.get("confirm_password", ""))  # fmt: skip
    except ValidationError as exc:
        return _page(422, password_errors=exc.errors)
    # The session version moved on, ending every other session; re-issue this one's identity
    # so the user stays logged in here (the CSRF token is kept: forms in other tabs still work).
    login_user(current_user._get_current_object())
    flash("Your password was changed. Every other session was logged out.", NOTICE)
    return redirect(url_for("profile.show", org_slug=org_slug), code=303)
