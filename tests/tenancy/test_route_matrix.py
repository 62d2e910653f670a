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

The `matrix` fixture (both orgs' objects and ids) lives in matrix_world.py; the route
inventory, request machinery and expectations in matrix.py; the tables in matrix_data.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Comment
from helpdesk.tenancy import unscoped
from tests.browser import as_user
from tests.factories import make_ticket
from tests.tenancy.matrix import (
    BETA_MARKERS,
    MISSING_SLUG,
    NOT_EXERCISED_METHODS,
    OTHER_REQUESTER_MARKERS,
    PUBLIC_ORG_ROUTES,
    Actor,
    Matrix,
    MatrixGap,
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
    to_login,
)
from tests.tenancy.snapshot import Unchanged, org_summary

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
