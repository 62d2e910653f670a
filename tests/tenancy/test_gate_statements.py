"""Statements built once and run for many orgs: the gate's per-statement memory.

The gate keeps its walk's answer and the scoped copy per statement object (and org), so
a statement built once per process costs no walk and no new cache key per run
(docs/performance.md, F13). These checks make sure that memory never answers for the
wrong org.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk import tenancy
from helpdesk.models import Ticket
from helpdesk.tenancy import tenant_scope
from tests.tenancy.gate_world import Data


def test_one_statement_object_run_for_each_org_sees_only_that_org(
    fresh: Session, data: Data
) -> None:
    """Statements built once run for every org; the gate keeps a scoped copy per org."""
    everything = select(Ticket.subject).order_by(Ticket.subject)
    runs = [data.alpha, data.beta, data.alpha, data.beta]
    seen = []
    for org_id in runs:
        with tenant_scope(fresh, org_id):
            seen.append(list(fresh.scalars(everything)))
    alpha = ["alpha ticket 1", "alpha ticket 2"]
    beta = ["beta ticket 1", "beta ticket 2", "beta ticket 3"]
    assert seen == [alpha, beta, alpha, beta]
    assert set(tenancy._SCOPED_COPIES[everything]) == {data.alpha, data.beta}

    # Past the cap the copies start over; a run still sees its own org only.
    for org_id in range(10**6, 10**6 + tenancy.SCOPED_ORGS_MAX):
        tenancy._scoped(everything, org_id)
    with tenant_scope(fresh, data.beta):
        assert list(fresh.scalars(everything)) == beta
    assert len(tenancy._SCOPED_COPIES[everything]) <= tenancy.SCOPED_ORGS_MAX
