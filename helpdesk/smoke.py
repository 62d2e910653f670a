"""`flask --app wsgi smoke`: the post-deploy smoke check (database, /healthz, /readyz).

Run it after every deploy, migration or restore, from a host that reaches both the database
(`DATABASE_URL`) and the web address (`BASE_URL`, or `--base-url`). It only reads: one
count query in a read-only transaction and two GETs. Each check prints one line; a failed
check says what to look at, and any failure makes the command exit 1, so a deploy script
can stop on it. The browser half (log in, create, view and comment on a ticket) is
`make smoke-e2e` (scripts/smoke_e2e.py).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import click
from flask import current_app
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

TIMEOUT_SECONDS = 5.0
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Check:
    """The outcome of one smoke check; `hint` says what to look at when it failed."""

    name: str
    ok: bool
    detail: str
    hint: str = ""

    def line(self) -> str:
        """One printable line: status, name, detail and (on failure) the hint."""
        shown = f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"
        return shown if self.ok else f"{shown}\n      -> {self.hint}"


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    message = str(cause).strip().splitlines()
    return (message[0] if message else type(cause).__name__)[:200]


def check_database(engine: Engine) -> Check:
    """Count tickets and orgs across every org, read-only (no tenant: an ops query)."""
    try:
        with engine.connect().execution_options(postgresql_readonly=True) as conn:
            tickets = conn.execute(text("SELECT count(*) FROM tickets")).scalar_one()
            orgs = conn.execute(text("SELECT count(*) FROM organizations")).scalar_one()
    except SQLAlchemyError as exc:
        return Check(
            "database",
            False,
            f"query failed: {_first_line(exc)}",
            "check DATABASE_URL, that PostgreSQL is up, and `alembic current` (schema at head?)",
        )
    return Check("database", True, f"{tickets} ticket(s) in {orgs} org(s)")


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    if not url.startswith(("http://", "https://")):
        raise ValueError("the base URL must start with http:// or https://")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url, headers={"Accept": "application/json", "User-Agent": "helpdesk-smoke"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(MAX_BODY)


def _failing_checks(body: bytes) -> str:
    try:
        document: Any = json.loads(body)
        checks = document.get("checks", {})
        failing = [f"{name} ({c.get('detail', '?')})" for name, c in checks.items() if not c["ok"]]
    except (ValueError, AttributeError, KeyError, TypeError):
        return "the answer is not the app's health JSON"
    return "failing: " + ", ".join(failing) if failing else "no failing check listed"


def check_endpoint(base_url: str, path: str, timeout: float = TIMEOUT_SECONDS) -> Check:
    """GET base_url + path and expect 200 (a 503 names the failing checks)."""
    url = base_url.rstrip("/") + path
    name = f"GET {path}"
    try:
        status, body = _get(url, timeout)
    except ValueError as exc:
        return Check(name, False, str(exc), "pass --base-url http(s)://host[:port]")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check(
            name,
            False,
            f"no answer from {url} ({reason})",
            "is the web process running (its supervisor and logs), and is BASE_URL "
            "(or --base-url) its address?",
        )
    if status == 200:
        return Check(name, True, f"200 from {url}")
    return Check(
        name,
        False,
        f"{status} from {url}; {_failing_checks(body)}",
        "see docs/runbook.md, 'Observability and health checks': fix what is failing, "
        "then run the smoke again",
    )


def run_checks(engine: Engine, base_url: str, timeout: float = TIMEOUT_SECONDS) -> list[Check]:
    """Run every smoke check in order: database, /healthz, /readyz."""
    return [
        check_database(engine),
        check_endpoint(base_url, "/healthz", timeout),
        check_endpoint(base_url, "/readyz", timeout),
    ]


@click.command("smoke")
@click.option(
    "--base-url",
    default=None,
    help="Where the web app answers (default: the BASE_URL setting)",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1, 60),
    default=TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds each HTTP check waits",
)
def smoke(base_url: str | None, timeout: float) -> None:
    """Check the database and the web app's /healthz and /readyz after a deploy."""
    url = base_url or str(current_app.config["BASE_URL"])
    checks = run_checks(current_app.extensions["helpdesk.engine"], url, timeout)
    for check in checks:
        click.echo(check.line())
    failed = [c.name for c in checks if not c.ok]
    if failed:
        click.echo(f"smoke FAILED: {len(failed)} of {len(checks)} checks ({', '.join(failed)})")
        raise SystemExit(1)
    click.echo(f"smoke ok: all {len(checks)} checks passed")
