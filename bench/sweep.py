"""SLA sweep cost at scale: N generated tickets, nothing due vs 1,000 due.

`python -m bench.sweep --tickets 1000000` generates N tickets (no messages by default,
which is what makes it quick) with bench/generate.py, then times
`services.sla_sweep.run_sweep` in-process (the function the `sla` job runs), as
bench/sweeps.py describes: R runs with nothing due, R runs with 1,000 tickets due (each
fires three alerts and announces one breach), the data put back after each run.

Targets (issue "Background jobs"): none due ≤ 50 ms, 1,000 due ≤ 1 s. The database name
must contain "bench": everything in it is replaced unless --reuse.
"""

from __future__ import annotations

import argparse
import os

from bench import probe, report, schema, sweeps
from bench.generate import Options, generate
from bench.quick import DEFAULT_URL, REDIS_URL
from helpdesk import embedded


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__)
    p.add_argument("--tickets", type=int, required=True, help="tickets in all orgs together")
    p.add_argument("--comments-per-ticket", type=float, default=0.0)
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--due", type=int, default=1000)
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    p.add_argument("--reuse", action="store_true", help="keep the generated tickets")
    args = p.parse_args(argv)
    if "bench" not in embedded.database_name(args.database_url):
        p.error("the database name must contain 'bench': everything in it is replaced")
    if args.tickets < 1 or args.runs < 1 or args.due < 1:
        p.error("--tickets, --runs and --due must be at least 1")
    if args.reuse:
        schema.migrate(args.database_url)
        loaded: dict[str, object] = {"reused": True}
    else:
        opts = Options(args.tickets, comments_per_ticket=args.comments_per_ticket, force=True)
        loaded = generate(args.database_url, opts)
    print(f"data: {loaded}", flush=True)
    app = probe.build_app(args.database_url, REDIS_URL)
    with schema.connect(args.database_url) as conn:
        rows = sweeps.measure(app, conn, args.runs, args.due)
    app.extensions["helpdesk.engine"].dispose()
    print(f"\n{'case':<12} {'runs':>4} {'median ms':>10} {'max ms':>9} {'fired/run':>9} target")
    for r in rows:
        print(
            f"{r['case']:<12} {r['runs']:>4} {r['median_ms']:>10} {r['max_ms']:>9}"
            f" {r['fired_per_run']:>9} ≤ {r['target_ms']} ms"
        )
    params = {k: v for k, v in vars(args).items() if k != "database_url"}
    out = report.save(
        {"params": params, "load": loaded, "results": rows},
        f"sweep-{report.scale_label(args.tickets)}",
    )
    print(f"\nwrote {out.relative_to(report.ROOT)}")


if __name__ == "__main__":
    main()
