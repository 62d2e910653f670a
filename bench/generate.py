"""Generate a production-shaped help desk: N tickets over two years, loaded with COPY.

    python -m bench.generate --tickets 1000000 [--orgs 40] [--comments-per-ticket 5]
                             [--password P] [--database-url URL] [--force]

The target is DATABASE_URL (or --database-url). Everything in it is replaced: the app's
migrations rebuild the schema, then orgs, people, SLA policies, tickets, their
conversations, status history, fired SLA alerts and search vectors are copied in, and
the indexes are built once at the end. It refuses a database holding data it did not
generate unless --force. Progress goes to stderr; the last line on stdout is one JSON
object naming the largest org and one of its agents, for load tools:
{"org": "<slug>", "agent_email": "...", "tickets": N}
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench import load, schema
from bench.load import Log, stderr_log
from helpdesk.services.passwords import hash_password, password_problem

MAX_TICKETS = 20_000_000


@dataclass
class Options:
    """What to generate; see the module docstring and --help."""

    tickets: int
    orgs: int = 40
    comments_per_ticket: float = 5.0
    password: str | None = None
    seed: int = 42
    now: datetime | None = None
    force: bool = False
    jobs: int = 2
    pool_size: int = 0  # distinct message bodies; 0 = chosen from the size of the load


def pool_size(opts: Options) -> int:
    if opts.pool_size:
        return opts.pool_size
    return int(min(5000, max(300, opts.tickets * opts.comments_per_ticket // 50)))


def generate(url: str, opts: Options, log: Log = stderr_log) -> dict[str, Any]:
    """Replace the database's contents with generated data; return counts and timings."""
    started = time.perf_counter()
    now = (opts.now or datetime.now(UTC)).timestamp()
    info = {"tickets": opts.tickets, "orgs": opts.orgs, "seed": opts.seed,
            "comments_per_ticket": opts.comments_per_ticket, "now": now}  # fmt: skip
    indexes = _prepare(url, opts.force, info)
    timings = {"reset_migrate_s": time.perf_counter() - started}
    log(f"generate: schema ready; planning {opts.tickets:,} tickets in {opts.orgs} orgs")
    secret = hash_password(opts.password or secrets.token_urlsafe(18))
    plan, counts = load.make_plan(url, opts.tickets, opts.orgs, opts.comments_per_ticket,
                                  opts.seed, now, secret, pool_size(opts))  # fmt: skip
    timings["plan_s"] = time.perf_counter() - started - timings["reset_migrate_s"]
    mark = time.perf_counter()
    counts |= load.load_tickets(plan, opts.jobs, log)
    timings["copy_s"] = time.perf_counter() - mark
    log(f"generate: copied {counts['tickets']:,} tickets, {counts['comments']:,} comments"
        f" in {timings['copy_s']:.0f} s; building {len(indexes)} indexes")  # fmt: skip
    mark = time.perf_counter()
    index_s = schema.build_indexes(url, indexes, opts.jobs)
    timings["index_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    _finish(url, opts.jobs)
    timings["vacuum_analyze_s"] = time.perf_counter() - mark
    largest = max(plan.orgs, key=lambda o: o.tickets)
    with schema.connect(url, autocommit=True) as conn:
        schema.set_marker(conn, state="complete", **info)
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    timings["total_s"] = time.perf_counter() - started
    return {
        "org": largest.slug, "agent_email": largest.agent_emails[1], "tickets": largest.tickets,
        "rows": counts, "db_bytes": size[0] if size else None,
        "timings": {k: round(v, 1) for k, v in timings.items()}, "index_s": index_s,
        "password_given": opts.password is not None, "now": now,
    }  # fmt: skip


def _prepare(url: str, force: bool, info: dict[str, Any]) -> list[schema.IndexDef]:
    """Check, reset and mark the database; drop the big tables' secondary indexes."""
    schema.check_target(url, force)
    schema.reset(url)
    with schema.connect(url, autocommit=True) as conn:
        _require_superuser(conn)
        schema.set_marker(conn, state="loading", **info)
        indexes = schema.secondary_indexes(conn, schema.BIG_TABLES)
        schema.drop_indexes(conn, indexes)
    return indexes


def _require_superuser(conn: Any) -> None:
    row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    if not row or not row[0]:
        raise SystemExit(
            "bench.generate needs a superuser connection: it turns foreign-key triggers off"
            " during COPY (SET session_replication_role). Connect as the postgres user."
        )


FINISH_SQL = (
    *(
        f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), (SELECT max(id) FROM {t}))"  # noqa: S608
        for t in ("organizations", "users", "memberships", "tickets")
    ),
    "UPDATE organizations o SET ticket_seq ="
    " (SELECT coalesce(max(number), 0) FROM tickets t WHERE t.org_id = o.id)",
)


def _finish(url: str, jobs: int) -> None:
    with schema.connect(url, autocommit=True) as conn:
        for statement in FINISH_SQL:
            conn.execute(statement)
    schema.vacuum(url, [*schema.BIG_TABLES, "users", "memberships", "organizations"], jobs)


def parse_args(argv: list[str] | None = None) -> tuple[str, Options]:
    p = argparse.ArgumentParser(
        prog="python -m bench.generate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--tickets", type=int, required=True, help="tickets in all orgs together")
    p.add_argument("--orgs", type=int, default=40, help="organizations (default 40)")
    p.add_argument(
        "--comments-per-ticket",
        type=float,
        default=5.0,
        help="mean messages per ticket, a long tail included (default 5)",
    )
    p.add_argument("--password", help="every generated user's password (default: random)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--now", help="ISO time the data ends at (default: now); for reproducible loads")
    p.add_argument("--jobs", type=int, default=2, help="loading processes and index builds")
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a database that holds data bench.generate did not write",
    )
    args = p.parse_args(argv)
    errors, now = _problems(args)
    if errors:
        p.error("; ".join(errors))
    opts = Options(args.tickets, args.orgs, args.comments_per_ticket, args.password,
                   args.seed, now, args.force, args.jobs)  # fmt: skip
    return args.database_url, opts


def _problems(args: argparse.Namespace) -> tuple[list[str], datetime | None]:
    """What is wrong with the options, each with what to do instead; and --now parsed."""
    errors = []
    if not 1 <= args.tickets <= MAX_TICKETS:
        errors.append(f"--tickets must be between 1 and {MAX_TICKETS:,}")
    if not 1 <= args.orgs <= min(1000, max(1, args.tickets)):
        errors.append("--orgs must be between 1 and 1,000, and at most --tickets")
    if not 0 <= args.comments_per_ticket <= 100:
        errors.append("--comments-per-ticket must be between 0 and 100")
    if not 1 <= args.jobs <= 16:
        errors.append("--jobs must be between 1 and 16")
    if args.password is not None and (problem := password_problem(args.password)):
        errors.append(f"--password: {problem}")
    if not args.database_url:
        errors.append("set DATABASE_URL or pass --database-url postgresql+psycopg://…/name")
    now = None
    if args.now:
        try:
            now = datetime.fromisoformat(args.now)
        except ValueError:
            errors.append("--now must be an ISO time like 2026-11-27T12:00:00+00:00")
        else:
            if now.tzinfo is None:
                errors.append("--now needs a UTC offset, e.g. 2026-11-27T12:00:00+00:00")
    return errors, now


def main(argv: list[str] | None = None) -> None:
    url, opts = parse_args(argv)
    result = generate(url, opts)
    stderr_log(f"generate: done in {result['timings']['total_s']:.0f} s: {json.dumps(result)}")
    print(json.dumps({k: result[k] for k in ("org", "agent_email", "tickets")}), flush=True)


if __name__ == "__main__":
    main()
