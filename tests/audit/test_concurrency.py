"""Concurrent appends: every writer gets its own seq, no fork, no deadlock, verify stays green."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.models import Channel, Role
from helpdesk.services import audit, orgs, tickets
from helpdesk.tenancy import tenant_scope
from tests.audit.helpers import chain
from tests.factories import make_member, make_org

THREADS = 8
PER_THREAD = 25


def run_threads(app: Flask, work: Callable[[Session, int], None]) -> list[BaseException]:
    """Run work(session, thread_no) in THREADS threads at once, each with its own session."""
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        with app.app_context():
            session = app.extensions["helpdesk.sessionmaker"]()
            try:
                start.wait(timeout=30)
                work(session, n)
            except BaseException as exc:  # reported by the test, with the thread's error
                errors.append(exc)
            finally:
                session.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer is stuck"
    return errors


def test_concurrent_appends_to_one_org_take_every_seq_once(app: Flask, session: Session) -> None:
    org_id = make_org(session, "busy").id
    other = make_org(session, "calm").id

    def work(s: Session, n: int) -> None:
        for i in range(PER_THREAD):
            audit.record(s, org_id, "test.concurrent", data={"thread": n, "i": i})
            s.commit()

    assert run_threads(app, work) == []
    rows = chain(session, org_id)
    assert [r.seq for r in rows] == list(range(1, THREADS * PER_THREAD + 1))
    assert sorted((r.data["thread"], r.data["i"]) for r in rows) == [
        (n, i) for n in range(THREADS) for i in range(PER_THREAD)
    ]
    result = audit.verify(session, org_id)
    assert (result.ok, result.count) == (True, THREADS * PER_THREAD)
    assert chain(session, other) == []


def test_concurrent_transactions_writing_two_orgs_and_the_site_do_not_deadlock(
    app: Flask, session: Session
) -> None:
    """Each transaction appends to both orgs (in a random order) and the site chain."""
    alpha, beta = make_org(session, "alpha").id, make_org(session, "beta").id

    def work(s: Session, n: int) -> None:
        rng = random.Random(n)
        for i in range(PER_THREAD):
            pair = [alpha, beta]
            rng.shuffle(pair)
            for org_id in pair:
                audit.record(s, org_id, "test.mixed", data={"thread": n, "i": i})
            if i % 5 == 0:
                audit.record(s, None, "test.site", data={"thread": n})
            s.commit()

    assert run_threads(app, work) == []
    for org_id in (alpha, beta):
        rows = chain(session, org_id)
        assert [r.seq for r in rows] == list(range(1, THREADS * PER_THREAD + 1))
        assert audit.verify(session, org_id).ok
    site = audit.verify(session, None)
    assert (site.ok, site.count) == (True, THREADS * 5)


def test_audited_ticket_work_racing_on_one_org_does_not_deadlock(
    app: Flask, session: Session
) -> None:
    """New requesters (a membership event before the ticket number is taken) racing with
    known ones (ticket number first): the head lock is always taken last, so no deadlock."""
    org = make_org(session, "alpha")
    agent = make_member(session, org, Role.AGENT, "agent@alpha.test")
    known = make_member(session, org, Role.REQUESTER, "known@example.test").user.email
    before = audit.verify(session, org.id).count

    def work(s: Session, n: int) -> None:
        with tenant_scope(s, org.id):
            member = orgs.find_membership(s, org.id, agent.user_id)
            assert member is not None
            for i in range(4):
                email = known if (n + i) % 2 else f"new{n}-{i}@example.test"
                data = tickets.NewTicket(subject=f"race {n}/{i}", body="body",
                                         requester_email=email)  # fmt: skip
                ticket = tickets.open_ticket(s, member.org, member, data, Channel.WEB)
                tickets.update_fields(s, member, ticket.number, {"priority": "high"})

    errors: list[Any] = run_threads(app, work)
    assert errors == []
    result = audit.verify(session, org.id)
    assert result.ok
    created = [r for r in chain(session, org.id) if r.action == "ticket.created"]
    assert len(created) == THREADS * 4
    assert result.count - before == THREADS * 4 * 2 + THREADS * 2  # + the new memberships
