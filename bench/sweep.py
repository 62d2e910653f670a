"""SLA sweep cost at scale: N open tickets with SLA due times, none due vs 1,000 due.

`python -m bench.sweep --tickets 1000000` loads N tickets (no comments) with COPY, gives
every ticket of the large org an open status, a 24x7 policy and future due times, then
times `services.sla_sweep.run_sweep` in-process (the function the `sla` job runs):

* none due: R runs, median and max;
* 1,000 due: before each run, 1,000 random tickets get a first-response due time a minute
  in the past (their warnings and breach are due); the run fires and announces them.

Targets (issue "Background jobs"): none due ≤ 50 ms, 1,000 due ≤ 1 s. The database is
dropped and recreated unless --reuse; its name must contain "bench".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from bench.data import load, migrate, prepare_database
from bench.quick import DEFAULT_URL, build_app
from helpdesk import embedded
from helpdesk.services.sla_sweep import run_sweep

ROOT = Path(__file__).resolve().parent.parent

SETUP_SQL = [
    "DELETE FROM sla_events",
    "DELETE FROM outbox_events",
    "DELETE FROM sla_policies WHERE org_id = 1",
    "INSERT INTO sla_policies (org_id, priority, first_response_minutes, resolution_minutes,"
    " warn_at_percent, warn_before_minutes, updated_at)"
    " SELECT 1, p, 600, 2880, '{75,90}', '{}', now()"
    " FROM unnest(ARRAY['low','normal','high','urgent']) AS p",
    # Every ticket of the large org open, its targets days ahead, next check at the first
    # warning; the other org keeps its mixed statuses and no SLA.
    "UPDATE tickets SET status = 'open', sla_state = 'ok', sla_paused_at = NULL,"
    " first_responded_at = NULL, solved_at = NULL,"
    " first_response_due_at = now() + (1 + id % 20) * interval '1 day',"
    " resolution_due_at = now() + (3 + id % 20) * interval '1 day',"
    " sla_due_at = now() + (1 + id % 20) * interval '1 day',"
    " sla_next_check_at = now() + (1 + id % 20) * interval '1 day' - interval '150 minutes'"
    " WHERE org_id = 1",
    "VACUUM ANALYZE tickets",
]
MAKE_DUE_SQL = (
    "UPDATE tickets SET first_response_due_at = now() - interval '1 minute',"
    " sla_due_at = now() - interval '1 minute', sla_next_check_at = now() - interval '1 second'"
    " WHERE id IN (SELECT id FROM tickets WHERE org_id = 1 AND first_responded_at IS NULL"
    " AND sla_next_check_at > now() ORDER BY random() LIMIT %s)"
)


def prepare(url: str, tickets: int, reuse: bool) -> dict[str, Any]:
    started = time.perf_counter()
    if reuse:
        migrate(url)
        loaded: dict[str, Any] = {"reused": True}
    else:
        prepare_database(url)
        loaded = load(url, tickets, 0, 42)
    with psycopg.connect(embedded.libpq_url(url), autocommit=True) as conn:
        for statement in SETUP_SQL:
            conn.execute(statement)  # type: ignore[arg-type]
        open_count = conn.execute(
            "SELECT count(*) FROM tickets WHERE sla_next_check_at IS NOT NULL"
        ).fetchone()
    loaded["open_with_sla"] = open_count[0] if open_count else 0
    loaded["prepare_s"] = round(time.perf_counter() - started, 1)
    return loaded


def make_due(url: str, count: int) -> None:
    with psycopg.connect(embedded.libpq_url(url), autocommit=True) as conn:
        conn.execute(MAKE_DUE_SQL, (count,))  # type: ignore[arg-type]


def timed_runs(app: Any, url: str, runs: int, due: int) -> list[dict[str, Any]]:
    results = []
    factory = app.extensions["helpdesk.sessionmaker"]
    with app.app_context():
        for _ in range(runs):
            if due:
                make_due(url, due)
            with factory() as session:
                started = time.perf_counter()
                outcome = run_sweep(session, datetime.now(UTC))
                elapsed = time.perf_counter() - started
            results.append({"ms": round(elapsed * 1000, 2), "due": outcome.due,
                            "fired": outcome.fired, "announced": outcome.announced})  # fmt: skip
    return results


def summary(name: str, runs: list[dict[str, Any]], target_ms: float) -> dict[str, Any]:
    times = [r["ms"] for r in runs]
    return {
        "case": name, "runs": len(runs), "median_ms": round(statistics.median(times), 2),
        "max_ms": max(times), "due_per_run": runs[-1]["due"], "fired_per_run": runs[-1]["fired"],
        "target_ms": target_ms,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__)
    p.add_argument("--tickets", type=int, required=True)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--due", type=int, default=1000)
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    p.add_argument("--reuse", action="store_true", help="keep the loaded tickets")
    args = p.parse_args(argv)
    loaded = prepare(args.database_url, args.tickets, args.reuse)
    print(f"data: {loaded}", flush=True)
    app = build_app(args.database_url)
    timed_runs(app, args.database_url, 2, 0)  # warm caches and the connection pool
    rows = [
        summary("none due", timed_runs(app, args.database_url, args.runs, 0), 50),
        summary(f"{args.due:,} due", timed_runs(app, args.database_url, args.runs, args.due), 1000),
    ]
    app.extensions["helpdesk.engine"].dispose()
    print(f"\n{'case':<12} {'runs':>4} {'median ms':>10} {'max ms':>9} {'fired/run':>9} target")
    for r in rows:
        print(f"{r['case']:<12} {r['runs']:>4} {r['median_ms']:>10} {r['max_ms']:>9}"
              f" {r['fired_per_run']:>9} ≤ {r['target_ms']} ms")  # fmt: skip
    out = ROOT / "bench" / "results" / f"sweep-{args.tickets}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"params": vars(args) | {"database_url": None}, "load": loaded,
                               "results": rows}, indent=2))  # fmt: skip
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
