"""Canned replies: the org's list; staff add them, authors and admins remove them."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from helpdesk.blueprints import gate
from helpdesk.db import get_session
from helpdesk.htmx import render
from helpdesk.services import canned
from helpdesk.services.errors import ValidationError

bp = Blueprint("canned", __name__, url_prefix="/o/<org_slug>/canned")
gate.install(bp)


def _page(status: int = 200, **extra: Any) -> Response:
    member = gate.current_member()  # requesters see an empty page (list_canned)
    ctx: dict[str, Any] = {
        "org": gate.current_org(),
        "member": member,
        "replies": canned.list_canned(get_session(), member),
        "placeholders": canned.PLACEHOLDERS,
        "form": {"title": "", "body": ""},
        "errors": {},
        **extra,
    }
    return render("canned/index.html", status=status, **ctx)


@bp.get("")
def index(org_slug: str) -> Response:
    return _page()


@bp.post("")
def create(org_slug: str) -> Response:
    form = {"title": request.form.get("title", ""), "body": request.form.get("body", "")}
    try:
        canned.create_canned(get_session(), gate.current_member(), form["title"], form["body"])
    except ValidationError as exc:
        return _page(422, form=form, errors=exc.errors)
    return redirect(url_for("canned.index", org_slug=org_slug), code=303)


@bp.post("/<int:canned_id>/delete")
def delete(org_slug: str, canned_id: int) -> Response:
    canned.delete_canned(get_session(), gate.current_member(), canned_id)
    return redirect(url_for("canned.index", org_slug=org_slug), code=303)
