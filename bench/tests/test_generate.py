"""The generated data is what the app itself would have written, and the load is safe."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import select

from bench import generate, load, schema
from bench.probe import build_app
from bench.tests.conftest import PASSWORD, TICKETS, Generated, database, run_generate
from helpdesk import embedded
from helpdesk.models import SlaEvent, SlaPolicy, Ticket
from helpdesk.rendering import render_markdown
from helpdesk.services import sla
from helpdesk.services.business_time import Calendar
from helpdesk.services.passwords import verify_password
from helpdesk.services.sla_sweep import run_sweep
from helpdesk.tenancy import unscoped
from tests.conftest_services import recreate_database

VECTOR = "setweight(to_tsvector('english'::regconfig, left(%s, 10000)), '{}')"
SLA_FIELDS = (
    "first_response_due_at",
    "resolution_due_at",
    "sla_next_check_at",
    "sla_due_at",
    "sla_state",
)


def test_last_line_names_the_largest_org_and_an_agent_who_can_log_in(generated: Generated) -> None:
    assert set(generated.stdout_last) == {"org", "agent_email", "tickets"}
    with generated.connect() as conn:
        top = conn.execute(
            "SELECT o.slug, count(*) FROM tickets t JOIN organizations o"
            " ON o.id = t.org_id GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
        ).fetchone()
        agent = conn.execute(
            "SELECT u.password_hash, m.role FROM users u JOIN memberships m ON m.user_id = u.id"
            " JOIN organizations o ON o.id = m.org_id WHERE u.email = %s AND o.slug = %s",
            (generated.stdout_last["agent_email"], generated.stdout_last["org"]),
        ).fetchone()
    assert top == (generated.stdout_last["org"], generated.stdout_last["tickets"])
    assert agent is not None and agent[1] == "agent"
    assert verify_password(agent[0], PASSWORD)


def test_few_large_orgs_many_small_and_tickets_numbered_in_creation_order(
    generated: Generated,
) -> None:
    with generated.connect() as conn:
        orgs = conn.execute(
            "SELECT o.slug, o.ticket_seq, count(t.id), max(t.number), count(DISTINCT t.number),"
            " (SELECT count(*) FROM memberships m WHERE m.org_id = o.id AND m.role = 'agent'),"
            " (SELECT count(*) FROM memberships m WHERE m.org_id = o.id AND m.role = 'requester')"
            " FROM organizations o LEFT JOIN tickets t ON t.org_id = o.id"
            " GROUP BY o.id ORDER BY count(t.id) DESC"
        ).fetchall()
        out_of_order = conn.execute(
            "SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER (ORDER BY id) AS back,"
            " number < lag(number) OVER (PARTITION BY org_id ORDER BY id) AS renumbered"
            " FROM tickets) x WHERE back OR renumbered"
        ).fetchone()
    assert len(orgs) == 8 and sum(o[2] for o in orgs) == TICKETS
    _slug, _seq, count, _top, _distinct, agents, requesters = orgs[0]
    assert count >= TICKETS // 2 and agents == 50 and requesters >= 1000
    assert all(o[2] < count // 5 for o in orgs[2:])  # the rest are small
    assert all(o[1] == o[2] == o[3] == o[4] for o in orgs if o[2])  # 1..n, ticket_seq = n
    assert out_of_order == (0,)


def test_statuses_follow_age_and_conversations_are_coherent(generated: Generated) -> None:
    with generated.connect() as conn:
        old: dict[str, int] = dict(
            conn.execute(
                "SELECT status, count(*) FROM tickets WHERE created_at < %s GROUP BY 1",
                (generated.now - timedelta(days=60),),
            ).fetchall()
        )
        broken = conn.execute("""
            SELECT count(*) FROM tickets t, LATERAL (
              SELECT min(c.created_at) AS first_at, max(c.created_at) AS last_at,
                (array_agg(c.author_id ORDER BY c.id))[1] AS first_author,
                min(c.created_at) FILTER (WHERE c.author_id <> t.requester_id AND NOT c.internal)
                  AS answered,
                count(*) FILTER (WHERE c.author_id <> t.requester_id) AS staff,
                bool_and(c.created_at >= t.created_at) AS after_open
              FROM comments c WHERE c.ticket_id = t.id) c
            WHERE c.first_at IS NOT NULL AND (c.first_author <> t.requester_id OR
              NOT c.after_open OR c.last_at > t.updated_at OR
              t.first_responded_at IS DISTINCT FROM c.answered OR
              (t.status = 'new' AND c.staff > 0))""").fetchone()
        unordered = conn.execute(
            "SELECT count(*) FROM (SELECT created_at < lag(created_at) OVER"
            " (PARTITION BY ticket_id ORDER BY id) AS back FROM comments) x WHERE back"
        ).fetchone()
        per_ticket = conn.execute(
            "SELECT sum(n)::float / (SELECT count(*) FROM tickets), max(n) FROM"
            " (SELECT count(*) AS n FROM comments GROUP BY ticket_id) x"
        ).fetchone()
        hundreds = conn.execute(  # the measured 100-message size, in every org that has one
            "SELECT array_agg(DISTINCT (SELECT count(*) FROM comments c WHERE c.ticket_id = t.id))"
            " FROM tickets t WHERE t.number % 2500 = 625"
        ).fetchone()
    assert old["closed"] > 0.8 * sum(old.values())
    assert broken == (0,) and unordered == (0,)
    assert per_ticket is not None and 4.5 <= per_ticket[0] <= 5.5 and per_ticket[1] >= 200
    assert hundreds == ([100],)


def test_every_reference_points_inside_the_ticket_org(generated: Generated) -> None:
    checks = {
        "comment author outside the org": "SELECT count(*) FROM comments c LEFT JOIN memberships"
        " m ON m.user_id = c.author_id AND m.org_id = c.org_id WHERE m.id IS NULL",
        "comment on a missing ticket": "SELECT count(*) FROM comments c LEFT JOIN tickets t"
        " ON t.id = c.ticket_id AND t.org_id = c.org_id WHERE t.id IS NULL",
        "assignee not staff": "SELECT count(*) FROM tickets t LEFT JOIN memberships m"
        " ON m.user_id = t.assignee_id AND m.org_id = t.org_id AND m.role <> 'requester'"
        " WHERE t.assignee_id IS NOT NULL AND m.id IS NULL",
        "requester not a requester": "SELECT count(*) FROM tickets t LEFT JOIN memberships m"
        " ON m.user_id = t.requester_id AND m.org_id = t.org_id AND m.role = 'requester'"
        " WHERE m.id IS NULL",
        "orphan rows": "SELECT (SELECT count(*) FROM ticket_events e LEFT JOIN tickets t"
        " ON t.id = e.ticket_id AND t.org_id = e.org_id WHERE t.id IS NULL)"
        " + (SELECT count(*) FROM sla_events e LEFT JOIN tickets t ON t.id = e.ticket_id"
        " AND t.org_id = e.org_id WHERE t.id IS NULL)",
    }
    with generated.connect() as conn:
        found = {name: conn.execute(q).fetchone() for name, q in checks.items()}
    assert found == {name: (0,) for name in checks}


def test_message_html_is_the_apps_own_rendering(generated: Generated) -> None:
    with generated.connect() as conn:
        pairs = conn.execute("SELECT DISTINCT body_md, body_html FROM comments").fetchall()
    assert len(pairs) > 100
    assert [md for md, html in pairs if str(render_markdown(md)) != html] == []


def test_search_vectors_equal_the_apps_concatenation(generated: Generated) -> None:
    with generated.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM tickets WHERE id % 40 = 0 OR id IN (SELECT ticket_id FROM comments"
                " GROUP BY ticket_id HAVING count(*) >= 200 OR bool_or(internal))"
                " ORDER BY id LIMIT 400"
            )
        ]
        mismatched = []
        for tid in ids:
            subject, search_all, search_public = conn.execute(
                "SELECT subject, search_all::text, search_public::text FROM tickets WHERE id = %s",
                (tid,),
            ).fetchone() or ("", "", "")
            rows = conn.execute(
                "SELECT body_md, internal FROM comments WHERE ticket_id = %s ORDER BY id", (tid,)
            ).fetchall()
            for stored, bodies in (
                (search_all, [b for b, _ in rows]),
                (search_public, [b for b, i in rows if not i]),
            ):
                sql = " || ".join([VECTOR.format("A")] + [VECTOR.format("B")] * len(bodies))
                expected = conn.execute(f"SELECT ({sql})::text", [subject, *bodies]).fetchone()
                if expected is None or expected[0] != stored:
                    mismatched.append(tid)
    assert len(ids) > 50 and mismatched == []


def test_sla_fields_are_what_the_engine_computes(generated: Generated, redis_url: str) -> None:
    app = build_app(generated.url, redis_url)
    checked = 0
    sessions = app.extensions["helpdesk.sessionmaker"]
    with app.app_context(), sessions() as session, unscoped(session):
        policies = {(p.org_id, p.priority): p for p in session.scalars(select(SlaPolicy))}
        fired: dict[int, dict[tuple[str, str], SlaEvent]] = {}
        for event in session.scalars(select(SlaEvent)):
            fired.setdefault(event.ticket_id, {})[(event.target, event.level)] = event
        for ticket in session.scalars(select(Ticket).where(Ticket.sla_state.is_not(None))):
            policy = policies[(ticket.org_id, ticket.priority)]
            events = fired.get(ticket.id, {})
            if ticket.solved_at is not None:
                assert ticket.sla_next_check_at is None and ticket.sla_due_at is None
                breached = any(level == "breach" for _t, level in events)
                assert (ticket.sla_state == "breached") == breached, ticket.id
                continue
            thresholds = sla.thresholds_of(ticket, policy, Calendar.always())
            for t in thresholds:
                if t.key in events:
                    gap = abs(events[t.key].threshold_at - t.at)
                    assert gap < timedelta(milliseconds=1), (ticket.id, t.key)
            stored = {f: getattr(ticket, f) for f in SLA_FIELDS}
            sla.refresh(ticket, thresholds, set(events), generated.now)
            assert _same(stored, {f: getattr(ticket, f) for f in SLA_FIELDS}), ticket.id
            checked += 1
        session.rollback()
    app.extensions["helpdesk.engine"].dispose()
    assert checked > 50


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    for key, value in a.items():
        other = b[key]
        if hasattr(value, "tzinfo") and hasattr(other, "tzinfo"):
            if abs(value - other) > timedelta(milliseconds=1):  # type: ignore[operator]
                return False
        elif value != other:
            return False
    return True


def test_the_sweep_finds_nothing_due_when_the_data_ends(
    generated: Generated, redis_url: str
) -> None:
    app = build_app(generated.url, redis_url)
    with app.app_context(), app.extensions["helpdesk.sessionmaker"]() as session:
        result = run_sweep(session, generated.now)
        later = run_sweep(session, generated.now + timedelta(days=3))
    app.extensions["helpdesk.engine"].dispose()
    assert result.due == 0
    assert later.due > 0  # there are open tickets whose thresholds are still ahead


def test_indexes_and_constraints_end_as_the_migrations_made_them(generated: Generated) -> None:
    fresh = database("helpdesk_bench_test_schema")
    recreate_database(fresh)
    schema.migrate(fresh)
    with schema.connect(fresh) as a, schema.connect(generated.url) as b:
        assert schema.schema_snapshot(a) == schema.schema_snapshot(b)


def test_refuses_a_database_with_other_data_unless_forced() -> None:
    url = database("helpdesk_bench_test_foreign")
    recreate_database(url)
    schema.migrate(url)
    with psycopg.connect(embedded.libpq_url(url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO organizations (slug, name, created_at) VALUES"
            " ('real', 'Real customer', now())"
        )
    refused = run_generate(url, tickets=50)
    assert refused.returncode != 0
    assert "refusing" in refused.stderr and "--force" in refused.stderr
    forced = run_generate(url, "--force", tickets=50)
    assert forced.returncode == 0, forced.stderr
    with psycopg.connect(embedded.libpq_url(url)) as conn:
        assert (schema.marker(conn) or {}).get("state") == "complete"
        assert conn.execute(
            "SELECT count(*) FROM organizations WHERE slug = 'real'"
        ).fetchone() == (0,)


def _digest(url: str) -> str:
    queries = [
        "SELECT t::text FROM tickets t ORDER BY id",
        "SELECT concat_ws('|', ticket_id, author_id, created_at, body_md, internal, channel,"
        " message_id) FROM comments ORDER BY ticket_id, created_at, body_md",
        "SELECT concat_ws('|', ticket_id, field, old_value, new_value, created_at)"
        " FROM ticket_events ORDER BY 1",
        "SELECT concat_ws('|', ticket_id, target, level, threshold_at) FROM sla_events ORDER BY 1",
        "SELECT concat_ws('|', id, email, name) FROM users ORDER BY id",
    ]
    digest = hashlib.sha256()
    with psycopg.connect(embedded.libpq_url(url)) as conn:
        for query in queries:
            for (text,) in conn.execute(query):
                digest.update(text.encode())
    return digest.hexdigest()


def test_same_options_give_the_same_data_however_the_load_is_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = database("helpdesk_bench_test_again")
    monkeypatch.setattr(load, "BLOCK", 500)  # several blocks and two processes at 2,000 tickets
    opts = generate.Options(
        2000,
        orgs=5,
        password=PASSWORD,
        seed=7,
        now=generate.datetime.fromisoformat("2026-11-20T12:00:00+00:00"),
    )
    digests = []
    for jobs in (1, 2):
        opts.jobs = jobs
        generate.generate(url, opts, log=lambda _m: None)
        digests.append(_digest(url))
    assert digests[0] == digests[1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tickets", "0"], "--tickets must be between 1"),
        (["--tickets", "10", "--orgs", "20"], "--orgs must be between 1 and 1,000"),
        (["--tickets", "10", "--password", "short"], "--password: use at least 10"),
        (["--tickets", "10", "--now", "yesterday"], "--now must be an ISO time"),
        (["--tickets", "10", "--now", "2026-11-20T12:00:00"], "--now needs a UTC offset"),
        (["--tickets", "10", "--database-url", ""], "set DATABASE_URL or pass --database-url"),
    ],
)
def test_bad_options_say_what_to_change(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        generate.parse_args(
            [
                *argv,
                *(
                    []
                    if "--database-url" in argv
                    else ["--database-url", "postgresql://x/helpdesk_bench"]
                ),
            ]
        )
    assert message in capsys.readouterr().err


def test_ticket_counts_sum_to_the_total_and_favour_the_large_orgs() -> None:
    from bench.shape import ticket_counts

    for total, orgs in ((1, 1), (10, 3), (1000, 40), (1_000_000, 40), (7, 7)):
        counts = ticket_counts(total, orgs)
        assert sum(counts) == total and len(counts) == orgs
    assert ticket_counts(1_000_000, 40)[:3] == [600_000, 150_000, 100_000]
