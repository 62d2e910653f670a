"""The COPY part of a load: people and settings first, then every ticket with its rows.

Why it is shaped like this:

* Tickets are created over two years in one global time order (ids follow creation, as in
  a real database) and each org numbers its own tickets in that order.
* Each ticket's rows go to five COPY streams on five connections (tickets, comments,
  ticket events, SLA events, pauses), so PostgreSQL parses rows while Python builds the
  next ones. Comments are held in a heap and written in time order across all tickets,
  so a long conversation's messages are spread over the table as they would be in
  production, not packed next to each other (which would flatter the ticket page).
* Randomness is drawn per block of 10,000 tickets from a seed derived from `--seed`, so a
  load is reproducible for the same options and `--now`, however it is split into
  processes (`--jobs`): each process loads a contiguous range of ticket ids.
"""

from __future__ import annotations

import heapq
import itertools
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from bench import pgcopy, threads, vectors, words
from bench.schema import connect
from bench.shape import SLA_TARGETS, WARN_AT_PERCENT, OrgPlan, people, plan_orgs
from helpdesk.rendering import render_markdown

BLOCK = 10_000
Log = Callable[[str], None]


@dataclass
class Plan:
    """Everything a loading process needs, decided before any ticket row is made."""

    url: str
    seed: int
    now: float
    orgs: list[OrgPlan]
    created: list[float]  # per ticket id - 1, ascending
    org_index: list[int]
    numbers: list[int]
    maker: threads.ThreadMaker


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def body_pool(conn: psycopg.Connection, size: int, rng: random.Random) -> threads.BodyPool:
    """`size` distinct markdown bodies, rendered by the app and parsed by PostgreSQL."""
    texts = list(dict.fromkeys(words.body_text(rng) for _ in range(size)))
    html = [str(render_markdown(t)) for t in texts]
    parsed = vectors.parse_bodies(conn, texts)
    return threads.BodyPool(
        [pgcopy.escape(t) for t in texts], [pgcopy.escape(h) for h in html], parsed
    )


def make_plan(
    url: str,
    tickets: int,
    orgs: int,
    per_ticket: float,
    seed: int,
    now: float,
    password_hash: str,
    pool_size: int,
) -> tuple[Plan, dict[str, int]]:
    """Plan every org and ticket and copy the small tables (orgs, people, policies, views)."""
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducible by design
    plans = plan_orgs(tickets, orgs, rng)
    stamp = pgcopy.ts(now - 2 * 366 * threads.DAY)
    users, members = people(plans, password_hash, stamp, rng)
    with connect(url) as conn:
        pool = body_pool(conn, pool_size, random.Random(f"{seed}/bodies"))  # noqa: S311
        lexemes = vectors.word_lexemes(conn, [*words.CONTENT, *words.RARE_WORDS])
        counts = _copy_small_tables(conn, plans, users, members, stamp)
        conn.commit()
    created = threads.created_times(tickets, now, rng)
    labels = [i for i, org in enumerate(plans) for _ in range(org.tickets)]
    rng.shuffle(labels)
    seen = [0] * len(plans)
    numbers = []
    for label in labels:
        seen[label] += 1
        numbers.append(seen[label])
    maker = threads.ThreadMaker(now, per_ticket, pool, lexemes)
    return Plan(url, seed, now, plans, created, labels, numbers, maker), counts


def _copy_small_tables(
    conn: psycopg.Connection, plans: list[OrgPlan], users: list[Any], members: list[Any], stamp: str
) -> dict[str, int]:
    org_rows = [(o.id, o.slug, o.name, stamp) for o in plans]
    policies = [
        (o.id, priority, fr, res, "{" + ",".join(map(str, WARN_AT_PERCENT)) + "}", stamp)
        for o in plans
        if o.sla
        for priority, (fr, res) in SLA_TARGETS.items()
    ]
    canned: list[tuple[object, ...]] = []
    views: list[tuple[object, ...]] = []
    for org in plans:
        for i in range(15 if org.large else 3):
            title = f"{words.CONTENT[i * 7 % len(words.CONTENT)].title()} answer {i + 1}"
            body = f"Hi {{requester_name}},\n\n{words.body_text(random.Random(i))}"  # noqa: S311
            canned.append((title, title.lower(), body, org.staff[0], stamp, org.id))
        for name, filters in SHARED_VIEWS:
            views.append((None, name, name.lower(), json.dumps(filters), stamp, org.id))
        for agent in org.staff[1:]:
            views.append(
                (
                    agent,
                    "My urgent",
                    "my urgent",
                    json.dumps({"status": "all_open", "assignee": "me", "priority": "urgent"}),
                    stamp,
                    org.id,
                )
            )
    tables = [
        ("organizations (id, slug, name, created_at)", org_rows),
        ("users (id, email, name, password_hash, created_at)", users),
        ("memberships (id, org_id, user_id, role, created_at)", members),
        (
            "sla_policies (org_id, priority, first_response_minutes, resolution_minutes,"
            " warn_at_percent, updated_at)",
            policies,
        ),
        ("canned_replies (title, title_key, body, created_by_id, created_at, org_id)", canned),
        ("saved_views (owner_id, name, name_key, filters, created_at, org_id)", views),
    ]
    counts = {}
    with conn.cursor() as cur:
        for target, rows in tables:
            with cur.copy(f"COPY {target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            counts[target.split()[0]] = len(rows)
    return counts


SHARED_VIEWS = (
    ("Urgent open", {"status": "all_open", "priority": "urgent"}),
    ("VIP", {"status": "all_open", "tag": "vip"}),
    ("Waiting on customer", {"status": "pending"}),
)
STREAMS = (
    ("tickets", threads.TICKET_COLUMNS),
    ("comments", threads.COMMENT_COLUMNS),
    ("ticket_events", threads.EVENT_COLUMNS),
    ("sla_events", threads.SLA_EVENT_COLUMNS),
    ("sla_pauses", threads.PAUSE_COLUMNS),
)


def load_range(plan: Plan, start: int, end: int, log: Log) -> dict[str, int]:
    """Copy tickets with ids start+1..end and all their rows; returns rows per table."""
    conns = [connect(plan.url) for _ in STREAMS]
    try:
        for conn in conns:
            conn.execute("SET session_replication_role = replica")  # no FK triggers
            conn.execute("SET synchronous_commit = off")
        streams = [
            pgcopy.CopyStream(c, t, cols) for c, (t, cols) in zip(conns, STREAMS, strict=True)
        ]
        _stream_tickets(plan, start, end, streams, log)
        for stream in streams:
            stream.close()
        for conn in conns:
            conn.commit()
        return {table: s.rows for (table, _), s in zip(STREAMS, streams, strict=True)}
    finally:
        for conn in conns:
            conn.close()


def _stream_tickets(
    plan: Plan, start: int, end: int, streams: list[pgcopy.CopyStream], log: Log
) -> None:
    tickets, comments, events, sla_events, pauses = streams
    waiting: list[tuple[float, int, str]] = []  # comments not yet due, by time
    order, started = 0, time.perf_counter()
    rng = random.Random()  # noqa: S311 - reseeded per block below
    for index in range(start, end):
        if index == start or index % BLOCK == 0:
            rng.seed(f"{plan.seed}/{index // BLOCK}")
        created = plan.created[index]
        while waiting and waiting[0][0] <= created:
            comments.add(heapq.heappop(waiting)[2])
        org = plan.orgs[plan.org_index[index]]
        made = plan.maker.make(rng, index + 1, org, plan.numbers[index], created)
        tickets.add(made.ticket)
        for when, text in made.comments:
            order += 1
            heapq.heappush(waiting, (when, order, text))
        for text in made.events:
            events.add(text)
        for text in made.sla_events:
            sla_events.add(text)
        if made.pause is not None:
            pauses.add(made.pause)
        done = index + 1 - start
        if done % 100_000 == 0:
            rate = done / (time.perf_counter() - started)
            log(f"  tickets {start + 1:,}..{index + 1:,} copied ({rate:,.0f} tickets/s)")
    while waiting:
        comments.add(heapq.heappop(waiting)[2])


def load_tickets(plan: Plan, jobs: int, log: Log) -> dict[str, int]:
    """Copy every ticket, split into `jobs` processes by id range; returns rows per table."""
    total = len(plan.created)
    if jobs <= 1 or total < 2 * BLOCK:
        return load_range(plan, 0, total, log)
    bounds = [round(total * i / jobs / BLOCK) * BLOCK for i in range(jobs)] + [total]
    context = multiprocessing.get_context("fork")  # children share the plan, copy-on-write
    global _PLAN
    _PLAN = plan
    with context.Pool(jobs) as pool:
        parts = pool.starmap(_load_part, list(itertools.pairwise(bounds)))
    _PLAN = None
    return {table: sum(p[table] for p in parts) for table, _ in STREAMS}


_PLAN: Plan | None = None


def _load_part(start: int, end: int) -> dict[str, int]:
    assert _PLAN is not None
    return load_range(_PLAN, start, end, stderr_log)
