"""Quick in-process benchmark: generate N tickets, then time the hot endpoints one by one.

Single client, Flask test client, no network and no gunicorn: this measures the cost of
one request inside the app (SQL + ORM + templates), not server throughput; bench/run.py
measures that. The endpoints are the ones bench/run.py drives (bench/endpoints.py), plus
page 50 of the list through its keyset cursor. See README.md.
"""

from __future__ import annotations

import argparse
import html
import os
import re
import statistics
import time
from typing import Any

from flask import Flask

from bench import probe, report, schema
from bench.endpoints import Context, Endpoint, discover, endpoints
from bench.generate import Options, generate
from bench.login import BENCH_PASSWORD as PASSWORD
from helpdesk import embedded
from tests.browser import Browser

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/helpdesk_bench"
REDIS_URL = "redis://127.0.0.1:6379/13"
CLIENT = "in-process Flask test client, one client, sequential requests"


def deep_page(browser: Browser, first: str, page: int) -> str:
    """Follow "Next page" links from the first page; return page `page`'s URL."""
    url = first
    for _ in range(page - 1):
        text = browser.client.get(url).get_data(as_text=True)
        match = re.search(r'<tr class="more">.*?href="([^"]+)"', text, re.DOTALL)
        if match is None:
            raise SystemExit(f"the list has fewer than {page} pages")
        url = html.unescape(match.group(1))
    return url


def measure(
    app: Flask, browser: Browser, ep: Endpoint, token: str, warmup: int, requests: int
) -> dict[str, Any]:
    """Time R requests after a warm-up, one after another; SQL statements of each."""
    call = probe.caller(app, browser, ep, token)
    for i in range(warmup):
        call(requests + i).get_data()
    engine = app.extensions["helpdesk.engine"]
    times, statements, bad, plans = [], [], 0, []
    for i in range(requests):
        with probe.recording(engine) as seen:
            started = time.perf_counter()
            response = call(i)
            response.get_data()
            times.append((time.perf_counter() - started) * 1000)
        statements.append(len(seen))
        bad += not 200 <= response.status_code < 300
        if i == 0 and ep.method == "GET":
            plans = probe.explain(engine, seen)
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {
        "endpoint": ep.label,
        "requests": requests,
        "median_ms": statistics.median(times),
        "p95_ms": q[94],
        "p99_ms": q[98],
        "req_per_s": 1000 / statistics.fmean(times),
        "sql_per_request": statistics.fmean(statements),
        "non_2xx": bad,
        "plans": plans,
    }


def run(app: Flask, ctx: Context, warmup: int, requests: int) -> list[dict[str, Any]]:
    browser = Browser(app.test_client())
    if browser.login(ctx.agent_email, PASSWORD).status_code != 303:
        raise SystemExit(f"could not log in {ctx.agent_email}: regenerate without --reuse")
    token = probe.api_token(app, ctx.org, ctx.agent_email)
    eps = endpoints(ctx, ctx.replies)
    deep = deep_page(browser, f"/o/{ctx.org}/tickets", 50)
    eps.insert(2, Endpoint("page50", "list page 50 (HTMX, cursor)", [deep], htmx=True))
    return [measure(app, browser, ep, token, warmup, requests) for ep in eps]


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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.quick", description=__doc__)
    p.add_argument("--tickets", type=int, required=True, help="tickets in all orgs together")
    p.add_argument("--comments-per-ticket", type=float, default=5.0)
    p.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    p.add_argument(
        "--reuse",
        action="store_true",
        help="measure the data a previous run generated (migrated to head first)",
    )
    args = p.parse_args(argv)
    if args.tickets < 5000 or args.requests < 2:
        p.error(
            "--tickets must be at least 5,000 (50 list pages of 50 rows in the largest org);"
            " --requests at least 2"
        )
    if "bench" not in embedded.database_name(args.database_url):
        p.error("the database name must contain 'bench': everything in it is replaced")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started, load_before = time.perf_counter(), os.getloadavg()
    if args.reuse:
        schema.migrate(args.database_url)
        loaded: dict[str, Any] = {"reused": True}
    else:  # a database named *bench* is ours to replace, as this script always did
        opts = Options(
            args.tickets,
            comments_per_ticket=args.comments_per_ticket,
            password=PASSWORD,
            seed=args.seed,
            force=True,
        )
        loaded = generate(args.database_url, opts)
    loaded["prepare_s"] = round(time.perf_counter() - started, 1)
    print(f"data: {loaded}", flush=True)
    with schema.connect(args.database_url) as conn:
        ctx = discover(conn)
    app = probe.build_app(args.database_url, REDIS_URL)
    results = run(app, ctx, args.warmup, args.requests)
    app.extensions["helpdesk.engine"].dispose()
    print(table(results))
    for r in results:
        for plan in r["plans"]:
            print(f"\n== EXPLAIN {r['endpoint']}\n{plan['statement']}\n" + "\n".join(plan["plan"]))
    params = {k: v for k, v in vars(args).items() if k != "database_url"}
    machine = {"cpus": os.cpu_count(), "client": CLIENT, "loadavg": [load_before, os.getloadavg()]}
    data = {"params": params, "machine": machine, "load": loaded, "results": results}
    path = report.save(data, f"quick-{report.scale_label(args.tickets)}")
    print(f"\nwrote {path.relative_to(report.ROOT)}")


if __name__ == "__main__":
    main()
