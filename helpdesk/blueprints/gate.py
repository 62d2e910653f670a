"""The web side of the tenant gate for `/o/<org_slug>/…` blueprints.

Resolves the org and the logged-in user's membership once per request, scopes the
database session to that org (see `helpdesk.tenancy`), and answers 404 — not 403 — to
anyone who is not a member, so an org's existence is not revealed.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, g, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from helpdesk.db import get_session
from helpdesk.models import Membership, Organization
from helpdesk.services.orgs import enter_membership, enter_org

log = logging.getLogger(__name__)


def install(bp: Blueprint) -> None:
    """Guard every view of `bp` with the org gate."""
    bp.before_request(_gate)


def _gate() -> Response | None:
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    slug = (request.view_args or {}).get("org_slug", "")
    member = _enter(slug)
    if member is None:
        route = request.url_rule.rule if request.url_rule else None  # never the raw path
        log.info("tenancy.denied", extra={"event": "tenancy.denied", "route": route,
                                          "user_id": current_user.id})  # fmt: skip
        abort(404)
    g.member = member
    g.org = member.org
    return None


def _enter(slug: str) -> Membership | None:
    """Enter the org; the user loader may already have read the membership with the user."""
    preloaded = g.pop("preloaded_member", None)
    if preloaded is not None and preloaded[0] == slug:
        return enter_membership(get_session(), preloaded[1])
    return enter_org(get_session(), slug, current_user.id)


def current_member() -> Membership:
    """The caller's membership in the org of this request."""
    member: Membership = g.member
    return member


def current_org() -> Organization:
    org: Organization = g.org
    return org
