"""`flask --app wsgi operators …`: who may open the ops tooling (/ops/rq).

Operators are a site-level flag on the account (`User.is_operator`), not an org role: they
see every org's jobs, so granting it is a deliberate command, never a web form.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from helpdesk.db import session_scope
from helpdesk.models import User
from helpdesk.services import orgs


@click.group("operators", cls=AppGroup)
def operators_group() -> None:
    """Grant, revoke and list site operators (access to /ops/rq)."""


def _set_operator(email: str, value: bool) -> User:
    with session_scope(current_app.extensions["helpdesk.sessionmaker"]) as session:
        user = orgs.find_user(session, email)
        if user is None:
            raise click.ClickException(
                f"no account with email {email!r}: the person must have an account first "
                "(an org admin adds them, or `flask --app wsgi bootstrap`)"
            )
        user.is_operator = value
        session.commit()
    return user


@operators_group.command("grant")
@click.option("--email", required=True, help="The account that becomes an operator")
def grant(email: str) -> None:
    """Make an account a site operator."""
    user = _set_operator(email, True)
    click.echo(f"{user.email} is now a site operator (can open /ops/rq)")


@operators_group.command("revoke")
@click.option("--email", required=True, help="The account that stops being an operator")
def revoke(email: str) -> None:
    """Take the site-operator flag away from an account."""
    user = _set_operator(email, False)
    click.echo(f"{user.email} is no longer a site operator")


@operators_group.command("list")
def list_operators() -> None:
    """Print every site operator's email."""
    with session_scope(current_app.extensions["helpdesk.sessionmaker"]) as session:
        emails = list(
            session.scalars(select(User.email).where(User.is_operator).order_by(User.email))
        )
    if not emails:
        click.echo("no site operators (grant one: flask --app wsgi operators grant --email E)")
    for email in emails:
        click.echo(email)
