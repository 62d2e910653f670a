"""Every route, every method, driven across orgs: the web and API side of the tenant gate.

The routes come from `app.url_map`, not from a hand-written list, so a route added later is
exercised (or fails `test_every_route_is_in_the_matrix`) without anyone remembering it.

Scenarios, each its own test so a failure names the scenario, and each failure line names
the method and rule:

* A — another org's slug with that org's real ids (web, web over HTMX, API; and an API
  token of a user who is a member of both orgs): 404, and byte-for-byte the same answer
  as for a slug that does not exist.
* B — the caller's own slug with ids that exist only in the other org: 404.
* C — a requester asking for another requester's objects in the same org: 404.
* D — no login / no usable token: the web redirects to /login, the API answers 401.
* E — agents and requesters on admin-only routes (SLA, calendars, webhooks, deliveries):
  403, whatever the ids.
* control — the very same requests (bodies, CSRF, URLs) succeed in the caller's own org,
  so the 404s above come from the gate and not from a malformed request.

After every negative scenario the whole database (every table, every column except a
token's last-used time) must be unchanged: the refused requests wrote nothing.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import Comment, Delivery, OutboxEvent, Role, Ticket
from helpdesk.services import api_tokens, canned, sla_admin, tickets, views, webhooks
from helpdesk.storage import EXTENSION, DiskStorage
from helpdesk.tenancy import tenant_scope, unscoped
from tests.attachments.upload_helpers import attach
from tests.browser import Browser, as_user
from tests.factories import make_member, make_ticket
from tests.tenancy.matrix import (
    BETA_MARKERS,
    MISSING_SLUG,
    NOT_EXERCISED_METHODS,
    OTHER_REQUESTER_MARKERS,
    PUBLIC_HOOK_URL,
    PUBLIC_ORG_ROUTES,
    Actor,
    Matrix,
    MatrixGap,
    bearer,
    build_url,
    inventory,
    is_401,
    is_403,
    is_404,
    is_gate_404,
    normalized,
    public_cases,
    snippet,
    succeeds,
    targets,
    to_login,
)
from tests.tenancy.snapshot import Unchanged, org_summary


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


# --- the tests -------------------------------------------------------------------------------


def test_every_route_is_in_the_matrix(app: Flask) -> None:
    cases, problems = inventory(app)
    assert not problems, "\n".join(problems)
    assert {c.rule.endpoint for c in cases} >= {
        "tickets.index",
        "tickets.show",
        "profile.revoke_token",
        "api.patch_ticket",
    }
    for case in cases:
        assert case.method not in NOT_EXERCISED_METHODS


def test_a_matrix_gap_fails_loudly(app: Flask) -> None:
    cases, _ = inventory(app)
    revoke = next(c for c in cases if c.rule.endpoint == "profile.revoke_token")
    with pytest.raises(MatrixGap, match="token_id"):
        build_url(app, revoke, {"org_slug": "alpha", "number": 1})


def test_scenario_a_other_orgs_slug_is_404(matrix: Matrix, world: dict[str, Any]) -> None:
    """Alpha's staff ask for beta's URLs with beta's real ids, by cookie and by token."""
    m = matrix
    beta_ids, missing_ids = m.ids["beta real"], {**m.ids["beta real"], "org_slug": MISSING_SLUG}
    with Unchanged(m, world):
        for case in m.cases:
            variants = [False] if case.api else [False, True]
            for htmx in variants:
                got = m.check("A", case, m.staff(case), beta_ids, is_gate_404, htmx=htmx)
                if got is None:
                    continue
                ref = m.send(case, m.staff(case), missing_ids, htmx=htmx)
                if normalized(got) != normalized(ref):
                    m.failures.append(
                        f"[A] {case.label}: beta's 404 differs from a missing org's 404 "
                        f"(existence oracle): {snippet(got)} vs {snippet(ref)}"
                    )
            if case.api:
                m.check("A", case, m.dual, m.ids["beta real (dual)"], is_gate_404)
    m.assert_clean("A")


def test_scenario_b_own_slug_with_other_orgs_ids_is_404(
    matrix: Matrix, world: dict[str, Any]
) -> None:
    """Alpha's URLs with ids that exist only in beta (ticket #3, beta's token ids, …)."""
    m = matrix
    with_ids = [c for c in m.cases if c.object_args]
    assert with_ids
    with Unchanged(m, world):
        for case in with_ids:
            m.check("B", case, m.staff(case), m.ids["beta-only ids"], is_404)
            m.check("B", case, m.dual, m.ids["beta-only ids (dual)"], is_404)
            if not case.api:
                m.check("B", case, m.staff(case), m.ids["beta-only ids"], is_404, htmx=True)
    m.assert_clean("B")


def test_scenario_c_requester_cannot_reach_another_requesters_objects(
    matrix: Matrix, world: dict[str, Any]
) -> None:
    """Alpha's requester vs another alpha requester's ticket #2 (and alpha's agent's token).

    Admin-only routes refuse a requester by role (403) before any object is looked up.
    """
    m = matrix
    with_ids = [c for c in m.cases if c.object_args]
    markers = BETA_MARKERS + OTHER_REQUESTER_MARKERS
    with Unchanged(m, world):
        for case in with_ids:
            for htmx in [False] if case.api else [False, True]:
                m.check(
                    "C",
                    case,
                    m.alpha_requester,
                    m.ids["other requester"],
                    is_403 if case.admin_only else is_404,
                    htmx=htmx,
                    markers=markers,
                )
        # The lists answer, but without the other requester's ticket.
        for case in m.cases:
            if case.method == "GET" and not case.object_args:
                expect = is_403 if case.admin_only else succeeds
                m.check("C", case, m.alpha_requester, m.ids["alpha real"], expect, markers=markers)
    m.assert_clean("C")


def test_scenario_d_anonymous_is_sent_to_login_or_401(
    matrix: Matrix, world: dict[str, Any]
) -> None:
    """No session or no usable token (missing, unknown, malformed, revoked, expired)."""
    m = matrix
    values = m.ids["alpha real"]
    with Unchanged(m, world):
        for case in m.cases:
            if case.api:
                for name, headers in m.api_headers.items():
                    who = Actor(f"anonymous API caller ({name})")
                    m.check("D", case, who, values, is_401, headers=headers)
            else:
                for htmx in (False, True):
                    m.check("D", case, m.anonymous, values, to_login, htmx=htmx)
    m.assert_clean("D")


def test_scenario_e_agents_and_requesters_get_403_on_admin_routes(
    matrix: Matrix, world: dict[str, Any]
) -> None:
    """Every admin-only route, own org and real ids: agents and requesters are refused."""
    m = matrix
    admin_only = [c for c in m.cases if c.admin_only]
    assert {c.rule.endpoint for c in admin_only} >= {"admin.sla", "api.put_sla_policy"}
    with Unchanged(m, world):
        for case in admin_only:
            for actor in (m.alpha_agent, m.alpha_requester):
                for htmx in [False] if case.api else [False, True]:
                    m.check("E", case, actor, m.ids["alpha real"], is_403, htmx=htmx)
    m.assert_clean("E")


def test_control_the_same_requests_succeed_in_own_org(
    matrix: Matrix, world: dict[str, Any]
) -> None:
    """Proves the bodies, CSRF tokens and URLs above are valid: only the org differs."""
    m = matrix
    beta_before = org_summary(m.session, world["beta"]["org"].id)
    for case in m.cases:
        m.check("control", case, m.staff(case), m.ids["alpha own"], succeeds)
    if org_summary(m.session, world["beta"]["org"].id) != beta_before:
        m.failures.append("alpha's own requests changed beta")
    m.assert_clean("control")


def test_public_org_routes_show_only_the_org_name(
    matrix: Matrix, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The public request form: anyone may use any org's, and it shows that org's name only.

    The same page whoever asks (anonymous, a member, a member of the other org); an unknown
    slug is a 404 that writes nothing; a submission files one ticket in that org only.
    """
    m = matrix
    monkeypatch.setitem(m.app.config, "REQUEST_LIMIT_IP", "1000 per minute")
    monkeypatch.setitem(m.app.config, "REQUEST_LIMIT_ADDRESS", "1000 per minute")
    cases = public_cases(m.app)
    assert {(c.rule.endpoint, c.method) for c in cases} == {
        ("request_form.show", "GET"),
        ("request_form.submit", "POST"),
        ("request_form.thanks", "GET"),
    }
    assert not {c.rule.endpoint for c in m.cases} & PUBLIC_ORG_ROUTES.keys()
    tickets_of_both = BETA_MARKERS + OTHER_REQUESTER_MARKERS + ("alpha-own",)
    # (slug, org name, who asks, text that must not appear: a signed-in page names its user)
    askers = [
        ("alpha", "Alpha", m.anonymous, (*tickets_of_both, "@alpha.test", "@shared.test")),
        ("alpha", "Alpha", m.alpha_requester, (*tickets_of_both, "@shared.test")),
        ("alpha", "Alpha", m.dual, (*tickets_of_both, "@alpha.test")),
        ("beta", "Beta", m.anonymous, (*tickets_of_both, "@alpha.test", "@shared.test")),
        ("beta", "Beta", m.alpha_agent, (*tickets_of_both, "@shared.test")),
    ]
    with Unchanged(m, world):
        for case in (c for c in cases if c.method == "GET"):
            pages: dict[str, str] = {}
            for slug, name, actor, markers in askers:
                expect = public_answer(slug, name)
                for htmx in (False, True):
                    got = m.check("public", case, actor, {"org_slug": slug}, expect,
                                  htmx=htmx, markers=markers)  # fmt: skip
                    if got is None or got.status_code != 200:
                        continue
                    main = normalized(got)[2].split("<main>", 1)[-1].split("</main>", 1)[0]
                    if pages.setdefault(slug, main) != main:
                        m.failures.append(f"[public] {case.label} for {slug}: the page "
                                          f"differs for {actor.name}")  # fmt: skip
        for case in cases:
            for actor in (m.anonymous, m.alpha_agent):
                for htmx in (False, True):
                    m.check("public", case, actor, {"org_slug": MISSING_SLUG}, is_404, htmx=htmx)
    submit = next(c for c in cases if c.method == "POST")
    for slug, other, actor in (("alpha", "beta", m.anonymous), ("beta", "alpha", m.alpha_agent)):
        target_id, other_id = world[slug]["org"].id, world[other]["org"].id
        before, other_before = org_summary(m.session, target_id), org_summary(m.session, other_id)
        m.check("public", submit, actor, {"org_slug": slug}, public_answer(slug, ""),
                markers=tickets_of_both)  # fmt: skip
        after = org_summary(m.session, target_id)
        if after["tickets"] != before["tickets"] + 1:
            m.failures.append(f"[public] a submission to {slug} did not file exactly one ticket")
        if org_summary(m.session, other_id) != other_before:
            m.failures.append(f"[public] a submission to {slug} changed {other}")
    m.assert_clean("public")


def public_answer(slug: str, org_name: str) -> Any:
    """Pages name the org; a submission is a 303 to the org's thanks page (no ids in it)."""

    def expect(case: Any, response: Any) -> str | None:
        if case.method == "POST":
            thanks = f"/o/{slug}/request/thanks"
            ok = response.status_code == 303 and response.headers.get("Location") == thanks
            return None if ok else f"expected a 303 to {thanks}"
        if response.status_code != 200:
            return "expected 200"
        body = response.get_data(as_text=True)
        return None if org_name in body else f"the page does not name the org ({org_name})"

    return expect


def test_non_member_gets_the_same_404_as_for_a_missing_org(
    app: Flask, session: Session, world: dict[str, Any], password: str
) -> None:
    """A member of beta only: alpha's pages look exactly like pages of no org at all."""
    make_ticket(
        session,
        world["alpha"]["org"],
        world["alpha"]["agent"],
        world["alpha"]["requester"].user,
        subject="alpha-only-subject",
    )
    outsider = as_user(app, "agent@beta.test", password)
    alpha = outsider.get("/o/alpha/tickets")
    missing = outsider.get(f"/o/{MISSING_SLUG}/tickets")
    assert alpha.status_code == missing.status_code == 404
    assert normalized(alpha) == normalized(missing)
    assert "alpha-only-subject" not in alpha.get_data(as_text=True)
    for path in (
        "/o/alpha/tickets/1",
        "/o/alpha/tickets/new",
        "/o/alpha/profile",
        "/o/Alpha/tickets",
        "/o/alpha-/tickets",
        f"/o/{'a' * 70}/tickets",
    ):
        response = outsider.get(path)
        assert normalized(response) == normalized(missing), path
    for htmx in (False, True):
        posted = outsider.post("/o/alpha/tickets/1/comments", {"body": "hi"}, htmx=htmx)
        posted_missing = outsider.post(
            f"/o/{MISSING_SLUG}/tickets/1/comments", {"body": "hi"}, htmx=htmx
        )
        assert posted.status_code == posted_missing.status_code == 404
        assert normalized(posted) == normalized(posted_missing)
    with unscoped(session):
        assert session.scalar(select(func.count()).select_from(Comment)) == 1
