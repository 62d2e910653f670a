"""Admin page: the org's inbound email and what became of each message (failed first)."""

from __future__ import annotations

from flask import current_app
from werkzeug.wrappers import Response

from helpdesk.blueprints.admin.base import admin, bp, page_context
from helpdesk.db import get_session, utcnow
from helpdesk.htmx import render
from helpdesk.services import inbound


@bp.get("/inbound")
def inbound_messages(org_slug: str) -> Response:
    session, member = get_session(), admin()
    ctx = page_context(
        "inbound",
        rows=inbound.list_for_org(session, member),
        counts=inbound.status_counts(session, member),
        address=str(current_app.config["REPLY_ADDRESS"]).replace("{token}", member.org.slug),
        now=utcnow(),
    )
    return render("admin/inbound.html", **ctx)
