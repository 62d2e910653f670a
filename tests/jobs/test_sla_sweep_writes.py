"""The SLA sweep's batched writes: outbox.emit_many, one UPDATE per batch, no leftovers."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from helpdesk.models import EventKind, OutboxEvent, Ticket
from helpdesk.services import outbox, tasks
from helpdesk.services.sla_sweep import run_sweep
from helpdesk.tenancy import unscoped
from tests.factories import make_ticket
from tests.jobs.conftest import T0, Clock, MakePolicy
from tests.jobs.notify_helpers import run_jobs
from tests.jobs.test_sla_sweep import M, sweep_at
from tests.sql_recording import statements_sent


def test_emit_many_writes_what_emit_writes_and_its_events_are_dispatched(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    mine = make_ticket(session, alpha["org"], alpha["agent"])
    theirs = make_ticket(session, beta["org"], beta["agent"])
    payload = {"target": "first_response", "level": "breach", "due_at": T0.isoformat()}
    specs = [  # (org, kind, ticket, actor, payload): with and without a ticket and an actor
        (alpha["org"].id, EventKind.SLA_BREACHED, mine, None, payload),
        (beta["org"].id, EventKind.SLA_WARNING, theirs, beta["agent"].user_id, {"level": "90%"}),
        (alpha["org"].id, EventKind.TICKET_UPDATED, None, alpha["agent"].user_id, None),
        (alpha["org"].id, EventKind.SLA_WARNING, mine, None, {"number": 99, "level": "75%"}),
    ]
    app.extensions["helpdesk.redis"].flushdb()  # only the jobs queued below
    with app.app_context(), unscoped(session):
        one_by_one = [
            outbox.emit(session, org, kind, ticket=t, actor_id=actor, payload=data)
            for org, kind, t, actor, data in specs
        ]
        session.commit()
        emitted = [e.id for e in one_by_one]
        jobs_before = len(tasks.get_queue("notify").get_jobs())
        events = [
            outbox.NewEvent(org, kind, t.id if t else None, t.number if t else None, actor, data)
            for org, kind, t, actor, data in specs
        ]
        ids = outbox.emit_many(session, events)
        session.commit()
        jobs = tasks.get_queue("notify").get_jobs()[jobs_before:]

    assert ids == sorted(ids) and len(ids) == len(specs) and min(ids) > max(emitted)
    with unscoped(session):
        rows = {
            row.id: (row.org_id, row.kind, row.ticket_id, row.actor_id, row.payload, row.request_id)
            for row in session.scalars(
                select(OutboxEvent).where(OutboxEvent.kind != "ticket.created")
            )
        }
        session.commit()
    assert [rows[i] for i in ids] == [rows[i] for i in emitted]  # same rows, in the same order
    assert rows[ids[0]][4] == {**payload, "number": mine.number}
    assert rows[ids[3]][4] == {"number": 99, "level": "75%"}  # the caller's number wins
    assert "number" not in rows[ids[2]][4]  # no ticket, no number
    # One dispatch job per org (in event order), run after the commit like emit's.
    calls = sorted((job.func_name, tuple(job.args)) for job in jobs)
    assert calls == sorted([
        ("jobs.notify.dispatch", (alpha["org"].id, ids[0], ids[2], ids[3])),
        ("jobs.notify.dispatch", (beta["org"].id, ids[1])),
    ])  # fmt: skip
    with app.app_context():
        run_jobs(app)
    with unscoped(session):
        waiting = session.scalars(
            select(OutboxEvent.id).where(
                OutboxEvent.id.in_(ids), OutboxEvent.dispatched_at.is_(None)
            )
        ).all()
        session.commit()
    assert waiting == []


def test_emit_many_rolls_back_with_the_transaction_and_queues_nothing(
    app: Flask, session: Session, world: dict[str, Any]
) -> None:
    alpha = world["alpha"]
    app.extensions["helpdesk.redis"].flushdb()
    with app.app_context(), unscoped(session):
        outbox.emit_many(session, [outbox.NewEvent(alpha["org"].id, EventKind.SLA_WARNING)])
        session.rollback()
        assert session.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        session.commit()
        assert tasks.get_queue("notify").get_jobs() == []
    assert outbox.emit_many(session, []) == []


def test_the_sweep_refreshes_tickets_the_callers_session_holds(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50])
    ticket = make_ticket(session, alpha["org"], alpha["agent"])  # held, never expired (commit)
    assert (ticket.sla_state, ticket.sla_next_check_at) == ("ok", T0 + 30 * M)

    run_sweep(session, T0 + 30 * M)  # writes the ticket with one UPDATE, not through the ORM
    with unscoped(session):
        assert (ticket.sla_state, ticket.sla_next_check_at) == ("warning", T0 + 60 * M)
        session.commit()


def test_a_batch_costs_the_same_statements_whatever_its_size(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    counts = []
    for size, slug in ((2, "alpha"), (40, "beta")):  # both opened at T0, swept one after the other
        side = world[slug]
        sla_policy(side["org"], "normal", 60, 240, warn_at_percent=[50])
        for n in range(size):
            make_ticket(session, side["org"], side["agent"], f"req{n}@{slug}.test")
        with statements_sent(app) as seen:
            result = sweep_at(app, T0 + 30 * M)
        assert (result.due, result.fired, result.announced) == (size, size, size)
        counts.append(len(seen))
    assert counts[0] == counts[1]
    with unscoped(session):
        states = session.execute(
            select(Ticket.sla_state, Ticket.sla_next_check_at, func.count()).group_by(
                Ticket.sla_state, Ticket.sla_next_check_at
            )
        ).all()
        session.commit()
    assert [tuple(s) for s in states] == [("warning", T0 + 60 * M, 42)]


def test_the_sweep_leaves_no_session_setting_behind(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    make_ticket(session, alpha["org"], alpha["agent"])
    assert sweep_at(app, T0 + 60 * M).fired == 1  # its batch ran with SET LOCAL plan_cache_mode

    engine = app.extensions["helpdesk.engine"]
    pooled = [engine.connect() for _ in range(engine.pool.checkedin())]
    try:  # every idle pooled connection, whichever one the sweep used
        modes = {conn.execute(text("SHOW plan_cache_mode")).scalar() for conn in pooled}
    finally:
        for conn in pooled:
            conn.close()
    assert modes == {"force_custom_plan"}
