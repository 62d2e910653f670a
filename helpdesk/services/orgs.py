"""Organizations, memberships and the people in them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, contains_eager

from helpdesk.models import Membership, Organization, Role, User
from helpdesk.services import audit
from helpdesk.services.errors import ValidationError
from helpdesk.services.validation import normalize_email, one_line
from helpdesk.tenancy import set_tenant, tenant_scope, unscoped

NAME_MAX = 120
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def find_org(session: Session, slug: str) -> Organization | None:
    """Return the org with this slug, or None."""
    if not SLUG_RE.match(slug):
        return None
    return session.scalar(select(Organization).where(Organization.slug == slug))


def enter_org(session: Session, slug: str, user_id: int) -> Membership | None:
    """The tenant gate: scope the session to the org if the user is a member, else None."""
    return enter_membership(session, membership_by_slug(session, slug, user_id))


# Built once: every org page runs it (the user loader), and building it — the join, the
# eager-load option and their cache key — cost as much as sending it (decision 0012).
_MEMBERSHIP_BY_SLUG = (
    select(Membership)
    .join(Membership.org)
    .options(contains_eager(Membership.org))
    .where(Organization.slug == bindparam("slug"), Membership.user_id == bindparam("user_id"))
)


def membership_by_slug(session: Session, slug: str, user_id: int) -> Membership | None:
    """The user's membership in the org named by `slug`, with its org and user: one query.

    Deliberately unscoped: the slug is what picks the org, so no tenant can be set yet; the
    result is pinned to that one org and user by the WHERE clause. Nothing is scoped until
    `enter_membership` accepts it.
    """
    if not SLUG_RE.match(slug):
        return None
    with unscoped(session):
        found: Membership | None = session.scalar(
            _MEMBERSHIP_BY_SLUG, {"slug": slug, "user_id": user_id}
        )
        return found


def enter_membership(session: Session, member: Membership | None) -> Membership | None:
    """Scope the session to the member's org; None (and no scope) for no or inactive members."""
    if member is None or not member.user.active:
        return None
    set_tenant(session, member.org_id)
    return member


def find_membership(session: Session, org_id: int, user_id: int) -> Membership | None:
    """Return the user's membership in the org (the caller has entered that org's scope)."""
    return session.scalar(
        select(Membership).where(Membership.org_id == org_id, Membership.user_id == user_id)
    )


def user_orgs(session: Session, user: User) -> list[tuple[Organization, str]]:
    """List (org, role) for every org the user belongs to — a deliberate cross-org read."""
    with unscoped(session):
        rows = session.execute(
            select(Organization, Membership.role)
            .join(Membership, Membership.org_id == Organization.id)
            .where(Membership.user_id == user.id)
            .order_by(Organization.name)
        ).all()
    return [(org, role) for org, role in rows]


def create_org(session: Session, slug: str, name: str) -> Organization:
    """Create an org; refuse a taken or malformed slug."""
    if not SLUG_RE.match(slug):
        raise ValidationError({"slug": "use 1-63 lower-case letters, digits and dashes"})
    name = one_line(name)
    if not name or len(name) > 200:
        raise ValidationError({"name": "give a name of 1-200 characters"})
    if find_org(session, slug) is not None:
        raise ValidationError({"slug": f"an organization '{slug}' already exists"})
    org = Organization(slug=slug, name=name)
    session.add(org)
    session.flush()
    return org


def find_user(session: Session, email: str) -> User | None:
    """Return the user with this email, or None."""
    address = normalize_email(email)
    if address is None:
        return None
    return session.scalar(select(User).where(User.email == address))


def ensure_user(session: Session, email: str, name: str = "") -> User:
    """Return the user with this email, creating a password-less one if new."""
    address = normalize_email(email)
    if address is None:
        raise ValidationError({"email": "enter a valid email address"})
    name = one_line(name)
    if len(name) > NAME_MAX:
        raise ValidationError({"name": f"keep the name under {NAME_MAX} characters"})
    user = find_user(session, address)
    if user is None:
        user = User(email=address, name=name)
        session.add(user)
        session.flush()
    return user


def ensure_member(
    session: Session, org: Organization, user: User, role: Role, actor_id: int | None = None
) -> Membership:
    """Return the user's membership in org, adding it with `role` (audited) if missing."""
    with tenant_scope(session, org.id):
        member = find_membership(session, org.id, user.id)
        if member is None:
            member = Membership(org_id=org.id, user_id=user.id, role=role.value)
            session.add(member)
            session.flush()
            audit.record(session, org.id, "membership.created", actor_id=actor_id,
                         target_type="membership", target_id=member.id,
                         data={"user_id": user.id, "role": role.value})  # fmt: skip
    return member


def staff_member_by_email(session: Session, email: str) -> Membership | None:
    """Return the admin/agent membership for this email in the current org."""
    address = normalize_email(email)
    if address is None:
        return None
    return session.scalar(
        select(Membership)
        .join(User, User.id == Membership.user_id)
        .where(User.email == address, Membership.role.in_([Role.ADMIN.value, Role.AGENT.value]))
    )


@dataclass(frozen=True, slots=True)
class StaffMember:
    """An agent or admin as a picker lists them (plain values: a page lists all of them)."""

    user_id: int
    email: str
    display_name: str


def staff_members(session: Session) -> list[StaffMember]:
    """Agents and admins of the current org, by name."""
    rows = session.execute(
        select(Membership.user_id, User.email, User.name)
        .join(User, User.id == Membership.user_id)
        .where(Membership.role.in_([Role.ADMIN.value, Role.AGENT.value]))
        .order_by(User.name, User.email)
    )
    return [StaffMember(uid, email, name or email.split("@", 1)[0]) for uid, email, name in rows]


def display_names(session: Session, marks: Sequence[Any]) -> list[tuple[str, str]]:
    """(name, mode) for presence marks, in their order, with one query."""
    ids = [m.user_id for m in marks]
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids else {}
    return [(users[m.user_id].display_name, m.mode) for m in marks if m.user_id in users]
