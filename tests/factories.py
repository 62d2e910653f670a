"""Test data builders. They go through the services, so tests see real rows."""

from __future__ import annotations

import itertools
from functools import cache

from sqlalchemy.orm import Session

from helpdesk.models import Channel, Membership, Organization, Role, User
from helpdesk.services import orgs, tickets
from helpdesk.services.passwords import hash_password
from helpdesk.tenancy import tenant_scope

PASSWORD = "correct horse battery staple"
_seq = itertools.count(1)


@cache
def password_hash() -> str:
    """argon2id costs ~50 ms: hash the shared test password once."""
    return hash_password(PASSWORD)


def make_org(session: Session, slug: str | None = None, name: str | None = None) -> Organization:
    slug = slug or f"org{next(_seq)}"
    org = orgs.create_org(session, slug, name or slug.title())
    session.commit()
    return org


def make_member(
    session: Session,
    org: Organization,
    role: Role = Role.AGENT,
    email: str | None = None,
    password: bool = True,
) -> Membership:
    """A user with a membership in org (the shared test password unless password=False)."""
    email = email or f"{role.value}{next(_seq)}@{org.slug}.test"
    user = orgs.ensure_user(session, email, name=email.split("@")[0].title())
    if password:
        user.password_hash = password_hash()
    member = orgs.ensure_member(session, org, user, role)
    session.commit()
    return member


def make_ticket(
    session: Session,
    org: Organization,
    actor: Membership,
    requester: User | str | None = None,
    subject: str = "Printer on fire",
    body: str = "It is on fire.",
    priority: str = "normal",
):
    """Open a ticket as `actor` (staff) for `requester`."""
    email = requester.email if isinstance(requester, User) else requester
    data = tickets.NewTicket(subject=subject, body=body, priority=priority,
                             requester_email=email or f"req{next(_seq)}@example.test")  # fmt: skip
    with tenant_scope(session, org.id):
        ticket = tickets.open_ticket(session, org, actor, data, Channel.WEB)
    return ticket
