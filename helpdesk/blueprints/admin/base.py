"""The org admin area: one blueprint, behind the org gate and an admin-only check.

Non-members get the gate's 404 (no existence oracle); members who are not admins get a
403 page that says who can help. The services check the role again, so the API and any
future caller are refused the same way.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from werkzeug.wrappers import Response

from helpdesk.blueprints import gate
from helpdesk.errors import error_response
from helpdesk.models import Membership, Role
from helpdesk.services.webhook_http import Network, parse_networks

bp = Blueprint("admin", __name__, url_prefix="/o/<org_slug>/admin")
gate.install(bp)


@bp.before_request
def _admins_only() -> Response | None:
    if gate.current_member().role == Role.ADMIN:
        return None
    return error_response(
        403,
        f"Only admins of {gate.current_org().name} can change SLA policies, business "
        "calendars and webhooks. Ask one of your admins if something here needs changing.",
    )


def admin() -> Membership:
    """The admin making this request."""
    return gate.current_member()


def page_context(section: str, **extra: Any) -> dict[str, Any]:
    """What every admin page needs: org, member (for the nav) and the current section."""
    return {"org": gate.current_org(), "member": gate.current_member(), "section": section,
            "errors": {}, **extra}  # fmt: skip


def allowed_networks() -> tuple[Network, ...]:
    """Networks webhooks may call despite the SSRF guard (development and tests only)."""
    return parse_networks(current_app.config["WEBHOOK_ALLOWED_NETWORKS"])
