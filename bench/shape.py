"""The shape of generated data: which orgs, how many people, which SLA policies.

Why this shape: peer help desks break on one big tenant, not on many small ones, and a
shared table holding other tenants' rows is what makes a forgotten `org_id` filter slow.
So a few large orgs hold most tickets (60 %, 15 %, 10 %) and many small orgs share the
rest along a Zipf curve; a large org has 50 agents and thousands of requesters.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bench.words import FIRST_NAMES, LAST_NAMES, split_words

LARGE_SHARES = (0.60, 0.15, 0.10)
LARGE_SLUGS = ("acme", "globex", "initech")
LARGE_AGENTS = 50
SMALL_SLUG_WORDS = split_words(
    "alder aster birch cedar clover dahlia ember fern garnet hazel iris juniper kestrel"
    " laurel maple nectar onyx poplar quartz rowan sage tansy umber violet willow yarrow"
)
# Minutes: (first response, resolution) per priority, 24x7, warnings at 75 % and 90 %.
SLA_TARGETS = {
    "urgent": (60, 480),
    "high": (240, 1440),
    "normal": (480, 4320),
    "low": (1440, 10080),
}
WARN_AT_PERCENT = (75, 90)
EMAIL_DOMAIN = "bench.test"  # every generated address ends with it


@dataclass
class OrgPlan:
    """One org to generate: sizes, and (once people are made) its user ids."""

    id: int
    slug: str
    name: str
    tickets: int
    agents: int
    requester_count: int
    sla: bool
    staff: list[int] = field(default_factory=list)  # admin first, then agents
    agent_emails: list[str] = field(default_factory=list)
    requesters: list[int] = field(default_factory=list)

    @property
    def large(self) -> bool:
        return self.slug in LARGE_SLUGS


def ticket_counts(total: int, orgs: int) -> list[int]:
    """Tickets per org: a few large shares, the rest on a Zipf curve; sums to `total`."""
    large = min(len(LARGE_SHARES), orgs, max(1, orgs // 5))
    shares = list(LARGE_SHARES[:large])
    small = orgs - large
    if small:
        rest = 1.0 - sum(shares)
        zipf = [1.0 / (rank + 1) for rank in range(small)]
        shares += [rest * z / sum(zipf) for z in zipf]
    scale = sum(shares)
    exact = [total * s / scale for s in shares]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(orgs), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def plan_orgs(total: int, orgs: int, rng: random.Random) -> list[OrgPlan]:
    """The orgs to generate, largest first."""
    plans = []
    for i, tickets in enumerate(ticket_counts(total, orgs)):
        if i < len(LARGE_SLUGS) and i < max(1, orgs // 5):
            slug, agents = LARGE_SLUGS[i], LARGE_AGENTS
            requesters, sla = min(max(1000, tickets // 8), 150_000), True
        else:
            slug = f"{SMALL_SLUG_WORDS[i % len(SMALL_SLUG_WORDS)]}-{i:03d}"
            agents = min(2 + tickets // 5000, 20)
            requesters, sla = min(max(10, tickets // 5), 20_000), rng.random() < 0.6
        name = slug.split("-")[0].title() + ("" if "-" not in slug else f" {i}")
        plans.append(OrgPlan(i + 1, slug, name, tickets, agents, requesters, sla))
    return plans


def people(
    plans: list[OrgPlan], password_hash: str, now: str, rng: random.Random
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Rows for users (id, email, name, hash, created) and memberships; fills the plans' ids."""
    users: list[tuple[object, ...]] = []
    members: list[tuple[object, ...]] = []
    for org in plans:
        for role, count in (
            ("admin", 1),
            ("agent", org.agents),
            ("requester", org.requester_count),
        ):
            for i in range(1, count + 1):
                uid = len(users) + 1
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                if role == "requester":
                    email = f"{first}.{last}.{i}@customers-{org.slug}.{EMAIL_DOMAIN}".lower()
                    org.requesters.append(uid)
                else:
                    email = f"{role}{i}@{org.slug}.{EMAIL_DOMAIN}"
                    org.staff.append(uid)
                    org.agent_emails.append(email)
                users.append((uid, email, f"{first} {last}", password_hash, now))
                members.append((len(members) + 1, org.id, uid, role, now))
    return users, members
