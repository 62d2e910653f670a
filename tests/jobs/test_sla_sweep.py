"""The SLA sweep: thresholds fire in order and once, alerts reach the outbox, races are safe."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import JobRun, OutboxEvent, SlaEvent, SlaPolicy, Ticket
from helpdesk.services import tasks, tickets
from helpdesk.services.sla_sweep import SweepResult, due_tickets_query, run_sweep
from helpdesk.tenancy import tenant_scope, unscoped
from jobs import sla as sla_job
from tests.factories import make_ticket
from tests.jobs.conftest import T0, Clock, MakePolicy
from tests.jobs.notify_helpers import run_jobs

M = timedelta(minutes=1)
SLA_KINDS = ("sla.warning", "sla.breached")


def sweep_at(app: Flask, when: datetime, **kw: Any) -> SweepResult:
    """Run the sweep as the job does (own session, app context) with `now` = when."""
    with app.app_context():
        session = app.extensions["helpdesk.sessionmaker"]()
        try:
            return run_sweep(session, when, **kw)
        finally:
            session.close()


def sla_outbox(session: Session) -> list[tuple[int, str, dict[str, Any]]]:
    """(ticket id, kind, payload) of every SLA outbox event, oldest first."""
    session.expire_all()
    with unscoped(session):
        rows = session.execute(
            select(OutboxEvent.ticket_id, OutboxEvent.kind, OutboxEvent.payload)
            .where(OutboxEvent.kind.in_(SLA_KINDS))
            .order_by(OutboxEvent.id)
        )
        result = [(int(t or 0), kind, payload) for t, kind, payload in rows]
        session.commit()
    return result


def fired(session: Session) -> list[tuple[int, str, str]]:
    with unscoped(session):
        rows = session.execute(
            select(SlaEvent.ticket_id, SlaEvent.target, SlaEvent.level).order_by(SlaEvent.id)
        )
        result = [(t, target, level) for t, target, level in rows]
        session.commit()
    return result


def ticket_row(session: Session, ticket_id: int) -> Ticket:
    session.expire_all()
    with unscoped(session):
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        session.commit()
    return ticket


def test_thresholds_fire_in_order_once_each(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50, 90])
    ticket = make_ticket(session, alpha["org"], alpha["agent"])
    other = make_ticket(session, world["beta"]["org"], world["beta"]["agent"])  # no policy

    assert sweep_at(app, T0 + 29 * M).due == 0
    assert ticket_row(session, ticket.id).sla_state == "ok"

    result = sweep_at(app, T0 + 30 * M)
    assert (result.due, result.fired, result.announced) == (1, 1, 1)
    assert sweep_at(app, T0 + 30 * M).fired == 0  # repeated: nothing new
    row = ticket_row(session, ticket.id)
    assert row.sla_state == "warning"
    assert row.sla_next_check_at == T0 + 54 * M

    assert sweep_at(app, T0 + 54 * M).fired == 1
    assert sweep_at(app, T0 + 59 * M).fired == 0
    assert sweep_at(app, T0 + 60 * M).fired == 1
    row = ticket_row(session, ticket.id)
    assert row.sla_state == "breached"
    assert row.sla_next_check_at == T0 + 120 * M  # resolution's 50 %

    due = (T0 + 60 * M).isoformat()
    assert fired(session) == [
        (ticket.id, "first_response", "50%"),
        (ticket.id, "first_response", "90%"),
        (ticket.id, "first_response", "breach"),
    ]
    expected = [("sla.warning", "50%"), ("sla.warning", "90%"), ("sla.breached", "breach")]
    assert sla_outbox(session) == [
        (ticket.id, kind, {"target": "first_response", "level": level, "due_at": due, "number": 1})
        for kind, level in expected
    ]
    assert ticket_row(session, other.id).sla_state is None


def test_events_threshold_and_due_are_recorded(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240, warn_before_minutes=[10])
    ticket = make_ticket(session, alpha["org"], alpha["agent"])
    sweep_at(app, T0 + 50 * M)

    with tenant_scope(session, alpha["org"].id):
        event = session.scalars(select(SlaEvent)).one()
        assert (event.target, event.level) == ("first_response", "10m")
        assert (event.threshold_at, event.due_at) == (T0 + 50 * M, T0 + 60 * M)
        assert (event.org_id, event.ticket_id) == (alpha["org"].id, ticket.id)
        assert event.fired_at == T0 + 50 * M
        session.commit()


def test_a_met_target_stops_its_checks_and_its_warning_no_longer_counts(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50])
    ticket = make_ticket(session, alpha["org"], alpha["agent"])
    sweep_at(app, T0 + 30 * M)
    assert ticket_row(session, ticket.id).sla_state == "warning"

    clock.at(T0 + 31 * M)
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["agent"], 1, "On it.")
    row = ticket_row(session, ticket.id)
    assert row.sla_state == "ok"
    assert row.sla_next_check_at == T0 + 120 * M
    assert sweep_at(app, T0 + 61 * M).fired == 0  # no first-response breach once answered


def test_solved_keeps_the_breached_state_and_is_never_swept(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    ticket = make_ticket(session, alpha["org"], alpha["agent"])
    sweep_at(app, T0 + 60 * M)
    clock.at(T0 + 61 * M)
    with tenant_scope(session, alpha["org"].id):
        tickets.update_fields(session, alpha["agent"], 1, {"status": "solved"})

    row = ticket_row(session, ticket.id)
    assert (row.sla_state, row.sla_next_check_at) == ("breached", None)
    assert sweep_at(app, T0 + 10_000 * M).due == 0
    assert len(fired(session)) == 1


def test_paused_tickets_are_not_swept(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50])
    make_ticket(session, alpha["org"], alpha["agent"])
    clock.at(T0 + 10 * M)
    with tenant_scope(session, alpha["org"].id):
        tickets.update_fields(session, alpha["agent"], 1, {"status": "on_hold"})
    assert sweep_at(app, T0 + 10_000 * M).due == 0
    assert fired(session) == []


def test_missed_thresholds_are_all_recorded_but_only_the_worst_is_announced(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50, 90])
    ticket = make_ticket(session, alpha["org"], alpha["agent"])

    result = sweep_at(app, T0 + 5 * 60 * M)  # the sweep was down for hours
    assert (result.fired, result.announced) == (6, 2)
    assert len(fired(session)) == 6
    announced = [(kind, p["target"], p["level"]) for _, kind, p in sla_outbox(session)]
    assert announced == [
        ("sla.breached", "first_response", "breach"),
        ("sla.breached", "resolution", "breach"),
    ]
    row = ticket_row(session, ticket.id)
    assert (row.sla_state, row.sla_next_check_at) == ("breached", None)
    assert sweep_at(app, T0 + 6 * 60 * M).due == 0


def test_a_deleted_policy_keeps_the_promised_breach_but_no_warnings(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    policy = sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50])
    ticket = make_ticket(session, alpha["org"], alpha["agent"])
    with tenant_scope(session, alpha["org"].id):
        session.delete(session.get(SlaPolicy, policy.id))
        session.commit()

    assert sweep_at(app, T0 + 30 * M).fired == 0  # the 50 % warning went with the policy
    row = ticket_row(session, ticket.id)
    assert row.first_response_due_at == T0 + 60 * M
    assert row.sla_next_check_at == T0 + 60 * M
    assert sweep_at(app, T0 + 60 * M).fired == 1
    assert fired(session) == [(ticket.id, "first_response", "breach")]


def test_the_sweep_rereads_tickets_its_session_already_holds(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    sla_policy(alpha["org"], "urgent", 15, 60)
    ticket = make_ticket(session, alpha["org"], alpha["agent"])  # now in session's identity map
    clock.at(T0 + 1 * M)
    other = app.extensions["helpdesk.sessionmaker"]()
    try:
        with tenant_scope(other, alpha["org"].id):
            tickets.update_fields(other, alpha["agent"], 1, {"priority": "urgent"})
    finally:
        other.close()

    run_sweep(session, T0 + 20 * M)
    assert fired(session) == [(ticket.id, "first_response", "breach")]
    (_, _, payload) = sla_outbox(session)[0]
    assert payload["due_at"] == (T0 + 15 * M).isoformat()


def test_announcements_are_dispatched_after_commit(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    make_ticket(session, alpha["org"], alpha["agent"])
    sweep_at(app, T0 + 60 * M)

    with unscoped(session):
        event_id = session.scalars(
            select(OutboxEvent.id).where(OutboxEvent.kind == "sla.breached")
        ).one()
        session.commit()
    with app.app_context():
        jobs = tasks.get_queue("notify").get_jobs()
    calls = [(job.func_name, job.args) for job in jobs]
    # Only the sweep ran inside an app context: its one announcement is the one job.
    assert calls == [("jobs.notify.dispatch", (alpha["org"].id, event_id))]


def test_the_job_records_its_run(
    app: Flask, session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 1, 240)
    clock.at(datetime.now(UTC) - 2 * M)  # the job sweeps at the real time: already due
    make_ticket(session, alpha["org"], alpha["agent"])

    with app.app_context():
        first = sla_job.sweep()
        second = sla_job.sweep()
    assert first == {"due": 1, "fired": 1, "announced": 1, "batches": 1}
    assert second["fired"] == 0

    with unscoped(session):
        runs = session.scalars(select(JobRun)).all()
        session.commit()
    assert [run.name for run in runs] == ["sla.sweep"]
    run = runs[0]
    assert run.finished_at is not None and run.finished_at >= run.started_at
    assert run.duration_ms is not None and run.duration_ms >= 0
    assert run.info == {"due": 0, "fired": 0, "announced": 0}


def test_two_concurrent_sweeps_fire_each_level_exactly_once(
    app: Flask, session: Session, world: dict[str, Any], sla_policy: MakePolicy
) -> None:
    for slug in ("alpha", "beta"):
        side = world[slug]
        sla_policy(side["org"], "normal", 60, 120, warn_at_percent=[50])
        for n in range(100):
            make_ticket(session, side["org"], side["agent"], f"req{n}@{slug}.test")
    now = datetime.now(UTC) + 3 * 60 * M  # everything is due: 2 targets x (50 % + breach)
    results: list[SweepResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def worker() -> None:
        try:
            start.wait(timeout=10)
            results.append(sweep_at(app, now, batch_size=15))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == 2

    events = fired(session)
    assert len(events) == len(set(events)) == 200 * 4
    assert sum(r.fired for r in results) == 800
    outbox = sla_outbox(session)
    keys = [(t, p["target"], p["level"]) for t, _kind, p in outbox]
    assert len(keys) == len(set(keys)) == 200 * 2  # one announcement per target: the breach
    assert sum(r.announced for r in results) == 400
    with unscoped(session):
        states = session.execute(
            select(Ticket.sla_state, func.count()).group_by(Ticket.sla_state)
        ).all()
        session.commit()
    assert [tuple(s) for s in states] == [("breached", 200)]


def test_the_sweep_select_uses_the_partial_index(app: Flask) -> None:
    stmt = due_tickets_query(datetime.now(UTC), 500)
    with app.extensions["helpdesk.engine"].connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect)
        sql = str(compiled)
        assert "tickets.sla_next_check_at <=" in sql
        assert "FOR UPDATE OF tickets SKIP LOCKED" in sql
        # Tiny test tables would make a sequential scan cheapest; forbid it to see the index
        # is usable at all (sla_next_check_at <= x implies the index predicate IS NOT NULL).
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, compiled.params))
        conn.rollback()
    assert "ix_tickets_sla_next_check" in plan
    assert "Seq Scan" not in plan
    # The range is an index condition: only due tickets are read, however many are open.
    assert "Index Cond: (sla_next_check_at <=" in plan


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"when": datetime(2027, 1, 1)}, "timezone-aware"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
])  # fmt: skip
def test_bad_arguments_are_refused(
    app: Flask, session: Session, kwargs: dict[str, Any], message: str
) -> None:
    when = kwargs.pop("when", T0)
    with pytest.raises(ValueError, match=message):
        run_sweep(session, when, **kwargs)


def test_a_large_sweep_queues_one_dispatch_job_per_org_and_hundred_events(
    app: Flask, session: Session, world: dict[str, Any], sla_policy: MakePolicy
) -> None:
    for slug, count in (("alpha", 130), ("beta", 3)):
        side = world[slug]
        sla_policy(side["org"], "normal", 60, 120, warn_at_percent=[50])
        for n in range(count):
            make_ticket(session, side["org"], side["agent"], f"req{n}@{slug}.test")
    now = datetime.now(UTC) + 3 * 60 * M  # both targets breached on every ticket
    assert sweep_at(app, now).announced == 2 * 133

    queue = tasks.get_queue("notify", app.extensions["helpdesk.redis"])
    jobs = [job for job in queue.get_jobs() if job.func_name == "jobs.notify.dispatch"]
    by_org = sorted((job.args[0], len(job.args) - 1) for job in jobs)
    alpha, beta = world["alpha"]["org"].id, world["beta"]["org"].id
    assert by_org == sorted([(alpha, 100), (alpha, 100), (alpha, 60), (beta, 6)])
    with app.app_context():
        run_jobs(app)
    with unscoped(session):
        waiting = session.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.kind.in_(SLA_KINDS), OutboxEvent.dispatched_at.is_(None))
        )
        session.commit()
    assert waiting == 0


# --- set-based writes: the bulk outbox path and the ticket UPDATE -------------------------------
