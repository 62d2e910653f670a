"""SLA sweep cost on generated data: nothing due, and 1,000 tickets due at once.

The sweep (`services.sla_sweep.run_sweep`, what the `sla` job runs every 10 s) is timed
in-process while no cron runs, so no other sweep takes the due tickets first:

* none due: after catching up with whatever came due since the data was generated, R
  runs with nothing due (one probe of the partial index `ix_tickets_sla_next_check`);
* 1,000 due: the same 1,000 tickets of orgs with SLA policies (unsolved ones first) get a
  first-response due time a minute ago and no earlier alerts, so each fires its 75 %, 90 %
  and breach levels and announces one breach (an outbox event and a dispatch job). After
  each run their SLA columns and alerts are put back and the run's outbox events deleted,
  so the generated data is left as it was.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask

from helpdesk.services.sla_sweep import run_sweep

SLA_COLUMNS = (
    "status, first_response_due_at, resolution_due_at, first_responded_at, solved_at,"
    " sla_paused_at, sla_next_check_at, sla_due_at, sla_state"
)
PICK_SQL = (
    "SELECT t.id FROM tickets t JOIN sla_policies p"
    " ON p.org_id = t.org_id AND p.priority = t.priority"
    " ORDER BY t.solved_at IS NOT NULL, md5(t.id::text) LIMIT %s"
)
MAKE_DUE_SQL = (
    "UPDATE tickets SET status = 'open', solved_at = NULL, sla_paused_at = NULL,"
    " first_responded_at = NULL, resolution_due_at = NULL, sla_state = 'ok',"
    " first_response_due_at = now() - interval '1 minute',"
    " sla_due_at = now() - interval '1 minute', sla_next_check_at = now() - interval '1 second'"
    " WHERE id = ANY(%s)"
)
RESTORE_SQL = (
    "DELETE FROM sla_events WHERE ticket_id = ANY(%(ids)s)",
    "INSERT INTO sla_events SELECT * FROM bench_due_events",
    f"UPDATE tickets t SET ({SLA_COLUMNS}) = (SELECT {SLA_COLUMNS} FROM bench_due d"  # noqa: S608
    " WHERE d.id = t.id) WHERE t.id = ANY(%(ids)s)",
    "DELETE FROM outbox_events WHERE id > %(outbox)s",
)


def _timed(app: Flask) -> dict[str, Any]:
    with app.app_context(), app.extensions["helpdesk.sessionmaker"]() as session:
        started = time.perf_counter()
        outcome = run_sweep(session, datetime.now(UTC))
        elapsed = time.perf_counter() - started
    return {
        "ms": round(elapsed * 1000, 2),
        "due": outcome.due,
        "fired": outcome.fired,
        "announced": outcome.announced,
    }


def summary(name: str, runs: list[dict[str, Any]], target_ms: float) -> dict[str, Any]:
    """Median and max of the runs, with what each run did."""
    times = [r["ms"] for r in runs]
    return {
        "case": name,
        "runs": len(runs),
        "median_ms": round(statistics.median(times), 2),
        "max_ms": max(times),
        "due_per_run": runs[-1]["due"],
        "fired_per_run": runs[-1]["fired"],
        "announced_per_run": runs[-1]["announced"],
        "target_ms": target_ms,
    }


def measure(app: Flask, conn: psycopg.Connection, runs: int, due: int) -> list[dict[str, Any]]:
    """Time R sweeps with nothing due and R with `due` tickets due; leave the data as found."""
    caught_up = [_timed(app), _timed(app)]  # fire what came due since generation; warm caches
    rows = [summary("none due", [_timed(app) for _ in range(runs)], 50)]
    ids = [r[0] for r in conn.execute(PICK_SQL, (due,))]
    if ids:
        conn.execute(
            f"CREATE TEMP TABLE bench_due AS SELECT id, {SLA_COLUMNS} FROM tickets"  # noqa: S608
            " WHERE id = ANY(%s)",
            (ids,),
        )
        conn.execute(
            "CREATE TEMP TABLE bench_due_events AS SELECT * FROM sla_events"
            " WHERE ticket_id = ANY(%s)",
            (ids,),
        )
        conn.commit()
        timed = []
        for _ in range(runs):
            outbox = conn.execute("SELECT coalesce(max(id), 0) FROM outbox_events").fetchone()
            conn.execute("DELETE FROM sla_events WHERE ticket_id = ANY(%s)", (ids,))
            conn.execute(MAKE_DUE_SQL, (ids,))
            conn.commit()
            timed.append(_timed(app))
            for statement in RESTORE_SQL:
                conn.execute(statement, {"ids": ids, "outbox": outbox[0] if outbox else 0})
            conn.commit()
        conn.execute("DROP TABLE bench_due, bench_due_events")
        conn.commit()
        rows.append(summary(f"{len(ids):,} due", timed, 1000))
    rows[0]["caught_up"] = caught_up[0]
    return rows
