"""/o/<org>/admin/audit: newest first, filters, older pages, verify, and the audited CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.services import audit, audit_log, public_requests, sla_admin, webhooks
from helpdesk.tenancy import tenant_scope
from tests.audit.helpers import append, events, tamper
from tests.browser import Browser, as_user
from tests.factories import make_ticket

PAGE = "/o/alpha/admin/audit"
VERIFY = "/o/alpha/admin/audit/verify"
EXPORT = "/o/alpha/admin/audit.csv"
HOSTILE_NAME = "=cmd|' /C calc'!A0"


@pytest.fixture
def admin(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "admin@alpha.test", password)


@pytest.fixture
def history(session: Session, world: dict[str, Any]) -> dict[str, Any]:
    """Alpha: 3 members, a ticket (+ its new requester), a calendar, a public request from a
    hostile name. Beta: its members and a webhook."""
    alpha, beta = world["alpha"], world["beta"]
    make_ticket(session, alpha["org"], alpha["agent"], "customer@example.test")
    with tenant_scope(session, alpha["org"].id):
        calendar = sla_admin.CalendarInput("<b>Office</b>", "UTC", {"mon": [["09:00", "17:00"]]})
        sla_admin.create_calendar(session, alpha["admin"], calendar)
    request = public_requests.PublicRequest(name=HOSTILE_NAME, email="pat@example.test",
                                            subject="Help", description="Please")  # fmt: skip
    public_requests.submit_request(session, alpha["org"], request)
    with tenant_scope(session, beta["org"].id):
        hook = webhooks.WebhookInput(url="https://93.184.215.14/beta", events=["*"])
        webhooks.create_endpoint(session, beta["admin"], hook, (), utcnow())
    return world


def rows_of(page: str) -> list[str]:
    """The action of every event row on the page, top to bottom."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [part.split("</code>", 1)[0] for part in body.split("<td><code>")[1:]]


def test_admins_see_their_org_newest_first_with_actor_names(
    admin: Browser, history: dict[str, Any]
) -> None:
    page = admin.get(PAGE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert rows_of(text) == [
        "ticket.created", "membership.created", "calendar.created", "ticket.created",
        "membership.created", "membership.created", "membership.created", "membership.created",
    ]  # fmt: skip
    assert "Agent" in text and "system" in text  # display names; factory members have no actor
    assert "&lt;b&gt;Office&lt;/b&gt;" in text and "<b>Office" not in text
    assert "webhook.created" not in rows_of(text)  # beta's
    assert "Older events" not in text
    assert 'aria-current="page">Audit log' in text


def test_an_actor_whose_account_is_gone_is_shown_by_id(
    admin: Browser, session: Session, history: dict[str, Any]
) -> None:
    audit.record(session, history["alpha"]["org"].id, "test.orphan", actor_id=987654)
    session.commit()
    text = admin.get(PAGE).get_data(as_text=True)
    assert "<td>user #987654</td>" in text


def test_older_pages_follow_the_seq_without_counting(
    app: Flask, admin: Browser, session: Session, history: dict[str, Any]
) -> None:
    org_id = history["alpha"]["org"].id
    append(session, org_id, 60)
    total = len(events(session, org_id))
    seen: list[str] = []
    engine = app.extensions["helpdesk.engine"]

    def spy(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement.lower())

    event.listen(engine, "before_cursor_execute", spy)
    try:
        first = admin.get(PAGE).get_data(as_text=True)
    finally:
        event.remove(engine, "before_cursor_execute", spy)
    assert not [s for s in seen if "count(" in s]
    assert len(rows_of(first)) == 50
    assert f"<td>{total}</td>" in first
    older = next(line for line in first.splitlines() if "Older events" in line)
    url = older.split('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert url == f"{PAGE}?before={total - 49}"
    second = admin.get(url).get_data(as_text=True)
    assert len(rows_of(second)) == total - 50
    assert "<td>1</td>" in second and "Older events" not in second


def test_filters_narrow_the_list(admin: Browser, session: Session, history: dict[str, Any]) -> None:
    alpha = history["alpha"]
    ticket_id = events(session, alpha["org"].id, "ticket.created")[0].target_id

    def actions(query: str) -> list[str]:
        response = admin.get(f"{PAGE}?{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return rows_of(response.get_data(as_text=True))

    assert actions("action=calendar.created") == ["calendar.created"]
    assert actions("action=membership.*") == ["membership.created"] * 5
    assert actions("action=ticket.upd") == []
    assert actions("actor=Agent%40Alpha.test") == ["ticket.created", "membership.created"]
    assert actions(f"target_type=ticket&target_id={ticket_id}") == ["ticket.created"]
    today = utcnow().date()
    assert len(actions(f"from={today}&to={today}")) == 8
    assert actions(f"from={today + timedelta(days=1)}") == []
    assert actions(f"to={today - timedelta(days=1)}") == []
    assert actions("action=&actor=&unknown=1") != []  # empty and unknown keys are ignored


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("action=ticket.created'+OR+1=1", "action", "use an action name like"),
        ("action=" + "a.b" * 30, "action", "use an action name like"),
        ("actor=admin%40beta.test", "actor", "no member of this organization has that email"),
        ("actor=not-an-email", "actor", "no member of this organization has that email"),
        ("target_type=password_hash", "target_type", "choose one of:"),
        ("target_id=1;DROP", "target_id", "an id is up to 64"),
        ("from=yesterday", "from", "use a date like 2026-01-31"),
        ("from=2030-01-02&to=2030-01-01", "to", "the end date is before the start date"),
        ("before=-3", "before", "the page link is broken"),
        ("before=99999999999999999999", "before", "the page link is broken"),
    ],
)
def test_bad_filters_are_422_with_a_message(
    admin: Browser, history: dict[str, Any], query: str, field: str, message: str
) -> None:
    response = admin.get(f"{PAGE}?{query}")
    assert response.status_code == 422
    text = response.get_data(as_text=True)
    assert message in text
    assert "Fix the filters above" in text and "<tbody>" not in text


def test_every_bad_filter_is_reported_at_once(admin: Browser, history: dict[str, Any]) -> None:
    text = admin.get(f"{PAGE}?action=BAD&target_type=x&to=nope").get_data(as_text=True)
    assert text.count('class="field-error"') == 3


def test_verify_button_reports_intact_and_broken(
    admin: Browser, session: Session, history: dict[str, Any]
) -> None:
    org_id = history["alpha"]["org"].id
    count = len(events(session, org_id))
    page = admin.post(VERIFY)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert f"Intact: {count} events checked" in text
    assert audit.verify(session, org_id).head_hash in text
    assert "<html" in text and rows_of(text)  # without JavaScript: the whole page
    tamper(session, "UPDATE audit_events SET data = '{}' WHERE org_id = :o AND seq = 2", o=org_id)
    fragment = admin.post(VERIFY, htmx=True)
    text = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in text
    assert text.lstrip().startswith('<div id="audit-verify">')
    assert "Broken at seq 2: hash does not match the event&#39;s content" in text
    assert "1 events before it are intact" in text


def test_verify_needs_the_csrf_token(admin: Browser, history: dict[str, Any]) -> None:
    assert admin.post(VERIFY, csrf=False).status_code == 400
    assert admin.post(EXPORT, csrf=False).status_code == 400


def test_agents_are_refused(app: Flask, history: dict[str, Any], password: str) -> None:
    agent = as_user(app, "agent@alpha.test", password)
    assert agent.get(PAGE).status_code == 403
    assert agent.post(VERIFY).status_code == 403
    assert agent.post(EXPORT).status_code == 403


def read_csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_export_is_audited_before_it_streams_and_escapes_formulas(
    admin: Browser, session: Session, history: dict[str, Any]
) -> None:
    org_id = history["alpha"]["org"].id
    response = admin.post(EXPORT)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="audit-alpha-') and disposition.endswith(
        '.csv"'
    )
    rows = read_csv(response)
    assert rows[0] == ["seq", "created_at", "actor_id", "actor", "action", "target_type",
                       "target_id", "data", "ip_prefix", "request_id", "prev_hash",
                       "hash"]  # fmt: skip
    assert [int(r[0]) for r in rows[1:]] == list(range(1, len(rows)))  # oldest first, every seq
    # The export's own event was committed before the file was read: it is the last row.
    assert rows[-1][4] == "audit.exported"
    assert events(session, org_id)[-1].action == "audit.exported"
    hostile = [r for r in rows if r[3].endswith(HOSTILE_NAME)]
    assert hostile and all(r[3] == "'" + HOSTILE_NAME for r in hostile)
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    chain = events(session, org_id)
    assert rows[-1][11] == audit.verify(session, org_id).head_hash
    assert len(rows) - 1 == len(chain)
    assert not any("beta" in cell for r in rows for cell in r)


def test_export_uses_the_filters_and_records_them(
    admin: Browser, session: Session, history: dict[str, Any]
) -> None:
    alpha = history["alpha"]
    org_id = alpha["org"].id
    response = admin.post(f"{EXPORT}?action=membership.*&actor=")
    rows = read_csv(response)
    assert {r[4] for r in rows[1:]} == {"membership.created"}
    assert len(rows) == 6
    today = utcnow().date().isoformat()
    rows = read_csv(admin.post(f"{EXPORT}?actor=agent%40alpha.test&to={today}"))
    assert [r[4] for r in rows[1:]] == ["membership.created", "ticket.created"]
    exported = events(session, org_id, "audit.exported")
    assert [e.data for e in exported] == [
        {"filters": {"action": "membership.*"}, "format": "csv"},
        {"filters": {"actor_id": alpha["agent"].user_id, "to": today}, "format": "csv"},
    ]  # the actor by id: no email in the audit log
    assert {e.actor_id for e in exported} == {alpha["admin"].user_id}


def test_a_long_export_is_read_in_batches(
    admin: Browser, session: Session, history: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_log, "EXPORT_BATCH", 3)
    org_id = history["alpha"]["org"].id
    append(session, org_id, 10)
    rows = read_csv(admin.post(EXPORT))
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 20))
    assert {r[3] for r in rows[1:] if r[2]} == {"Agent", "Admin", "'" + HOSTILE_NAME}


def test_an_export_with_bad_filters_is_refused_and_not_recorded(
    admin: Browser, session: Session, history: dict[str, Any]
) -> None:
    org_id = history["alpha"]["org"].id
    response = admin.post(f"{EXPORT}?from=31/12/2030")
    assert response.status_code == 422
    assert "use a date like 2026-01-31" in response.get_data(as_text=True)
    assert events(session, org_id, "audit.exported") == []
