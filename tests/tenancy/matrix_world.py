"""The `matrix` fixture: two orgs' tickets, tokens, views, admin objects and the id tables.

Alpha (the caller's org) and beta (the other org) each get objects of every kind a route
can name, so every (rule, method) of the route matrix has real ids on both sides.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Delivery, OutboxEvent, Role, Ticket
from helpdesk.services import api_tokens, canned, sla_admin, tickets, views, webhooks
from helpdesk.storage import EXTENSION, DiskStorage
from helpdesk.tenancy import tenant_scope, unscoped
from tests.attachments.upload_helpers import attach
from tests.browser import Browser, as_user
from tests.factories import make_member, make_ticket
from tests.tenancy.matrix import Actor, Matrix, bearer, inventory
from tests.tenancy.matrix_data import PUBLIC_HOOK_URL, targets


@pytest.fixture
def matrix(
    app: Flask, session: Session, world: dict[str, Any], password: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Matrix:  # fmt: skip
    alpha, beta = world["alpha"], world["beta"]
    monkeypatch.setitem(app.extensions, EXTENSION, DiskStorage(tmp_path / "attachments"))
    # Alpha: #1 for alpha's requester, #2 for another requester of alpha.
    other = make_member(session, alpha["org"], Role.REQUESTER, "other@alpha.test")
    make_ticket(
        session,
        alpha["org"],
        alpha["agent"],
        alpha["requester"].user,
        subject="alpha-own-subject",
        body="alpha-own-body",
    )
    make_ticket(
        session,
        alpha["org"],
        alpha["agent"],
        other.user,
        subject="alpha-other-subject",
        body="alpha-other-body",
    )
    # Beta has more tickets than alpha, so #3 exists only in beta; plus events and a note.
    for n in (1, 2, 3):
        make_ticket(
            session,
            beta["org"],
            beta["agent"],
            beta["requester"].user,
            subject=f"beta-secret-subject-{n}",
            body=f"beta-secret-body-{n}",
        )
    with tenant_scope(session, beta["org"].id):
        tickets.update_fields(
            session, beta["agent"], 1, {"priority": "high", "assignee_email": "agent@beta.test"}
        )
        tickets.add_comment(session, beta["agent"], 2, "beta-secret-note", internal=True)
    # A clean file on alpha's #1 and #2 and on beta's #1 (every attachment URL has an id).
    own_file = attach(app, session, alpha["agent"], 1, b"alpha-own-file\n", "own.txt")
    other_file = attach(app, session, alpha["agent"], 2, b"alpha-other-body\n", "other.txt")
    beta_file = attach(app, session, beta["agent"], 1, b"beta-secret-file\n", "beta-secret.txt")

    # A user who is an admin in both orgs: their alpha token and alpha session must
    # still never reach beta's rows through alpha's URLs, nor beta's URLs with the token.
    dual_alpha = make_member(session, alpha["org"], Role.ADMIN, "dual@shared.test")
    dual_beta = make_member(session, beta["org"], Role.ADMIN, "dual@shared.test")

    agent_token, agent_headers = bearer(session, alpha["agent"], "alpha agent token")
    _, admin_headers = bearer(session, alpha["admin"], "alpha admin token")
    spare_token, _ = bearer(session, alpha["agent"], "alpha spare token")
    _, requester_headers = bearer(session, alpha["requester"], "alpha requester token")
    _, dual_headers = bearer(session, dual_alpha, "dual alpha token")
    dual_beta_token, _ = bearer(session, dual_beta, "beta-secret-token dual")
    beta_token, _ = bearer(session, beta["agent"], "beta-secret-token agent")
    revoked_id, revoked_headers = bearer(session, alpha["agent"], "revoked token")
    with tenant_scope(session, alpha["org"].id):
        api_tokens.revoke_token(session, alpha["agent"], revoked_id)
    _, expired_headers = bearer(
        session, alpha["agent"], "expired token", expires_at=utcnow() - timedelta(minutes=5)
    )

    with tenant_scope(session, beta["org"].id):
        beta_view = views.save_view(
            session, beta["agent"], "beta-secret view", {"q": "x"}, False
        ).id
    with tenant_scope(session, alpha["org"].id):
        agent_view = views.save_view(session, alpha["agent"], "alpha view", {"q": "x"}, False).id
        spare_view = views.save_view(session, alpha["agent"], "spare view", {"q": "y"}, False).id
        spare_api = views.save_view(session, alpha["agent"], "spare api", {"q": "z"}, False).id
        agent_canned = canned.create_canned(session, alpha["agent"], "alpha canned", "Hi").id
        spare_canned = canned.create_canned(session, alpha["agent"], "spare canned", "Yo").id
        spare_api_canned = canned.create_canned(session, alpha["agent"], "spare api", "Yo").id
    with tenant_scope(session, beta["org"].id):
        beta_canned = canned.create_canned(session, beta["agent"], "beta-secret", "Hey").id

    alpha_admin_ids = admin_objects(session, alpha["org"], alpha["admin"], "alpha")
    spare_web_ids = admin_objects(session, alpha["org"], alpha["admin"], "spare web")
    spare_api_ids = admin_objects(session, alpha["org"], alpha["admin"], "spare api")
    beta_admin_ids = admin_objects(session, beta["org"], beta["admin"], "beta-secret")
    with tenant_scope(session, alpha["org"].id):  # policies to delete: web "low", API "normal"
        for priority in ("low", "normal"):
            policy = sla_admin.PolicyInput(30, 60, "24x7", [75])
            sla_admin.save_policy(session, alpha["admin"], priority, policy, utcnow())

    alpha_ids = {**alpha_admin_ids, "attachment_id": own_file}
    other_ids = {**alpha_admin_ids, "attachment_id": other_file}
    beta_ids = {**beta_admin_ids, "attachment_id": beta_file}

    with unscoped(session):
        numbers = session.execute(select(Ticket.org_id, Ticket.number)).all()
    assert (alpha["org"].id, 3) not in numbers and (beta["org"].id, 3) in numbers
    assert (alpha["org"].id, 2) in numbers and (beta["org"].id, 2) in numbers

    cases, problems = inventory(app)
    assert not problems, "\n".join(problems)
    return Matrix(
        app=app,
        session=session,
        cases=cases,
        alpha_agent=Actor("alpha agent", as_user(app, "agent@alpha.test", password), agent_headers),
        alpha_admin=Actor("alpha admin", as_user(app, "admin@alpha.test", password), admin_headers),
        alpha_requester=Actor(
            "alpha requester", as_user(app, "requester@alpha.test", password), requester_headers
        ),
        dual=Actor(
            "member of alpha and beta", as_user(app, "dual@shared.test", password), dual_headers
        ),
        anonymous=Actor("anonymous", Browser(app.test_client())),
        ids={
            "beta real": targets("beta", 1, beta_token, beta_view, beta_canned, beta_ids),
            "beta real (dual)": targets(
                "beta", 1, dual_beta_token, beta_view, beta_canned, beta_ids
            ),
            "beta-only ids": targets("alpha", 3, beta_token, beta_view, beta_canned, beta_ids),
            "beta-only ids (dual)": targets(
                "alpha", 3, dual_beta_token, beta_view, beta_canned, beta_ids
            ),
            "other requester": targets(
                "alpha", 2, agent_token, agent_view, agent_canned, other_ids
            ),
            "alpha real": targets("alpha", 1, agent_token, agent_view, agent_canned, alpha_ids),
            "alpha own": {
                **targets("alpha", 1, spare_token, spare_view, spare_canned, alpha_ids),
                "view_id@api.delete_view": spare_api,
                "canned_id@api.delete_canned": spare_api_canned,
                "canned_id@api.fill_canned": agent_canned,  # spare_canned is deleted first
                "priority@admin.delete_policy": "low",
                "priority@api.delete_sla_policy": "normal",
                "calendar_id@admin.delete_calendar": spare_web_ids["calendar_id"],
                "calendar_id@api.delete_calendar": spare_api_ids["calendar_id"],
                "webhook_id@admin.delete_webhook": spare_web_ids["webhook_id"],
                "webhook_id@api.delete_webhook": spare_api_ids["webhook_id"],
            },
        },
        api_headers={
            "no Authorization header": {},
            "unknown token": {"Authorization": "Bearer hdk_" + "A" * 43},
            "not a bearer token": {"Authorization": "Basic YWdlbnQ6cGFzcw=="},
            "revoked token": revoked_headers,
            "expired token": expired_headers,
        },
    )


def admin_objects(session: Session, org: Any, admin: Any, label: str) -> dict[str, int]:
    """A business calendar, a webhook and a dead delivery to it (for ticket #1) in org."""
    with tenant_scope(session, org.id):
        hours = {"mon": [["09:00", "17:00"]]}
        calendar = sla_admin.create_calendar(
            session, admin, sla_admin.CalendarInput(f"{label} calendar", "UTC", hours, [])
        )
        url = f"{PUBLIC_HOOK_URL}/{label.replace(' ', '-')}"
        hook = webhooks.WebhookInput(url, ["*"], f"{label} hook")
        endpoint, _secret = webhooks.create_endpoint(session, admin, hook, (), utcnow())
        ticket_id = session.scalar(select(Ticket.id).where(Ticket.number == 1))
        event = OutboxEvent(kind="ticket.created", ticket_id=ticket_id, payload={})
        session.add(event)
        session.flush()
        delivery = Delivery(event_id=event.id, channel="webhook", endpoint_id=endpoint.id,
                            target=f"webhook:{endpoint.id}", status="dead", attempts=6,
                            last_error=f"{label}: HTTP 500")  # fmt: skip
        session.add(delivery)
        session.commit()
    return {"calendar_id": calendar.id, "webhook_id": endpoint.id, "delivery_id": delivery.id}
