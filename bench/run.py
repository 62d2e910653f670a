"""The production-shaped benchmark: generated data, gunicorn + worker + cron, driven by wrk.

    python -m bench.run --scale 10k,100k [--duration 10] [--connections 2]
    python -m bench.run --tickets 1000000
    make bench SCALE=10k,100k,1m     |     make bench N=1000000

For each scale: generate the data into its own database (helpdesk_bench_<scale>; reused
when a previous run generated it with the same options, --regenerate to load again),
count SQL statements per endpoint in-process and EXPLAIN the hot statements, time the
SLA sweep in-process, then start the app as production does (gunicorn with 2 workers, one
`flask worker`, one `flask cron`, an SMTP sink), log in as an agent of the largest org and
drive every endpoint with wrk: a warm-up pass, then a measured pass at fixed concurrency.
Then it measures notification latency (reply → SMTP sink accepted), memory and database
size, prints a table per scale and the growth ratio between the smallest and largest
scale, and writes everything as JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from typing import Any

import redis

from bench import endpoints as ep_mod
from bench import loadgen, probe, report, schema, stack, sweeps
from bench.drain import pending, settle, wait_drained
from bench.endpoints import Context, Endpoint
from bench.generate import Options, generate
from bench.load import stderr_log
from bench.login import BENCH_PASSWORD as PASSWORD
from bench.login import Login, login
from helpdesk import embedded

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/helpdesk_bench_{scale}"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"
PROBE_REPLIES = 20


def prepare_data(url: str, tickets: int, args: argparse.Namespace) -> dict[str, Any]:
    """Generate the scale's database, or reuse it when it holds exactly this data."""
    wanted = {
        "tickets": tickets,
        "orgs": args.orgs,
        "seed": args.seed,
        "comments_per_ticket": args.comments_per_ticket,
    }
    schema.check_target(url, force=args.force)
    with schema.connect(url, autocommit=True) as conn:
        found = schema.marker(conn) or {}
    if (
        not args.regenerate
        and found.get("state") == "complete"
        and all(found.get(k) == v for k, v in wanted.items())
    ):
        stderr_log(f"run: reusing {embedded.database_name(url)} ({tickets:,} tickets)")
        schema.migrate(url)  # the code may have moved on since the data was generated
        return {"reused": True, "summary": f"reused {embedded.database_name(url)}"}
    opts = Options(
        tickets, args.orgs, args.comments_per_ticket, PASSWORD, args.seed, force=args.force
    )
    result = generate(url, opts)
    rows = result["rows"]
    return {
        "reused": False,
        "generate": result,
        "summary": f"generated {rows['tickets']:,} tickets, {rows['comments']:,} comments"
        f" in {result['timings']['total_s']:.0f} s",
    }


def headers_for(ep: Endpoint, session: Login, token: str) -> dict[str, str]:
    """What a browser (or an API client) sends with this request."""
    if ep.api:
        return {"Authorization": f"Bearer {token}"}
    found = {"Cookie": session.cookie}
    if ep.htmx:
        found["HX-Request"] = "true"
    if ep.method == "POST":
        found["X-CSRFToken"] = session.csrf
        found["Content-Type"] = "application/x-www-form-urlencoded"
    return found


def _halves(ep: Endpoint) -> tuple[list[str], list[str]]:
    """(warm-up paths, measured paths): replies warm up on other tickets than they measure."""
    if ep.method != "POST":
        return ep.paths, ep.paths
    middle = len(ep.paths) // 2
    return ep.paths[middle:], ep.paths[:middle]


def _backends(conn: Any) -> list[int]:
    """PostgreSQL backends serving the app's database (not this monitoring connection)."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    return [r[0] for r in rows]


def _per_request(
    before: dict[str, float], after: dict[str, float], requests: int
) -> dict[str, float]:
    """CPU milliseconds per request of the web workers, the job worker and the database."""
    used = {k: after[k] - before.get(k, 0.0) for k in after}
    db = sum(v for k, v in used.items() if k.startswith("db"))
    n = max(requests, 1)
    return {
        "web_cpu_ms": round(used["web"] * 1000 / n, 2),
        "db_cpu_ms": round(db * 1000 / n, 2),
        "worker_cpu_ms": round(used["worker"] * 1000 / n, 2),
    }


def _measure(
    url: str, st: stack.Stack, loads: list[tuple[Endpoint, loadgen.Load]], workdir: Any
) -> list[dict[str, Any]]:
    """One measured pass over every endpoint, with CPU per request from /proc."""
    rows = []
    with schema.connect(url, autocommit=True) as conn:
        for ep, load in loads:
            before = st.cpu(_backends(conn))
            result = loadgen.run(load, workdir)
            st.check_alive()
            cpu = _per_request(before, st.cpu(_backends(conn)), result["requests"])
            rows.append(
                {"key": ep.key, "label": ep.label, **result, **cpu, "target": vars(ep.target)}
            )
            stderr_log(
                f"run: {ep.label}: {result['req_per_s']:.0f} req/s, p50"
                f" {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms,"
                f" non-2xx {result['non2xx']}"
            )
    return rows


def drive(
    url: str,
    st: stack.Stack,
    session: Login,
    token: str,
    eps: list[Endpoint],
    args: argparse.Namespace,
    label: str,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Warm every endpoint up, then measure each; memory before and after the measured pass."""
    workdir = report.RESULTS / "wrk" / label
    loads = []
    # Reads first, writes last: a reply's emails are mailed while the next endpoint runs.
    for ep in sorted(eps, key=lambda e: e.method != "GET"):
        warm, measured = _halves(ep)
        common = {
            "base_url": st.base_url,
            "headers": headers_for(ep, session, token),
            "method": ep.method,
            "body": ep_mod.form_body(ep.form),
            "connections": args.connections,
        }
        loadgen.run(loadgen.Load(paths=warm, seconds=args.warmup, **common), workdir)
        st.check_alive()
        loads.append((ep, loadgen.Load(paths=measured, seconds=args.duration, **common)))
    warm_memory = st.memory()
    passes = []
    for _ in range(args.repeat):
        # The warm-up's replies, then each pass's, queue emails: the job worker mails them
        # on the same two cores, so they go out before the next pass is timed.
        wait_drained(url, args.redis_url)
        passes.append(_measure(url, st, loads, workdir))
    rows = report.median_rows(passes)
    memory = {
        "warm": warm_memory,
        "after": st.memory(),
        "requests": sum(r["requests"] for p in passes for r in p),
    }
    return rows, memory


def notification_latency(
    url: str,
    st: stack.Stack,
    session: Login,
    sink: stack.SinkHandler,
    ctx: Context,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """Drain the reply phase's emails, then time PROBE_REPLIES replies from event to SMTP."""
    with schema.connect(url, autocommit=True) as conn:
        backlog = pending(conn)
    # The probes' jobs would otherwise wait behind the reply phase's leftover queued jobs.
    drain = wait_drained(url, redis_url)
    with schema.connect(url, autocommit=True) as conn:
        since = conn.execute("SELECT now()").fetchone()
        reply = Endpoint("probe", "probe", [], method="POST", htmx=True)
        headers = headers_for(reply, session, "")
        body = ep_mod.form_body({"body": ep_mod.REPLY_BODY, "internal": "0"})
        for number in ctx.replies[-PROBE_REPLIES:]:
            loadgen.post_once(st.base_url, f"/o/{ctx.org}/tickets/{number}/comments", headers, body)
            time.sleep(0.5)
        deadline = time.monotonic() + 60
        while pending(conn) and time.monotonic() < deadline:
            time.sleep(0.5)
        rows = conn.execute(
            "SELECT d.id, extract(epoch FROM o.created_at) FROM deliveries d"
            " JOIN outbox_events o ON o.id = d.event_id WHERE o.kind = 'comment.created'"
            " AND d.channel = 'email' AND o.created_at >= %s",
            (since[0] if since else datetime.now(UTC),),
        ).fetchall()
    latencies = [sink.accepted[i] - float(t) for i, t in rows if i in sink.accepted]
    return {
        "backlog": backlog,
        "drain_s": drain,
        "latency": stack.stats(latencies),
        "emails": len(rows),
        "accepted": len(latencies),
    }


def run_scale(tickets: int, args: argparse.Namespace) -> dict[str, Any]:
    """Everything measured at one scale."""
    label = report.scale_label(tickets)
    url = args.database_url.format(scale=label)
    if "bench" not in embedded.database_name(url):
        raise SystemExit(f"refusing {url}: benchmark database names must contain 'bench'")
    loadavg_before = os.getloadavg()
    data = prepare_data(url, tickets, args)
    with schema.connect(url) as conn:
        ctx = ep_mod.discover(conn)
    redis.Redis.from_url(args.redis_url).flushdb()
    app = probe.build_app(url, args.redis_url)
    token = probe.api_token(app, ctx.org, ctx.agent_email)
    eps = ep_mod.endpoints(ctx, ctx.replies)
    probes = probe.probe(app, ctx, PASSWORD, eps, token)
    with schema.connect(url) as conn:
        sweep = sweeps.measure(app, conn, args.sweep_runs, 1000)
    app.extensions["helpdesk.engine"].dispose()
    redis.Redis.from_url(args.redis_url).flushdb()
    with (
        stack.smtp_sink() as (smtp_port, sink),
        stack.running(url, args.redis_url, smtp_port) as st,
    ):
        session = login(st.base_url, ctx.agent_email, PASSWORD, f"/o/{ctx.org}/tickets")
        settled = settle(url)
        rows, memory = drive(url, st, session, token, eps, args, label)
        notes = notification_latency(url, st, session, sink, ctx, args.redis_url)
        memory["final"] = st.memory()
    for row in rows:
        row["sql"] = probes[row["key"]]["sql"]
    with schema.connect(url) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        total = conn.execute("SELECT count(*) FROM tickets").fetchone()
    return {
        "scale": label,
        "tickets": total[0] if total else 0,
        "org": ctx.org,
        "org_tickets": ctx.tickets,
        "data": data,
        "endpoints": rows,
        "sweep": sweep,
        "notifications": notes,
        "settle": settled,
        "memory": memory,
        "db_bytes": size[0] if size else 0,
        "plans": {k: v["plan"] for k, v in probes.items() if v["plan"]},
        "probe_statuses": {k: v["statuses"] for k, v in probes.items()},
        "loadavg_before": loadavg_before,
        "loadavg_after": os.getloadavg(),
    }


def parse_args(argv: list[str] | None = None) -> tuple[list[int], argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--scale", help="comma-separated sizes, e.g. 10k,100k,1m")
    p.add_argument("--tickets", type=int, help="one size (tickets in all orgs together)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per endpoint")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per endpoint")
    p.add_argument(
        "--connections",
        type=int,
        default=2,
        help="concurrent connections (default 2: one per gunicorn worker)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measured passes per scale; the table shows each figure's median",
    )
    p.add_argument("--sweep-runs", type=int, default=7)
    p.add_argument("--orgs", type=int, default=40)
    p.add_argument("--comments-per-ticket", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--regenerate", action="store_true", help="load the data even if present")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace a database holding data bench.generate did not write",
    )
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_RUN_DATABASE_URL", DEFAULT_URL),
        help="PostgreSQL URL with {scale} in the database name",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS),
        help="a Redis database the run may flush",
    )
    args = p.parse_args(argv)
    try:
        return _sizes(args), args
    except ValueError as exc:
        p.error(str(exc))


def _sizes(args: argparse.Namespace) -> list[int]:
    """The scales to run, smallest first; ValueError says what to change."""
    if (args.scale is None) == (args.tickets is None):
        raise ValueError("give either --scale 10k,100k,1m or --tickets N")
    sizes = [args.tickets] if args.tickets else [report.parse_scale(s)
                                                  for s in args.scale.split(",")]  # fmt: skip
    if any(n < 1000 for n in sizes):
        raise ValueError("each scale needs at least 1,000 tickets (1k)")
    if "{scale}" not in args.database_url and len(sizes) > 1:
        raise ValueError("--database-url needs {scale} in it when several scales are run")
    if not 1 <= args.connections <= 256 or args.duration < 1 or args.warmup < 0:
        raise ValueError("--connections 1-256, --duration at least 1 s, --warmup at least 0 s")
    if not 1 <= args.repeat <= 20 or args.sweep_runs < 1:
        raise ValueError("--repeat 1-20 passes; --sweep-runs at least 1")
    return sorted(sizes)


def main(argv: list[str] | None = None) -> None:
    sizes, args = parse_args(argv)
    loadgen.require_wrk()
    results = []
    for tickets in sizes:
        result = run_scale(tickets, args)
        results.append(result)
        print(report.scale_text(result), flush=True)
    if len(results) > 1:
        print("\n" + report.growth_table(results))
    params = {k: v for k, v in vars(args).items() if k != "database_url"}
    path = report.save(
        {"params": params, "cpus": os.cpu_count(), "results": results},
        "run-" + "-".join(r["scale"] for r in results),
    )
    print(f"\nwrote {path.relative_to(report.ROOT)}")


if __name__ == "__main__":
    main()
