"""`flask --app wsgi audit verify [--org SLUG]`: walk the audit hash chains, report the first break.

Exit status: 0 when every chain checked is intact, 1 when one is broken, 2 for an unknown
org (a usage error). Each chain's outcome is also logged as a structured `audit.verify` event.
"""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from helpdesk.db import session_scope
from helpdesk.models import Organization
from helpdesk.services import audit, orgs
from helpdesk.tenancy import unscoped

log = logging.getLogger(__name__)


@click.group("audit", cls=AppGroup)
def audit_group() -> None:
    """Check the tamper-evident audit log."""


@audit_group.command("verify")
@click.option(
    "--org", "org_slug", help="Check only this org's chain (default: every org and the site)"
)
def verify_command(org_slug: str | None) -> None:
    """Verify the hash chains (exit 1 if broken).

    Without --org: every org's chain, then the site chain. One line per chain.
    """
    broken = False
    with session_scope(current_app.extensions["helpdesk.sessionmaker"]) as session:
        if org_slug is not None:
            org = orgs.find_org(session, org_slug)
            if org is None:
                raise click.BadParameter(f"there is no org {org_slug!r}", param_hint="--org")
            chains: list[tuple[str, int | None]] = [(f"org {org.slug}", org.id)]
        else:
            with unscoped(session):
                found = session.execute(select(Organization.slug, Organization.id)
                                        .order_by(Organization.slug)).all()  # fmt: skip
            chains = [(f"org {slug}", org_id) for slug, org_id in found] + [("site", None)]
        for label, org_id in chains:
            result = audit.verify(session, org_id)
            session.rollback()  # end the read transaction between chains
            broken = broken or not result.ok
            click.echo(describe(label, result))
            audit.log_outcome(log, result)
    if broken:
        raise SystemExit(1)


def describe(label: str, result: audit.Verification) -> str:
    """One line per chain: `org acme: 1234 events, intact (head …)` or `… BROKEN at seq 17: …`."""
    if result.ok:
        return f"{label}: {result.count} events, intact (head {result.head_hash[:16]})"
    return f"{label}: BROKEN at seq {result.broken_seq}: {result.reason}"
