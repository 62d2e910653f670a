"""The requester's link grants, kept in the signed Flask session cookie.

A grant records "this browser opened a valid link to ticket <org>/<number>", naming the
link by its stored hash (see `access_links.Grant`).
It is not a login: the org gate (`/o/…`) never looks at it, and the links blueprint
re-checks the token behind it on every request (`access_links.check_grant`), so a revoked
or expired link stops working at once even though the cookie still names it.
"""

from __future__ import annotations

from flask import session

from helpdesk.services.access_links import Grant

SESSION_KEY = "link_grants"
MAX_GRANTS = 20  # the cookie stays small: the most recently opened links win


def _stored() -> list[Grant]:
    raw = session.get(SESSION_KEY)
    if not isinstance(raw, list):
        return []
    return [g for g in (Grant.from_dict(item) for item in raw) if g is not None]


def _store(grants: list[Grant]) -> None:
    if grants:
        session[SESSION_KEY] = [g.as_dict() for g in grants[-MAX_GRANTS:]]
    else:
        session.pop(SESSION_KEY, None)


def remember(grant: Grant) -> None:
    """Keep a grant (replacing an older one for the same ticket)."""
    key = (grant.org_slug, grant.number)
    _store([*(g for g in _stored() if (g.org_slug, g.number) != key), grant])


def find(org_slug: str, number: int) -> Grant | None:
    """Return this browser's grant for the ticket at /r/<org_slug>/<number>, if any."""
    for grant in _stored():
        if (grant.org_slug, grant.number) == (org_slug, number):
            return grant
    return None


def forget(grant: Grant) -> None:
    """Drop a grant whose link no longer works."""
    _store([g for g in _stored() if g != grant])
