"""Bearer-token authentication and the org gate for the API.

Why: the API accepts `Authorization: Bearer <token>` and nothing else — never the session
cookie — so a browser cannot be tricked into an authenticated call (that is why the
blueprint is CSRF-exempt). A token belongs to one user in one org. Any other org's slug
answers 404 exactly like a slug that does not exist, even when the token's user is also a
member there, so a token reveals nothing about other tenants.
"""

from __future__ import annotations

import logging
import re

from flask import g, request

from helpdesk.blueprints.api.problems import ApiProblem
from helpdesk.db import get_session
from helpdesk.models import ApiToken, Membership, Organization
from helpdesk.services import api_tokens, orgs

log = logging.getLogger(__name__)
PUBLIC_ENDPOINTS = frozenset({"api.openapi_document"})
CHALLENGE = 'Bearer realm="helpdesk"'
_BEARER_RE = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)

MISSING = (
    "Send your API token in the Authorization header as 'Bearer <token>'. "
    "Create a token on your profile page in the web app."
)
MALFORMED = "The Authorization header must be exactly 'Bearer <token>'."
INVALID = (
    "This API token is not valid: it is mistyped, revoked or expired. "
    "Create a new token on your profile page in the web app."
)
INACTIVE = "The account that owns this token is deactivated. Ask an admin of your organization."
NOT_FOUND = (
    "There is nothing here, or you do not have access to it. "
    "An API token works only with the organization it was created in."
)


def _route() -> str | None:
    return request.url_rule.rule if request.url_rule else None  # never the raw path


def _unauthorized(detail: str, error: str | None = "invalid_token") -> ApiProblem:
    reason = "missing" if error is None else error
    log.info("auth.token_rejected", extra={"event": "auth.token_rejected", "route": _route(),
                                           "reason": reason})  # fmt: skip
    challenge = CHALLENGE if error is None else f'{CHALLENGE}, error="{error}"'
    return ApiProblem(401, detail, headers={"WWW-Authenticate": challenge})


def _bearer_token() -> str:
    header = request.headers.get("Authorization")
    if header is None or not header.strip():
        raise _unauthorized(MISSING, error=None)
    match = _BEARER_RE.match(header)
    if match is None:
        raise _unauthorized(MALFORMED, error="invalid_request")
    return match.group(1)


def authenticate() -> None:
    """before_request: resolve the bearer token, then the org in the URL (if any)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    session = get_session()
    token = api_tokens.resolve_token(session, _bearer_token())
    if token is None:
        raise _unauthorized(INVALID)
    if not token.user.active:
        raise _unauthorized(INACTIVE)
    api_tokens.touch(session, token)
    g.api_token = token
    slug = (request.view_args or {}).get("org_slug")
    if slug is not None:
        _enter(token, slug)


def _enter(token: ApiToken, slug: str) -> None:
    member = orgs.enter_org(get_session(), slug, token.user_id)
    if member is None or member.org_id != token.org_id:
        log.info("tenancy.denied", extra={"event": "tenancy.denied", "route": _route(),
                                          "user_id": token.user_id})  # fmt: skip
        raise ApiProblem(404, NOT_FOUND)
    g.member = member
    g.org = member.org


def current_member() -> Membership:
    """The token owner's membership in the org of this request."""
    member: Membership = g.member
    return member


def current_org() -> Organization:
    org: Organization = g.org
    return org
