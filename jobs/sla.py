"""The SLA sweep job, run every 10 s by `rq cron` (jobs/cron.py); the work is in services.

It takes no arguments: one run fires whatever is due now across all orgs (a deliberate
cross-org loop, hence `system_session`), batch by batch, and records itself in JobRun.
"""

from __future__ import annotations

from dataclasses import asdict

from helpdesk.db import utcnow
from helpdesk.services.sla_sweep import run_sweep
from jobs.context import system_session


def sweep() -> dict[str, int]:
    """Fire the SLA warnings and breaches that are due now; return what the run did."""
    with system_session() as session:
        result = run_sweep(session, utcnow())
    return asdict(result)
