"""A whole working day through the app with the production log handler attached: every line
is one JSON object, and no email, password, token, cookie value or full client IP leaks."""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services import access_links, api_tokens
from helpdesk.services.tasks import QUEUES
from helpdesk.tenancy import tenant_scope
from jobs.worker import build_worker
from tests.browser import Browser, as_user
from tests.factories import make_ticket
from tests.observability.conftest import CapturedLines
from tests.web.request_form_helpers import submit

AGENT_IP = "198.51.100.23"
REQUESTER_IP = "203.0.113.77"
API_IP = "2001:db8:85a3:7:8a2e:370:7334:1"
NEW_REQUESTER = "new.person@example.test"
FORM_SENDER = "pat.form@example.test"
WRONG_PASSWORD = "Wr0ng-but-secret-pa55"  # must never reach a log line
NEW_PASSWORD = "brand-new-Secret-9876"


def _agent_day(app: Flask, world: dict[str, Any], password: str) -> tuple[Browser, list[str]]:
    """Log in badly and well, open a ticket, reply, change the password (badly)."""
    far = {"REMOTE_ADDR": AGENT_IP}
    stranger = Browser(app.test_client())
    stranger.get("/login", environ_base=far)
    bad = stranger.post(
        "/login", {"email": "agent@alpha.test", "password": WRONG_PASSWORD}, environ_base=far
    )
    assert bad.status_code in (200, 401, 422)
    agent = as_user(app, "agent@alpha.test", password)
    new = {"subject": "VPN down", "body": "My phone is +1 555 0100", "priority": "high",
           "requester_email": NEW_REQUESTER, "requester_name": "New Person"}  # fmt: skip
    assert agent.post("/o/alpha/tickets", new, environ_base=far).status_code == 303
    reply = {"body": "Call me at home", "internal": "0"}
    assert agent.post("/o/alpha/tickets/1/comments", reply, environ_base=far).status_code == 303
    agent.post(
        "/o/alpha/profile/password",
        {"current_password": WRONG_PASSWORD, "new_password": NEW_PASSWORD,
         "confirm_password": NEW_PASSWORD},
        environ_base=far,
    )  # fmt: skip
    assert agent.get("/o/beta/tickets", environ_base=far).status_code == 404  # tenancy denial
    jar = [agent.client.get_cookie(name) for name in ("session", "remember_token")]
    return agent, [cookie.value for cookie in jar if cookie is not None]


def _requester_day(app: Flask, session: Session, world: dict[str, Any]) -> list[str]:
    """File a request on the public form, open an emailed link, try a reset link."""
    visitor = Browser(app.test_client())
    assert submit(visitor, ip=REQUESTER_IP, email=FORM_SENDER).status_code == 303
    alpha = world["alpha"]
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    with app.app_context(), tenant_scope(session, ticket.org_id):
        _row, link = access_links.mint_link(session, ticket)
        session.commit()
    client = app.test_client()
    far = {"REMOTE_ADDR": REQUESTER_IP}
    assert client.get(f"/t/{link}", environ_base=far).status_code in (200, 303)
    reset = secrets.token_urlsafe(24)
    client.get(f"/reset/{reset}?token={reset}", environ_base=far)
    return [link, reset]


def _api_day(app: Flask, session: Session, world: dict[str, Any]) -> list[str]:
    member = world["alpha"]["agent"]
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "ci")
    client = app.test_client()
    far = {"REMOTE_ADDR": API_IP}
    ok = client.get(
        "/api/v1/orgs/alpha/tickets",
        headers={"Authorization": f"Bearer {plaintext}"},
        environ_base=far,
    )
    assert ok.status_code == 200
    wrong = "hdk_" + secrets.token_urlsafe(30)
    denied = client.get(
        "/api/v1/orgs/alpha/tickets", headers={"Authorization": f"Bearer {wrong}"}, environ_base=far
    )
    assert denied.status_code == 401
    return [plaintext, wrong]


def _run_jobs(app: Flask) -> None:
    with app.app_context():  # deliveries fail here (no SMTP_URL): their failures log too
        build_worker(list(QUEUES)).work(burst=True)


def test_no_personal_data_or_secrets_in_any_line(
    app: Flask, session: Session, world: dict[str, Any], password: str, log_lines: CapturedLines
) -> None:
    _agent, cookies = _agent_day(app, world, password)
    secrets_used = [*_requester_day(app, session, world), *_api_day(app, session, world)]
    _run_jobs(app)

    lines = log_lines.parsed()  # every line parses as one JSON object
    assert len(lines) > 20
    text = log_lines.text
    emails = [f"{role}@{slug}.test" for role in ("admin", "agent", "requester")
              for slug in ("alpha", "beta")]  # fmt: skip
    forbidden = [
        *emails, NEW_REQUESTER, FORM_SENDER, "pat.form%40example.test", password,
        WRONG_PASSWORD, NEW_PASSWORD, AGENT_IP, REQUESTER_IP, API_IP, *secrets_used,
        *[c for c in cookies if len(c) > 8], "My phone is", "Call me at home", "New Person",
    ]  # fmt: skip
    leaks = [item for item in forbidden if item.lower() in text.lower()]
    assert leaks == []

    requests = log_lines.events("http.request")
    assert {r["route"] for r in requests} >= {
        "/login", "/o/<org_slug>/tickets", "/t/<path:token>", "/api/v1/orgs/<org_slug>/tickets",
    }  # fmt: skip
    assert all("/t/" not in r["route"] or r["route"] == "/t/<path:token>" for r in requests)
    assert {r["ip_prefix"] for r in requests} >= {"198.51.100.0/24", "203.0.113.0/24"}
    assert "2001:db8:85a3::/48" in {r["ip_prefix"] for r in requests}


def test_access_lines_carry_request_org_and_user(
    app: Flask, world: dict[str, Any], password: str, log_lines: CapturedLines
) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    response = agent.get("/o/alpha/tickets", headers={"X-Request-ID": "req-abcdef123456"})
    assert response.headers["X-Request-ID"] == "req-abcdef123456"
    (line,) = [r for r in log_lines.events("http.request") if r["request_id"] == "req-abcdef123456"]
    user_id = world["alpha"]["agent"].user_id
    assert line["org_id"] == world["alpha"]["org"].id and line["user_id"] == user_id
    assert line["method"] == "GET" and line["status"] == 200 and line["level"] == "INFO"
    assert line["route"] == "/o/<org_slug>/tickets" and line["logger"] == "helpdesk.access"
    assert isinstance(line["duration_ms"], float) and line["time"].endswith("+00:00")


def test_tenancy_denials_are_logged_with_route_and_user(
    app: Flask, world: dict[str, Any], password: str, log_lines: CapturedLines
) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    assert agent.get("/o/beta/tickets/1").status_code == 404
    assert agent.get("/o/no-such-org/tickets").status_code == 404
    denied = log_lines.events("tenancy.denied")
    assert [d["route"] for d in denied] == ["/o/<org_slug>/tickets/<int:number>",
                                            "/o/<org_slug>/tickets"]  # fmt: skip
    assert {d["user_id"] for d in denied} == {world["alpha"]["agent"].user_id}
    assert all("beta" not in str(d) and "no-such-org" not in str(d) for d in denied)


def test_worker_lines_carry_the_job_and_its_request(
    app: Flask, session: Session, world: dict[str, Any], password: str, log_lines: CapturedLines
) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    new = {"subject": "Printer", "body": "Out of toner", "priority": "normal",
           "requester_email": "someone@example.test"}  # fmt: skip
    response = agent.post("/o/alpha/tickets", new, headers={"X-Request-ID": "req-0000feedbeef"})
    assert response.status_code == 303
    _run_jobs(app)
    in_jobs = [line for line in log_lines.parsed() if line.get("job_id")]
    assert in_jobs, "no line was logged inside a job"
    from_request = [line for line in in_jobs if line["request_id"] == "req-0000feedbeef"]
    assert from_request, in_jobs
    org_id = world["alpha"]["org"].id
    assert {line["org_id"] for line in from_request} == {org_id}
    assert {line["job"] for line in from_request} >= {"jobs.notify.dispatch"}
