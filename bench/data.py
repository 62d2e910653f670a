"""Benchmark data: two orgs of tickets, comments and people, loaded with COPY."""

from __future__ import annotations

import importlib.util
import random
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config

from helpdesk import embedded
from helpdesk.rendering import render_markdown
from helpdesk.services.passwords import hash_password
from tests.conftest_services import recreate_database

ROOT = Path(__file__).resolve().parent.parent

PASSWORD = "bench-password-not-secret"  # noqa: S105 - throwaway benchmark database
TWO_YEARS = 730 * 86400
STATUSES = ("new", "open", "pending", "on_hold", "solved", "closed")
STATUS_WEIGHTS = (10, 25, 10, 5, 20, 30)
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_WEIGHTS = (20, 50, 20, 10)
TAGS = ("billing", "bug", "vip", "sso", "mobile", "export", "refund", "api")
WORDS = ("login", "invoice", "export", "report", "password", "printer", "webhook", "billing")
# 5,000 made-up product codes: each names about N/5,000 tickets (a rare search term).
RARE_WORDS = tuple(
    f"{a}{b}{c}x" for a in "bdfgklmnprstvz" for b in "aeiou" for c in "bdgklmnprstvz"
)[:5000]
PROBLEMS = ("fails", "is slow", "shows an error", "times out", "looks wrong", "needs a change")
BODIES = (
    "Hi team,\n\nsince this morning **nothing works** when I try to save:\n\n1. open the app\n"
    "2. click *Save*\n3. wait\n\nThanks!",
    "Could you have a look? It started after the last update and `error 0x1f` shows up.",
    "We need this fixed before Friday. See https://example.com/report for the details.",
    "Thanks for reaching out - we are looking into it and will update you today.",
    "| step | result |\n|---|---|\n| export | timeout |\n| retry | ok |\n\n> quoted mail",
    "Fixed on our side:\n\n```\nretry --all\n```\n\nPlease confirm it works for you.",
)
SIZES = {"bench": (20, 2000), "other": (5, 200)}  # agents, requesters (plus one admin)
TICKET_COPY = (
    "COPY tickets (id, org_id, number, subject, status, priority, requester_id, assignee_id,"
    " tags, created_at, updated_at) FROM STDIN"
)
COMMENT_COPY = (
    "COPY comments (org_id, ticket_id, author_id, body_md, body_html, internal, channel,"
    " created_at) FROM STDIN"
)


def _search_backfill() -> str:
    """The search-vector backfill of migration 0002, so bench rows match what the app writes."""
    path = ROOT / "migrations" / "versions" / "0002_ticket_full_text_search.py"
    spec = importlib.util.spec_from_file_location("search_migration", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.BACKFILL)


FINISH_SQL = [
    *(
        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"  # noqa: S608
        for t in ("organizations", "users", "memberships", "tickets")
    ),
    "UPDATE organizations o SET ticket_seq ="
    " (SELECT coalesce(max(number), 0) FROM tickets t WHERE t.org_id = o.id)",
    _search_backfill(),
]


@dataclass
class Org:
    id: int
    slug: str
    tickets: int
    staff: list[int] = field(default_factory=list)  # the admin first, then the agents
    requesters: list[int] = field(default_factory=list)


def prepare_database(url: str) -> None:
    """Drop and recreate the bench database, then migrate it to head."""
    if "bench" not in embedded.database_name(url):
        raise SystemExit("refusing: the database name must contain 'bench' (it is dropped)")
    recreate_database(url)
    migrate(url)


def migrate(url: str) -> None:
    """Bring the bench database to the code's migration head."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def people(org_list: list[Org], pw_hash: str, now: datetime) -> tuple[list[Any], list[Any]]:
    """Rows for users and memberships; fills each org's staff and requester ids."""
    users: list[tuple[Any, ...]] = []
    members: list[tuple[Any, ...]] = []
    for org in org_list:
        agents, requesters = SIZES[org.slug]
        for role, count in (("admin", 1), ("agent", agents), ("requester", requesters)):
            for i in range(1, count + 1):
                uid = len(users) + 1
                secret = None if role == "requester" else pw_hash
                users.append((uid, f"{role}{i}@{org.slug}.test", f"{role} {i}", secret, now))
                members.append((len(members) + 1, org.id, uid, role, now))
                (org.requesters if role == "requester" else org.staff).append(uid)
    return users, members


def ticket_rows(org: Org, first_id: int, rng: random.Random, now: datetime) -> list[Any]:
    """Tickets numbered in creation order, spread over two years."""
    starts = sorted(now - timedelta(seconds=rng.uniform(0, TWO_YEARS)) for _ in range(org.tickets))
    rows = []
    for number, created in enumerate(starts, 1):
        status = rng.choices(STATUSES, STATUS_WEIGHTS)[0]
        assignee = None if status == "new" or rng.random() < 0.1 else rng.choice(org.staff[1:])
        subject = (
            f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {rng.choice(PROBLEMS)}"
            f" ({RARE_WORDS[rng.randrange(len(RARE_WORDS))]})"
        )
        age = (now - created).total_seconds()  # never clamp to now: no pile of equal stamps
        updated = created + timedelta(seconds=rng.uniform(0, min(age, 30 * 86400)))
        rows.append((
            first_id + number - 1, org.id, number, subject, status,
            rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0], rng.choice(org.requesters),
            assignee, rng.sample(TAGS, rng.randint(0, 3)), created, updated,
        ))  # fmt: skip
    return rows


def comment_rows(
    tickets: list[Any], org: Org, per_ticket: int, bodies: list[tuple[str, str]], rng: random.Random
) -> Iterator[tuple[Any, ...]]:
    """Requester and staff turns between each ticket's created_at and updated_at."""
    for tid, _, _, _, _, _, requester, assignee, _, created, updated in tickets:
        step = (updated - created) / max(per_ticket - 1, 1)
        for k in range(per_ticket):
            staff = k % 2 == 1
            author = (assignee or rng.choice(org.staff[1:])) if staff else requester
            internal = staff and rng.random() < 0.15
            channel = "web" if staff else rng.choice(("web", "email"))
            md, body_html = rng.choice(bodies)
            yield (org.id, tid, author, md, body_html, internal, channel, created + step * k)


def copy_rows(conn: psycopg.Connection, statement: str, rows: Iterable[tuple[Any, ...]]) -> int:
    count = 0
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def load(url: str, n: int, per_ticket: int, seed: int) -> dict[str, Any]:
    """Fill the migrated database; returns row counts and timings."""
    rng, now = random.Random(seed), datetime.now(UTC)  # noqa: S311 - synthetic data
    bodies = [(md, str(render_markdown(md))) for md in BODIES]
    org_list = [Org(1, "bench", n), Org(2, "other", max(n // 10, 1))]
    users, members = people(org_list, hash_password(PASSWORD), now)
    started, counts = time.perf_counter(), {"users": len(users), "tickets": 0, "comments": 0}
    with psycopg.connect(embedded.libpq_url(url)) as conn:
        copy_rows(conn, "COPY organizations (id, slug, name, created_at) FROM STDIN",
                  [(o.id, o.slug, o.slug.title(), now) for o in org_list])  # fmt: skip
        copy_rows(conn, "COPY users (id, email, name, password_hash, created_at) FROM STDIN", users)
        copy_rows(conn, "COPY memberships (id, org_id, user_id, role, created_at) FROM STDIN",
                  members)  # fmt: skip
        for org in org_list:
            tickets = ticket_rows(org, counts["tickets"] + 1, rng, now)
            counts["tickets"] += copy_rows(conn, TICKET_COPY, tickets)
            rows = comment_rows(tickets, org, per_ticket, bodies, rng)
            counts["comments"] += copy_rows(conn, COMMENT_COPY, rows)
        for statement in FINISH_SQL:
            conn.execute(statement)
        conn.commit()
        copied = time.perf_counter()
        conn.execute("ANALYZE")
        conn.commit()
    done = time.perf_counter()
    return {**counts, "copy_s": round(copied - started, 1), "analyze_s": round(done - copied, 1)}
