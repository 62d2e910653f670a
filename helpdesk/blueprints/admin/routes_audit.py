"""Admin pages: the org's audit log (filters, older pages), a chain check, and the CSV export.

The export is a POST (with CSRF) because it writes: it records `audit.exported` before the
file streams. Its filters travel in the query string, like the page's.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from werkzeug.wrappers import Response

from helpdesk.blueprints.admin.base import admin, bp, page_context
from helpdesk.db import get_session, utcnow
from helpdesk.htmx import render
from helpdesk.services import audit_log
from helpdesk.services.errors import ValidationError


def _page(status: int = 200, block: str | None = None, **extra: Any) -> Response:
    ctx = page_context(
        "audit",
        args={k: request.args.get(k, "") for k in audit_log.FILTER_KEYS},
        actions=audit_log.ACTIONS,
        target_types=audit_log.TARGET_TYPES,
        **extra,
    )
    return render("admin/audit.html", block=block, status=status, **ctx)


def _browse() -> tuple[audit_log.Page | None, dict[str, str]]:
    try:
        return audit_log.browse(get_session(), admin(), request.args), {}
    except ValidationError as exc:
        return None, exc.errors


@bp.get("/audit")
def audit_events(org_slug: str) -> Response:
    page, errors = _browse()
    return _page(422 if errors else 200, page=page, errors=errors)


@bp.post("/audit/verify")
def verify_audit(org_slug: str) -> Response:
    verification = audit_log.verify_org(get_session(), admin())
    page, errors = _browse()
    return _page(
        422 if errors else 200, page=page, errors=errors, verification=verification,
        block="verify",
    )  # fmt: skip


@bp.post("/audit.csv")
def export_audit(org_slug: str) -> Response:
    session, member = get_session(), admin()
    try:
        filters = audit_log.start_export(session, member, request.args)
    except ValidationError as exc:
        return _page(422, page=None, errors=exc.errors)
    name = f"audit-{member.org.slug}-{utcnow():%Y%m%d-%H%M%S}.csv"
    sessions = current_app.extensions["helpdesk.sessionmaker"]
    response = Response(
        audit_log.export_lines(sessions, member.org_id, filters), mimetype="text/csv"
    )
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response
