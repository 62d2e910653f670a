"""`flask --app wsgi flags list` and `flask --app wsgi flags set NAME on|off [--reason TEXT]`.

The state is written to the database and audited (`flag.set` in the site chain, `via: cli`).
This command's process sees the change at once. Web processes and workers see it within
FLAG_CACHE_SECONDS. Only `on` and `off` are accepted (any case): the runbook, the audit log
and the page use one spelling, and a typo like `of` fails instead of guessing.
"""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from helpdesk.db import session_scope
from helpdesk.services import flags
from helpdesk.services.errors import ValidationError


@click.group("flags", cls=AppGroup)
def flags_group() -> None:
    """List and flip the site-wide feature flags (incident switches)."""


def _since(state: flags.FlagState) -> str:
    if state.updated_at is None:
        return "never changed"
    who = f" by {state.updated_by}" if state.updated_by else ""
    return f"since {state.updated_at:%Y-%m-%d %H:%M} UTC{who}"


@flags_group.command("list")
def list_command() -> None:
    """Print every flag: state, since when, by whom, why, and what turning it off does."""
    with session_scope(current_app.extensions["helpdesk.sessionmaker"]) as session:
        states = flags.list_flags(session)
    width = max(len(state.name) for state in states)
    for state in states:
        line = f"{state.name:<{width}}  {'on ' if state.enabled else 'off'}  {_since(state)}"
        if state.reason:
            line += f"  reason: {state.reason}"
        if state.env_switch and not current_app.config[state.env_switch]:
            line += f"  (also off: {state.env_switch}=false)"
        click.echo(line)
        click.echo(f"{'':<{width}}  {state.description}")


@flags_group.command("set")
@click.argument("name")
@click.argument("state", type=click.Choice(["on", "off"], case_sensitive=False))
@click.option("--reason", default="", help="Why (shown on /ops/flags and kept in the audit log)")
def set_command(name: str, state: str, reason: str) -> None:
    """Turn flag NAME on or off; `flags list` names every flag."""
    enabled = state.lower() == "on"
    with session_scope(current_app.extensions["helpdesk.sessionmaker"]) as session:
        try:
            changed = flags.set_flag(session, name, enabled, None, reason, via="cli")
        except ValidationError as exc:
            raise click.ClickException("; ".join(exc.errors.values())) from exc
    wanted = "on" if enabled else "off"
    if changed:
        seconds = current_app.config.get("FLAG_CACHE_SECONDS", flags.DEFAULT_CACHE_SECONDS)
        click.echo(f"{name} is now {wanted}; every process follows within {seconds} s (audited)")
    else:
        click.echo(f"{name} was already {wanted}; nothing changed (noted in the audit log)")
