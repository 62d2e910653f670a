"""The first migration creates everything, downgrades cleanly and matches the models."""

from __future__ import annotations

import psycopg
from alembic import command
from alembic.config import Config

from tests import conftest_services
from tests.conftest import run_migrations


def _scratch_url(database_url: str) -> str:
    """A scratch database named after the test database (parallel runs do not collide)."""
    base, sep, query = database_url.partition("?")
    prefix, name = base.rsplit("/", 1)
    return f"{prefix}/{name}_migrations{sep}{query}"


def _tables(url: str) -> set[str]:
    from helpdesk.embedded import libpq_url

    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_downgrade_upgrade_and_models_match(database_url: str) -> None:
    url = _scratch_url(database_url)
    conftest_services.recreate_database(url)
    run_migrations(url)
    expected = {
        "organizations", "users", "memberships", "tickets", "comments", "ticket_events",
        "api_tokens", "saved_views", "canned_replies", "alembic_version",
        "business_calendars", "sla_policies", "sla_pauses", "sla_events", "outbox_events",
        "deliveries", "webhook_endpoints", "notification_preferences", "job_runs",
        "access_tokens", "inbound_messages", "attachments", "audit_events", "audit_heads",
        "site_audit_events", "feature_flags", "password_resets",
    }  # fmt: skip
    assert _tables(url) == expected
    run_migrations(url, "base", down=True)
    assert _tables(url) == {"alembic_version"}
    run_migrations(url)
    config = Config("alembic.ini")
    config.attributes["url"] = url
    config.attributes["configure_logger"] = False
    command.check(config)  # raises if the models and the migrations disagree


def _ticket_before(database_url: str, revision: str, subject: str) -> str:
    """A scratch database at `revision` holding one org, one user and one ticket."""
    from helpdesk.embedded import libpq_url

    url = _scratch_url(database_url)
    conftest_services.recreate_database(url)
    run_migrations(url, revision)
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(
            "INSERT INTO organizations (id, slug, name, created_at) VALUES (1, 'o', 'O', now())"
        )
        conn.execute("INSERT INTO users (id, email, created_at) VALUES (1, 'u@o.test', now())")
        conn.execute(
            "INSERT INTO tickets (id, org_id, number, subject, status, priority, requester_id,"
            " created_at, updated_at) VALUES (1, 1, 1, %s, 'new', 'normal', 1, now(), now())",
            (subject,),
        )
    return libpq_url(url)


def test_search_migration_backfills_existing_tickets(database_url: str) -> None:
    """0002 fills both vectors for tickets written before it; internal notes only in one."""
    url = _ticket_before(database_url, "0001", "Printer jams")
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO comments (org_id, ticket_id, author_id, body_md, body_html, internal,"
            " channel, created_at) VALUES (1, 1, 1, 'paper everywhere', '', false, 'web', now()),"
            " (1, 1, 1, 'secret vendor zebracorn', '', true, 'web', now())"
        )
    run_migrations(_scratch_url(database_url))
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT search_all @@ to_tsquery('english', 'zebracorn'),"
            " search_public @@ to_tsquery('english', 'zebracorn'),"
            " search_public @@ to_tsquery('english', 'paper & printer') FROM tickets"
        ).fetchone()
    assert row == (True, False, True)


def test_subject_vector_migration_fills_existing_tickets(database_url: str) -> None:
    """0014 gives tickets written before it the subject vector search ranks by."""
    url = _ticket_before(database_url, "0013", "Printers jammed")
    run_migrations(_scratch_url(database_url))
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT search_subject::text FROM tickets").fetchone()
    assert row == ("'jam':2A 'printer':1A",)
