"""Quick in-process benchmark: load N tickets with COPY, then time the hot endpoints.

Single client, Flask test client, no network and no gunicorn: this measures the cost of
one request inside the app (SQL + ORM + templates), not server throughput. See README.md.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event
from werkzeug.test import TestResponse

from bench.data import PASSWORD, RARE_WORDS, load, migrate, prepare_database
from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.services import api_tokens, orgs
from helpdesk.tenancy import tenant_scope
from tests.browser import Browser

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/helpdesk_bench"
REDIS_URL = "redis://127.0.0.1:6379/11"
LIST = "/o/bench/tickets"
REPLY = {"body": "Thanks, we are on it.\n\n- checked the logs\n- **fix** is next", "internal": "0"}
HX = {"HX-Request": "true"}
CLIENT = "in-process Flask test client, one client, sequential requests"


def record_sql(engine: Engine) -> list[tuple[str, Any]]:
    """Every statement sent on the app's engine, with its parameters (cleared per request)."""
    seen: list[tuple[str, Any]] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append((a[2], a[3])))
    return seen


@dataclass
class Endpoint:
    name: str
    call: Callable[[int], TestResponse]
    explain: bool = False


def build_app(url: str) -> Flask:
    return create_app(Settings(
        env="test", secret_key=secrets.token_urlsafe(36), database_url=url, redis_url=REDIS_URL,
        login_limit_ip="100000 per minute", login_limit_account="100000 per minute",
    ))  # fmt: skip


def api_token(app: Flask, email: str) -> str:
    with app.extensions["helpdesk.sessionmaker"]() as session:
        user = orgs.find_user(session, email)
        org = orgs.find_org(session, "bench")
        assert user is not None and org is not None
        with tenant_scope(session, org.id):
            member = orgs.find_membership(session, org.id, user.id)
            assert member is not None
            return api_tokens.create_token(session, member, "bench")[1]


def deep_page(browser: Browser, page: int) -> str:
    """Follow "Next page" links from the first page; return page `page`'s URL."""
    url = LIST
    for _ in range(page - 1):
        text = browser.client.get(url).get_data(as_text=True)
        match = re.search(r'<tr class="more">.*?href="([^"]+)"', text, re.DOTALL)
        if match is None:
            raise SystemExit(f"the list has fewer than {page} pages")
        url = html.unescape(match.group(1))
    return url


def endpoints(app: Flask, n: int, replies: int) -> list[Endpoint]:
    browser = Browser(app.test_client())
    if browser.login("agent1@bench.test", PASSWORD).status_code != 303:
        raise SystemExit("could not log in the bench agent")
    get, api = browser.client.get, app.test_client().get
    auth = {"Authorization": f"Bearer {api_token(app, 'agent1@bench.test')}"}
    deep = deep_page(browser, 50)
    views = [1 + 2 * (j * (n // 2 - 1) // 49) for j in range(50)]  # odd numbers, spread out
    filtered, api_list = LIST + "?status=open&priority=high", "/api/v1/orgs/bench/tickets"

    def reply(i: int) -> TestResponse:  # each reply on its own (even) ticket: no thread grows
        return browser.post(f"{LIST}/{2 + 2 * (i % replies)}/comments", REPLY, htmx=True)

    return [
        Endpoint("list (full page)", lambda i: get(LIST), explain=True),
        Endpoint("list (HTMX fragment)", lambda i: get(LIST, headers=HX)),
        Endpoint("list ?status=open&priority=high", lambda i: get(filtered), explain=True),
        Endpoint("list page 50 (HTMX, cursor)", lambda i: get(deep, headers=HX), explain=True),
        Endpoint(
            "search common word (HTMX)",
            lambda i: get(f"{LIST}?q=printer", headers=HX),
            explain=True,
        ),
        Endpoint(
            "search rare word (HTMX)",
            lambda i: get(f"{LIST}?q={RARE_WORDS[i % 50]}", headers=HX),
            explain=True,
        ),
        Endpoint("ticket page", lambda i: get(f"{LIST}/{views[i % 50]}")),
        Endpoint("API list", lambda i: api(api_list, headers=auth)),
        Endpoint("API ticket", lambda i: api(f"{api_list}/{views[i % 50]}", headers=auth)),
        Endpoint("reply POST (HTMX)", reply),
    ]


def measure(ep: Endpoint, sql: list[Any], warmup: int, requests: int) -> dict[str, Any]:
    for i in range(warmup):
        ep.call(i)
    times, statements, bad = [], [], 0
    for i in range(warmup, warmup + requests):
        sql.clear()
        started = time.perf_counter()
        response = ep.call(i)
        response.get_data()
        times.append((time.perf_counter() - started) * 1000)
        statements.append(len(sql))
        bad += not 200 <= response.status_code < 300
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {
        "endpoint": ep.name, "requests": requests, "median_ms": statistics.median(times),
        "p95_ms": q[94], "p99_ms": q[98], "req_per_s": 1000 / statistics.fmean(times),
        "sql_per_request": statistics.fmean(statements), "non_2xx": bad,
    }  # fmt: skip


def explain(engine: Engine, sql: list[tuple[str, Any]]) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) the ticket-list statement of the last request, as sent."""
    found = [s for s in sql if "FROM tickets" in s[0] and "ORDER BY" in s[0]]
    if not found:
        return "(no ticket list statement seen)"
    statement, params = found[0]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
        plan = "\n".join(rows.scalars())
    return f"{statement}\n-- params: {params}\n{plan}"


def run(app: Flask, n: int, warmup: int, requests: int) -> tuple[list[Any], dict[str, str]]:
    engine = app.extensions["helpdesk.engine"]
    sql = record_sql(engine)
    results, plans = [], {}
    for ep in endpoints(app, n, warmup + requests):
        results.append(measure(ep, sql, warmup, requests))
        if ep.explain:
            plans[ep.name] = explain(engine, sql)
    return results, plans


def table(results: list[dict[str, Any]]) -> str:
    head = f"{'endpoint':34} {'reqs':>5} {'median':>8} {'p95':>8} {'p99':>8} {'req/s':>7}"
    lines = [head + f" {'SQL/req':>8} {'non-2xx':>7}"]
    for r in results:
        lines.append(
            f"{r['endpoint']:34} {r['requests']:>5} {r['median_ms']:>8.2f} {r['p95_ms']:>8.2f}"
            f" {r['p99_ms']:>8.2f} {r['req_per_s']:>7.0f} {r['sql_per_request']:>8.2f}"
            f" {r['non_2xx']:>7}"
        )
    return "\n".join(lines)


def save(report: dict[str, Any], n: int) -> Path:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"quick-{n}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.quick", description=__doc__)
    p.add_argument("--tickets", type=int, required=True, help="tickets in the large org (N)")
    p.add_argument("--comments-per-ticket", type=int, default=5)
    p.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    p.add_argument(
        "--reuse",
        action="store_true",
        help="measure the data a previous run loaded (migrated to head first), skip the load",
    )
    args = p.parse_args(argv)
    if args.tickets < max(1250, 2 * (args.warmup + args.requests)) or args.requests < 2:
        p.error("--tickets must cover 50 list pages and one ticket per reply; --requests >= 2")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started, load_before = time.perf_counter(), os.getloadavg()
    if args.reuse:
        migrate(args.database_url)
        loaded: dict[str, Any] = {
            "reused": True,
            "migrate_s": round(time.perf_counter() - started, 1),
        }
    else:
        prepare_database(args.database_url)
        migrated = time.perf_counter()
        loaded = load(args.database_url, args.tickets, args.comments_per_ticket, args.seed)
        loaded["recreate_migrate_s"] = round(migrated - started, 1)
    print(f"data: {loaded}", flush=True)
    app = build_app(args.database_url)
    results, plans = run(app, args.tickets, args.warmup, args.requests)
    app.extensions["helpdesk.engine"].dispose()
    print(table(results))
    for name, plan in plans.items():
        print(f"\n== EXPLAIN {name}\n{plan}")
    params = {k: v for k, v in vars(args).items() if k != "database_url"}
    machine = {"cpus": os.cpu_count(), "client": CLIENT, "loadavg": [load_before, os.getloadavg()]}
    report = {"params": params, "machine": machine, "load": loaded, "results": results}
    print(f"\nwrote {save(report | {'plans': plans}, args.tickets).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
