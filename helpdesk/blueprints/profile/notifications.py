"""The user's notification emails in an org: which events, and immediately or as a digest.

Registered on the profile blueprint (imported by its package). Requesters see a short
explanation instead of the form: they are emailed about their own tickets only.
"""

from __future__ import annotations

from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from helpdesk.blueprints import gate
from helpdesk.blueprints.profile.routes import bp
from helpdesk.db import get_session
from helpdesk.htmx import render
from helpdesk.services import preferences
from helpdesk.services.errors import ValidationError


def _page(status: int = 200, **extra: Any) -> Response:
    member = gate.current_member()
    form: dict[str, Any] | None = extra.pop("form", None)
    if form is None and member.is_staff:
        saved = preferences.get_preferences(get_session(), member)
        form = {"events": list(saved.events), "mode": saved.mode,
                "digest_minutes": str(saved.digest_minutes), "saved": saved.saved,
                "scope": "all" if saved.watch_all else "mine"}  # fmt: skip
    ctx: dict[str, Any] = {
        "org": gate.current_org(),
        "member": member,
        "form": form,
        "errors": {},
        "event_labels": preferences.EVENT_LABELS,
        "mode_labels": preferences.MODE_LABELS,
        "digest_range": (preferences.DIGEST_MIN, preferences.DIGEST_MAX),
        **extra,
    }
    return render("profile/notifications.html", status=status, **ctx)


@bp.get("/notifications")
def notifications(org_slug: str) -> Response:
    return _page()


@bp.post("/notifications")
def save_notifications(org_slug: str) -> Response:
    events = request.form.getlist("events")
    mode = request.form.get("mode", "")
    minutes = request.form.get("digest_minutes", "")
    scope = request.form.get("scope", "mine")
    try:
        preferences.save_preferences(
            get_session(), gate.current_member(), events, mode, minutes, scope
        )
    except ValidationError as exc:
        typed = {"events": events, "mode": mode, "digest_minutes": minutes, "saved": True,
                 "scope": scope}  # fmt: skip
        return _page(422, form=typed, errors=exc.errors)
    return redirect(url_for("profile.notifications", org_slug=org_slug, saved=1), code=303)
