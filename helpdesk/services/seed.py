"""Demo data for development and the production one-time bootstrap."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from helpdesk.models import (
    BusinessCalendar,
    Channel,
    Membership,
    Organization,
    Priority,
    Role,
    SlaPolicy,
    Status,
)
from helpdesk.services import orgs, tickets
from helpdesk.services.passwords import hash_password, password_problem
from helpdesk.tenancy import tenant_scope

DEMO_ORGS = (("demo", "Demo Support"), ("acme", "Acme Corp"))
DEMO_TICKETS_PER_ORG = 50

SUBJECTS = [
    "Cannot log in after password reset", "Invoice shows the wrong VAT number",
    "Export to CSV times out", "Feature request: dark mode", "Two-factor codes not arriving",
    "Printer on the 3rd floor jams", "Refund for duplicate charge", "API returns 502 at night",
    "How do I add a teammate?", "Mobile app crashes on start", "Data import stuck at 90%",
    "Change the billing contact", "Webhook deliveries delayed", "SSO login loops back",
]  # fmt: skip
BODIES = [
    "Hi team,\n\nsince this morning **nothing works** when I try this. Steps:\n\n1. open the app\n"
    "2. click *Save*\n\nThanks!",
    "Hello, could you have a look? It started after the last update. `error 0x1f` shows up.",
    "We need this fixed before Friday's audit. See https://example.com/report for details.",
]
REPLIES = [
    "Thanks for reaching out — we're looking into it.",
    "Could you send a screenshot of the error?",
    "This is fixed now; please confirm on your side.",
]
OFFICE_HOURS = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
# (priority, first response, resolution, on office hours?, warnings); low has no SLA.
DEMO_POLICIES = (
    ("urgent", 30, 240, False, [75, 90]),
    ("high", 60, 480, False, [75]),
    ("normal", 240, 2400, True, [75, 90]),
)
NOTES = ["Looks like the same bug as last week; escalating.", "Customer is on the old plan."]


@dataclass
class SeedResult:
    created_orgs: list[str] = field(default_factory=list)
    skipped_orgs: list[str] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


def seed_demo(session: Session, password: str, rng: random.Random | None = None) -> SeedResult:
    """Create the demo orgs, users and tickets; orgs that exist are left as they are."""
    problem = password_problem(password)
    if problem:
        raise ValueError(f"demo password: {problem}")
    rng = rng or random.Random(42)  # noqa: S311 - demo content, not security
    password_hash = hash_password(password)
    result = SeedResult()
    for slug, name in DEMO_ORGS:
        result.logins += [f"{role.value}@{slug}.test" for role in Role]
        if orgs.find_org(session, slug) is not None:
            result.skipped_orgs.append(slug)
            continue
        org = orgs.create_org(session, slug, name)
        members = {}
        for role in Role:
            user = orgs.ensure_user(session, f"{role.value}@{slug}.test", role.value.title())
            user.password_hash = password_hash
            members[role] = orgs.ensure_member(session, org, user, role)
        if slug == DEMO_ORGS[0][0]:
            members[Role.ADMIN].user.is_operator = True  # sees /ops/rq in development
        session.commit()
        with tenant_scope(session, org.id):
            _demo_policies(session)
            _demo_tickets(session, org, members, rng)
        result.created_orgs.append(slug)
    return result


def _demo_policies(session: Session) -> None:
    calendar = BusinessCalendar(
        name="Office hours", timezone="Europe/Berlin", hours=OFFICE_HOURS, holidays=[]
    )
    session.add(calendar)
    session.flush()
    for priority, first, resolution, office, warnings in DEMO_POLICIES:
        session.add(
            SlaPolicy(
                priority=priority,
                first_response_minutes=first,
                resolution_minutes=resolution,
                calendar_id=calendar.id if office else None,
                warn_at_percent=warnings,
            )
        )
    session.commit()


def _demo_tickets(
    session: Session, org: Organization, members: dict[Role, Membership], rng: random.Random
) -> None:
    agent, admin, requester = members[Role.AGENT], members[Role.ADMIN], members[Role.REQUESTER]
    customers = [requester.user.email] + [f"customer{i}@example.test" for i in range(1, 9)]
    for i in range(DEMO_TICKETS_PER_ORG):
        data = tickets.NewTicket(
            subject=rng.choice(SUBJECTS),
            body=rng.choice(BODIES),
            priority=rng.choice(list(Priority)).value,
            requester_email=customers[i % len(customers)],
        )
        ticket = tickets.open_ticket(session, org, agent, data, Channel.WEB)
        for _ in range(rng.randint(0, 3)):
            internal = rng.random() < 0.3
            text = rng.choice(NOTES if internal else REPLIES)
            tickets.add_comment(session, rng.choice([agent, admin]), ticket.number, text, internal)
        status = rng.choice(list(Status)).value
        assignee = rng.choice([agent.user.email, admin.user.email, ""])
        tickets.update_fields(
            session, agent, ticket.number, {"status": status, "assignee_email": assignee}
        )


@dataclass
class Bootstrap:
    org: Organization
    admin_email: str
    password: str


def bootstrap(session: Session, slug: str, name: str, admin_email: str) -> Bootstrap:
    """Create the first org and its admin with a random password (production, once)."""
    org = orgs.create_org(session, slug, name)
    user = orgs.ensure_user(session, admin_email)
    password = secrets.token_urlsafe(18)
    user.password_hash = hash_password(password)
    orgs.ensure_member(session, org, user, Role.ADMIN)
    session.commit()
    return Bootstrap(org, user.email, password)
