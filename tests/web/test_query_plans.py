"""Prepared statements are planned for their values every time (no generic plans).

The bug this guards against: psycopg prepares a statement after five executions and
Postgres then may reuse one generic plan; at a million tickets a search for a common word
went from 30 ms to 3.5 s on the tenth search of a connection.
"""

from __future__ import annotations

from flask import Flask
from sqlalchemy import func, select, text

from helpdesk.models import Ticket


def test_every_connection_plans_each_execution(app: Flask) -> None:
    engine = app.extensions["helpdesk.engine"]
    with engine.connect() as conn:
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        conn.rollback()  # set outside any transaction: a rollback does not undo it
        assert conn.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"


def test_a_repeated_search_never_runs_a_generic_plan(app: Flask) -> None:
    engine = app.extensions["helpdesk.engine"]
    query = func.websearch_to_tsquery("english", "printer")
    stmt = select(Ticket.id).where(Ticket.search_all.op("@@")(query), Ticket.org_id == 1)
    with engine.connect() as conn:
        for _ in range(12):  # prepared from the fifth; Postgres may go generic from the sixth
            conn.execute(stmt).all()
        plans = conn.execute(
            text(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
                " WHERE statement LIKE '%websearch_to_tsquery%'"
            )
        ).all()
    assert plans, "the search was never prepared: the check below would prove nothing"
    assert all(generic == 0 and custom > 0 for generic, custom in plans)
