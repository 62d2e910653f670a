"""In-process probes: SQL statements per request, and the plans of the hot list statements.

wrk sees HTTP, not SQL. So each endpoint is also requested through the Flask test client,
with a `before_cursor_execute` listener on the app's engine counting what it sends (three
times, after a warm-up request, to catch a count that varies). Every SELECT of a GET
request is then run again under `EXPLAIN (ANALYZE, BUFFERS)` with the parameters the app
used, so the report shows which statement the database time goes to.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from sqlalchemy import Engine, event
from werkzeug.test import TestResponse

from bench.endpoints import Context, Endpoint
from bench.stack import LIST_ROWS
from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.services import api_tokens, orgs
from helpdesk.tenancy import tenant_scope
from tests.browser import Browser

Statement = tuple[str, Any]


def build_app(url: str, redis_url: str) -> Flask:
    """The real app on the bench database, in-process (no rate limits in the way)."""
    return create_app(
        Settings(
            env="test",
            secret_key=secrets.token_urlsafe(36),
            database_url=url,
            redis_url=redis_url,
            login_limit_ip="100000 per minute",
            login_limit_account="100000 per minute",
            page_size=LIST_ROWS,
        )
    )


@contextmanager
def recording(engine: Engine) -> Iterator[list[Statement]]:
    """Every statement sent on the engine while inside, with its parameters."""
    seen: list[Statement] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def api_token(app: Flask, org: str, email: str) -> str:
    """A fresh API token for this member (what the API endpoint sends as Bearer)."""
    with app.extensions["helpdesk.sessionmaker"]() as session:
        user, found = orgs.find_user(session, email), orgs.find_org(session, org)
        if user is None or found is None:
            raise SystemExit(f"no user {email} or org {org} to create an API token for")
        with tenant_scope(session, found.id):
            member = orgs.find_membership(session, found.id, user.id)
            if member is None:
                raise SystemExit(f"{email} is not a member of {org}")
            return api_tokens.create_token(session, member, "bench")[1]


def caller(app: Flask, browser: Browser, ep: Endpoint, token: str) -> Callable[[int], TestResponse]:
    """A function making the endpoint's i-th request through the test client."""
    if ep.api:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        return lambda i: client.get(ep.paths[i % len(ep.paths)], headers=headers)
    if ep.method == "POST":
        return lambda i: browser.post(ep.paths[i % len(ep.paths)], dict(ep.form), htmx=ep.htmx)
    return lambda i: browser.get(ep.paths[i % len(ep.paths)], htmx=ep.htmx)


def probe(
    app: Flask, ctx: Context, password: str, eps: list[Endpoint], token: str
) -> dict[str, dict[str, Any]]:
    """SQL statements per request for each endpoint, and the list statement's plan."""
    browser = Browser(app.test_client())
    response = browser.login(ctx.agent_email, password)
    if response.status_code != 303:
        raise SystemExit(
            f"in-process login as {ctx.agent_email} failed ({response.status_code})"
            ": regenerate the database with this password"
        )
    engine = app.extensions["helpdesk.engine"]
    found: dict[str, dict[str, Any]] = {}
    for ep in eps:
        call = caller(app, browser, ep, token)
        offset = len(ep.paths) // 2 if ep.method == "POST" else 0  # warm-up replies elsewhere
        call(offset + 1).get_data()
        counts, statuses, plan = [], [], []
        for i in range(3):
            with recording(engine) as seen:
                response = call(offset + 2 + i)
                response.get_data()
            counts.append(len(seen))
            statuses.append(response.status_code)
            if i == 0 and ep.method == "GET":
                plan = explain(engine, seen)
        found[ep.key] = {"sql": counts, "statuses": statuses, "plan": plan}
    return found


def explain(engine: Engine, seen: list[Statement]) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) every SELECT of the request, as the app sent it."""
    plans = []
    for statement, params in seen:
        if not statement.lstrip().upper().startswith("SELECT") or "FOR UPDATE" in statement:
            continue
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            plan = [str(r) for r in rows.scalars()]
        timing = [p for p in plan if p.startswith("Execution Time")]
        plans.append(
            {
                "statement": statement,
                "params": repr(params),
                "plan": plan,
                "execution": timing[0] if timing else None,
            }
        )
    return plans
