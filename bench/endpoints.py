"""What the benchmark requests: the endpoints, and the tickets and words they point at.

One list serves both measurements: wrk drives each endpoint over HTTP, and the in-process
probe (bench/probe.py) sends the same requests once through the Flask test client to
count SQL statements. The paths are chosen from the generated data of the largest org:
typical tickets spread over its history, the long conversations (200+ messages), open
tickets to reply to (a different one per reply) and rare product codes.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field

import psycopg

from bench.threads import HUNDRED, HUNDRED_AT, TAIL_AT, TAIL_EVERY
from bench.words import COMMON_WORD, RARE_WORDS

REPLY_BODY = "Thanks, we are on it.\n\n- checked the logs\n- **fix** is next"


@dataclass(frozen=True)
class Target:
    """The issue's target for an endpoint (ms), None where it sets none."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    req_per_s: float | None = None
    growth: float = 1.5  # allowed p50 ratio largest / smallest scale


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    paths: list[str]
    method: str = "GET"
    htmx: bool = False
    api: bool = False
    form: dict[str, str] = field(default_factory=dict)
    target: Target = field(default_factory=Target)


@dataclass
class Context:
    """The largest org and the tickets the endpoints use."""

    org: str
    org_id: int
    agent_email: str
    agent_id: int
    tickets: int
    typical: list[int]
    long: list[int]
    replies: list[int]
    hundred: list[int] = field(default_factory=list)


def discover(conn: psycopg.Connection, org: str | None = None) -> Context:
    """Find the org (default: the one with most tickets), an agent and the sample tickets."""
    row = conn.execute(
        "SELECT o.id, o.slug, o.ticket_seq FROM organizations o"
        " WHERE %s::text IS NULL OR o.slug = %s ORDER BY o.ticket_seq DESC LIMIT 1",
        (org, org),
    ).fetchone()
    if row is None:
        raise SystemExit(
            f"no organization {org!r} in the database"
            if org
            else "the database has no organizations: generate data first"
        )
    org_id, slug, count = row
    agent = conn.execute(
        "SELECT u.id, u.email FROM memberships m JOIN users u ON u.id = m.user_id"
        " WHERE m.org_id = %s AND m.role = 'agent' ORDER BY m.id LIMIT 1",
        (org_id,),
    ).fetchone()
    if agent is None:
        raise SystemExit(f"organization {slug!r} has no agent to log in as")
    numbers = [1 + j * (count - 1) // 49 for j in range(50)] if count >= 50 else [1]
    typical = [n + 1 if n % TAIL_EVERY in (TAIL_AT, HUNDRED_AT) else n for n in numbers]
    long_rows = conn.execute(
        "SELECT t.number FROM tickets t WHERE t.org_id = %s AND t.number = ANY(%s)"
        " AND (SELECT count(*) FROM comments c WHERE c.ticket_id = t.id) >= 200"
        " ORDER BY t.number",
        (org_id, list(range(TAIL_AT, count + 1, TAIL_EVERY))),
    ).fetchall()
    hundred = conn.execute(  # none in a database generated before this tier existed
        "SELECT t.number FROM tickets t WHERE t.org_id = %s AND t.number = ANY(%s)"
        " AND (SELECT count(*) FROM comments c WHERE c.ticket_id = t.id) = %s"
        " ORDER BY t.number",
        (org_id, list(range(HUNDRED_AT, count + 1, TAIL_EVERY)), HUNDRED),
    ).fetchall()
    replies = [
        r[0]
        for r in conn.execute(
            "SELECT number FROM tickets WHERE org_id = %s AND status IN ('open', 'pending')"
            " ORDER BY updated_at DESC, number DESC LIMIT 4000",
            (org_id,),
        )
    ]
    return Context(
        slug,
        org_id,
        agent[1],
        agent[0],
        count,
        typical,
        [r[0] for r in long_rows],
        replies,
        [r[0] for r in hundred],
    )


def endpoints(ctx: Context, reply_tickets: list[int]) -> list[Endpoint]:
    """Every endpoint the benchmark measures, with the issue's targets."""
    base = f"/o/{ctx.org}/tickets"
    fast = Target(p50_ms=15, p99_ms=60)
    found = [
        Endpoint("list_page", "list (full page)", [base]),
        Endpoint(
            "list_fragment",
            "list (HTMX fragment)",
            [base],
            htmx=True,
            target=Target(p50_ms=15, p99_ms=60, req_per_s=300),
        ),
        Endpoint(
            "view_my_open",
            "view: My open (fragment)",
            [f"{base}?status=all_open&assignee=me"],
            htmx=True,
            target=fast,
        ),
        Endpoint(
            "view_all_open",
            "view: All open (fragment)",
            [f"{base}?status=all_open"],
            htmx=True,
            target=fast,
        ),
        Endpoint(
            "search_common",
            f"search '{COMMON_WORD}' (common)",
            [f"{base}?q={COMMON_WORD}"],
            htmx=True,
            target=Target(p95_ms=100, growth=3.0),
        ),
        Endpoint(
            "search_rare",
            "search product code (rare)",
            [f"{base}?q={w}" for w in RARE_WORDS[:50]],
            htmx=True,
            target=Target(p95_ms=100, growth=3.0),
        ),
        Endpoint(
            "ticket",
            "ticket page (typical)",
            [f"{base}/{n}" for n in ctx.typical],
            target=Target(p50_ms=25),
        ),
    ]
    conversations = [  # none in data generated before the 100-message tier
        ("ticket_100", "ticket page (100 messages)", ctx.hundred, 25),
        ("ticket_long", "ticket page (200+ messages)", ctx.long, 60),
    ]
    for key, label, numbers, p50_ms in conversations:
        if numbers:
            paths = [f"{base}/{n}" for n in numbers]
            found.append(Endpoint(key, label, paths, target=Target(p50_ms=p50_ms)))
    if reply_tickets:
        found.append(
            Endpoint(
                "reply",
                "reply POST (HTMX)",
                [f"{base}/{n}/comments" for n in reply_tickets],
                method="POST",
                htmx=True,
                form={"body": REPLY_BODY, "internal": "0"},
                target=Target(p50_ms=40),
            )
        )
    found.append(Endpoint("api_list", "API list", [f"/api/v1/orgs/{ctx.org}/tickets"], api=True))
    return found


def form_body(form: dict[str, str]) -> str:
    return urllib.parse.urlencode(form)
