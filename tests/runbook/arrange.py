"""What happens between runbook commands in the drills: data a real incident would have, a
supervisor stopping a worker, and the conditions that say a background process is up."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from alembic.config import Config
from alembic.script import ScriptDirectory
from redis import Redis
from rq import Queue
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from helpdesk import embedded
from helpdesk.db import make_sessionmaker
from helpdesk.models import Delivery, DeliveryStatus, EventKind, Membership, OutboxEvent, Role
from helpdesk.services import job_status
from helpdesk.services.health import MIGRATIONS, migration_heads
from helpdesk.tenancy import tenant_scope
from tests.factories import make_org, make_ticket
from tests.runbook.runner import Drill

JOBS_ORG = "drill-jobs"


def head_revision() -> str:
    """The code's single migration head."""
    (head,) = migration_heads()
    return head


def previous_revision() -> str:
    """The revision just below head (where `alembic downgrade -1` lands)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    down = ScriptDirectory.from_config(config).get_revision(head_revision()).down_revision
    assert isinstance(down, str), down
    return down


def _engine(drill: Drill, name: str) -> Engine:
    engine: Engine = drill.services["engines"][name]
    return engine


def _session(drill: Drill, name: str) -> Session:
    return make_sessionmaker(_engine(drill, name))()


def _redis(drill: Drill) -> Redis:
    """The jobs deployment's own Redis (the only scenario that runs workers)."""
    conn: Redis = drill.services["redis"]["jobs"]
    return conn


def check_dump(drill: Drill) -> None:
    """The backup is a custom-format archive (what pg_restore takes)."""
    head = Path(drill.values["<backup-file>"]).read_bytes()[:5]
    assert head == b"PGDMP", f"not a pg_dump -Fc archive: {head!r}"


def record_wrong_revision(drill: Drill) -> None:
    """Make the restored database record an older revision than its schema has."""
    url = embedded.libpq_url(drill.values["<new-database-url>"])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = %s", (previous_revision(),))


def use_restored(drill: Drill) -> None:
    """The web processes now serve the restored database (its own live server)."""
    drill.env["BASE_URL"] = drill.services["servers"].url("restored")


def open_ticket(drill: Drill) -> None:
    """An agent of the drill org opens a ticket; its number fills <ticket-number>."""
    slug = drill.values["<org-slug>"]
    with _session(drill, "accounts") as session:
        org_id = session.execute(
            text("SELECT id FROM organizations WHERE slug = :slug"), {"slug": slug}
        ).scalar_one()
        with tenant_scope(session, org_id):
            admin = session.scalars(select(Membership).where(Membership.role == Role.ADMIN)).one()
            ticket = make_ticket(session, admin.org, admin, subject="Runbook drill")
            drill.values["<ticket-number>"] = str(ticket.number)


def failing_job(drill: Drill) -> None:
    """Queue a job that raises (1 / 0) on the default queue; the next worker will run it."""
    Queue("default", connection=_redis(drill)).enqueue("operator.truediv", args=(1, 0))


def job_failed(drill: Drill) -> None:
    """Wait until the worker has run that job into the failed registry."""
    registry = Queue("default", connection=_redis(drill)).failed_job_registry
    deadline = time.monotonic() + 30
    while registry.count != 1:
        assert time.monotonic() < deadline, f"failed registry holds {registry.count} jobs, not 1"
        time.sleep(0.2)


def dead_delivery(drill: Drill) -> None:
    """A webhook delivery that gave up, in an org of the jobs database."""
    with _session(drill, "jobs") as session:
        org = make_org(session, JOBS_ORG)
        with tenant_scope(session, org.id):
            event = OutboxEvent(kind=EventKind.TICKET_CREATED.value, payload={})
            session.add(event)
            session.flush()
            session.add(
                Delivery(
                    event_id=event.id,
                    channel="webhook",
                    target="webhook:1",
                    status=DeliveryStatus.DEAD.value,
                    attempts=6,
                    last_error="HTTP 500 from the receiver",
                )
            )
            session.commit()


def worker_on(*queues: str) -> Callable[[Drill], bool]:
    """Ready condition: a live worker listens on exactly these queues."""

    def ready(drill: Drill) -> bool:
        return any(set(w.queues) == set(queues) for w in job_status.worker_status(_redis(drill)))

    return ready


def sweep_finished(drill: Drill) -> bool:
    """Ready condition for the cron: the SLA sweep it enqueued has run and finished."""
    with _engine(drill, "jobs").connect() as conn:
        finished = conn.execute(
            text("SELECT finished_at FROM job_runs WHERE name = :name"),
            {"name": job_status.SWEEP_JOB},
        ).scalar()
    return finished is not None


def stop(command: str) -> Callable[[Drill], None]:
    """The supervisor stops a background process (SIGTERM: warm shutdown)."""

    def action(drill: Drill) -> None:
        drill.stop(command)

    return action
