"""The profile's notification emails page: defaults, saving, every refusal, per org."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import NotificationPreference, Role
from helpdesk.services import preferences
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser, as_user
from tests.factories import make_member

PAGE = "/o/alpha/profile/notifications"
GOOD = {"events": ["sla.warning", "sla.breached"], "mode": "digest", "digest_minutes": "30"}


def rows(session: Session) -> list[tuple[Any, ...]]:
    session.expire_all()
    with unscoped(session):
        found = session.scalars(select(NotificationPreference).order_by(NotificationPreference.id))
        return [(p.org_id, p.user_id, p.events, p.mode, p.digest_minutes) for p in found]


@pytest.fixture
def agent(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "agent@alpha.test", password)


def test_defaults_apply_until_the_member_saves(
    agent: Browser, session: Session, world: dict[str, Any]
) -> None:
    html = agent.get(PAGE).get_data(as_text=True)
    assert "these defaults apply" in html
    for kind in preferences.EVENTS:
        assert f'name="events" value="{kind}" checked' in html
    assert 'name="mode" value="immediate" checked' in html
    assert 'name="digest_minutes" value="60"' in html
    assert 'href="/o/alpha/profile/notifications"' in agent.get("/o/alpha/profile").get_data(
        as_text=True)  # fmt: skip

    saved = agent.post(PAGE, GOOD)
    assert saved.status_code == 303
    alpha, agent_id = world["alpha"]["org"].id, world["alpha"]["agent"].user_id
    assert rows(session) == [(alpha, agent_id, ["sla.warning", "sla.breached"], "digest", 30)]
    html = agent.get(saved.headers["Location"]).get_data(as_text=True)
    assert "Saved." in html and "these defaults apply" not in html
    assert 'value="sla.breached" checked' in html and 'value="ticket.created" checked' not in html
    assert 'name="mode" value="digest" checked' in html

    off = agent.post(PAGE, {"mode": "off", "digest_minutes": "60"})
    assert off.status_code == 303  # no events is fine when emails are off
    assert rows(session) == [(alpha, agent_id, [], "off", 60)]
    with tenant_scope(session, alpha):
        assert preferences.get_preferences(session, world["alpha"]["agent"]) == (
            preferences.Preferences((), "off", 60, True))  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"digest_minutes": "4"}, "digest_minutes", "whole minutes from 5 to 1,440"),
        ({"digest_minutes": "1441"}, "digest_minutes", "whole minutes from 5 to 1,440"),
        ({"digest_minutes": "hourly"}, "digest_minutes", "whole minutes from 5 to 1,440"),
        ({"mode": "sometimes"}, "mode", "choose how to be emailed: immediate, digest, off"),
        ({"events": ["ticket.created", "ticket.deleted"]}, "events",
         "unknown event &#39;ticket.deleted&#39;"),
        ({"events": []}, "events", "choose at least one event, or choose never"),
    ],
)  # fmt: skip
def test_each_bad_choice_is_a_422_and_saves_nothing(
    agent: Browser, session: Session, change: dict[str, Any], field: str, message: str
) -> None:
    sent = {**GOOD, **change}
    response = agent.post(PAGE, sent)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert html.count('class="field-error"') == 1
    if field == "digest_minutes":
        assert f'name="digest_minutes" value="{sent[field]}"' in html  # typed value comes back
    assert rows(session) == []


def test_requesters_have_nothing_to_choose(
    app: Flask, session: Session, world: dict[str, Any], password: str
) -> None:
    requester = as_user(app, "requester@alpha.test", password)
    page = requester.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "There is nothing to choose here." in html and 'name="mode"' not in html
    refused = requester.post(PAGE, GOOD)
    assert refused.status_code == 403
    assert "only agents and admins may choose notification emails" in refused.get_data(
        as_text=True)  # fmt: skip
    assert rows(session) == []


def test_preferences_are_per_org(
    app: Flask, session: Session, world: dict[str, Any], password: str
) -> None:
    """The same person, staff in two orgs, chooses separately in each."""
    make_member(session, world["alpha"]["org"], Role.AGENT, "dual@shared.test")
    make_member(session, world["beta"]["org"], Role.ADMIN, "dual@shared.test")
    dual = as_user(app, "dual@shared.test", password)
    assert dual.post(PAGE, GOOD).status_code == 303
    beta_page = dual.get("/o/beta/profile/notifications").get_data(as_text=True)
    assert "these defaults apply" in beta_page
    beta = {"events": ["ticket.created"], "mode": "immediate", "digest_minutes": "60"}
    assert dual.post("/o/beta/profile/notifications", beta).status_code == 303
    saved = rows(session)
    assert [(r[2], r[3]) for r in saved] == [
        (["sla.warning", "sla.breached"], "digest"), (["ticket.created"], "immediate")]  # fmt: skip
    assert {r[0] for r in saved} == {world["alpha"]["org"].id, world["beta"]["org"].id}
    assert as_user(app, "agent@beta.test", password).post(PAGE, GOOD).status_code == 404
    assert len(rows(session)) == 2


def test_scope_chooses_own_tickets_or_the_whole_org(
    agent: Browser, session: Session, world: dict[str, Any]
) -> None:
    html = agent.get(PAGE).get_data(as_text=True)
    assert 'name="scope" value="mine" checked' in html  # the default: what concerns me
    assert agent.post(PAGE, {**GOOD, "scope": "all"}).status_code == 303
    session.expire_all()
    with unscoped(session):
        row = session.scalars(select(NotificationPreference)).one()
    assert row.watch_all is True
    assert 'name="scope" value="all" checked' in agent.get(PAGE).get_data(as_text=True)
    bad = agent.post(PAGE, {**GOOD, "scope": "everyone"})
    assert bad.status_code == 422
    assert "choose which tickets: mine (assigned to me) or all" in bad.get_data(as_text=True)
    with unscoped(session):
        assert session.scalars(select(NotificationPreference)).one().watch_all is True
