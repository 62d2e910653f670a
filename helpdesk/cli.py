"""Flask commands: `flask --app wsgi seed demo`, `bootstrap`, `tokens create`, `sessions …`."""

from __future__ import annotations

import os
import secrets
from contextlib import AbstractContextManager

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.orm import Session

from helpdesk.audit_cli import audit_group
from helpdesk.db import session_scope
from helpdesk.flags_cli import flags_group
from helpdesk.services import api_tokens, auth, orgs, seed
from helpdesk.services.errors import ValidationError
from helpdesk.smoke import smoke
from helpdesk.tenancy import tenant_scope


def _sessions() -> AbstractContextManager[Session]:
    return session_scope(current_app.extensions["helpdesk.sessionmaker"])


@click.group("seed", cls=AppGroup)
def seed_group() -> None:
    """Load development data."""


@seed_group.command("demo")
def seed_demo() -> None:
    """Create the demo and acme orgs with users and ~50 tickets each (idempotent)."""
    if current_app.config["HELPDESK_ENV"] == "production":
        raise click.ClickException("refusing to seed demo data when HELPDESK_ENV=production")
    password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(12)
    with _sessions() as session:
        try:
            result = seed.seed_demo(session, password)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
    for slug in result.created_orgs:
        click.echo(f"created org {slug}")
    for slug in result.skipped_orgs:
        click.echo(f"org {slug} already exists: left unchanged")
    if result.created_orgs:
        shown = password if not os.environ.get("DEMO_PASSWORD") else "(the DEMO_PASSWORD value)"
        click.echo(f"demo logins: {', '.join(result.logins)}")
        click.echo(f"demo password: {shown}")


@click.command("bootstrap")
@with_appcontext
@click.option("--org-slug", required=True, help="URL name of the first organization")
@click.option("--org-name", required=True, help="Display name of the organization")
@click.option("--admin-email", required=True, help="Email of its first admin")
def bootstrap(org_slug: str, org_name: str, admin_email: str) -> None:
    """Create the first org and admin with a random password, printed once."""
    with _sessions() as session:
        try:
            result = seed.bootstrap(session, org_slug, org_name, admin_email)
        except ValidationError as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(f"created org {result.org.slug} with admin {result.admin_email}")
    click.echo(f"password (shown once, change it after logging in): {result.password}")


@click.group("tokens", cls=AppGroup)
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.option("--email", required=True, help="The user the token acts as")
@click.option("--org", "org_slug", required=True, help="The org the token is limited to")
@click.option("--name", default="cli", show_default=True, help="A label for the token")
def tokens_create(email: str, org_slug: str, name: str) -> None:
    """Create an API token and print it once."""
    with _sessions() as session:
        org = orgs.find_org(session, org_slug)
        user = orgs.find_user(session, email)
        if org is None or user is None:
            raise click.ClickException("no such org, or no such user")
        with tenant_scope(session, org.id):
            member = orgs.find_membership(session, org.id, user.id)
            if member is None:
                raise click.ClickException(f"{email} is not a member of {org_slug}")
            try:
                _token, plaintext = api_tokens.create_token(session, member, name)
            except ValidationError as exc:
                raise click.ClickException(str(exc)) from exc
    click.echo(plaintext)


@click.group("sessions", cls=AppGroup)
def sessions_group() -> None:
    """Manage login sessions."""


ROTATE_HINT = (
    "The other lever is SECRET_KEY: deploy a new one with the old one in "
    "SECRET_KEY_FALLBACKS for a grace period (cookies keep working until you drop it), or "
    "without it to cut every cookie and open form at once."
)


@sessions_group.command("revoke", epilog=ROTATE_HINT)
@click.option("--email", help="End every session of this user")
@click.option("--all", "everyone", is_flag=True, help="End every session of every user")
@click.option("--yes", is_flag=True, help="With --all: do not ask for confirmation")
def sessions_revoke(email: str | None, everyone: bool, yes: bool) -> None:
    """Log one user (--email) or every user (--all) out everywhere; audited."""
    if bool(email) == everyone:
        raise click.UsageError("give exactly one of --email E or --all")
    if email:
        _revoke_one(email)
        return
    if not yes:
        click.confirm("Log out every user of every organization?", abort=True)
    with _sessions() as session:
        count = auth.revoke_all_sessions(session, source="cli")
    click.echo(f"ended every session of {count} users (each must log in again)")
    click.echo(ROTATE_HINT)


@sessions_group.command("end")
@click.option("--email", required=True, help="The user whose sessions end")
def sessions_end(email: str) -> None:
    """Log a user out everywhere (alias of `sessions revoke --email`)."""
    _revoke_one(email)


def _revoke_one(email: str) -> None:
    with _sessions() as session:
        user = orgs.find_user(session, email)
        if user is None:
            raise click.ClickException("no such user")
        auth.revoke_sessions(session, user, source="cli")
    click.echo(f"ended every session of {user.email}")


@click.command("ceilings")
@with_appcontext
def ceilings_command() -> None:
    """List the per-token and per-user ceilings (fail open) with their current settings."""
    from helpdesk import ceilings, ratelimits

    for line in ceilings.describe(current_app, ratelimits.CEILINGS):
        click.echo(line)


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_group)
    app.cli.add_command(bootstrap)
    app.cli.add_command(tokens_group)
    app.cli.add_command(sessions_group)
    app.cli.add_command(audit_group)
    app.cli.add_command(flags_group)
    app.cli.add_command(smoke)
    app.cli.add_command(ceilings_command)
