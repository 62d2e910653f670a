"""Admin pages for SLA policies and business calendars: saving, every refusal, who may."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import BusinessCalendar, SlaPolicy
from helpdesk.services import sla_admin
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import Browser, as_user

SLA = "/o/alpha/admin/sla"
CALENDARS = "/o/alpha/admin/calendars"
GOOD_POLICY = {"first_response_minutes": "60", "resolution_minutes": "480", "calendar": "24x7",
               "warn_at_percent": "75, 90", "warn_before_minutes": "30"}  # fmt: skip
GOOD_CALENDAR = {"name": "Office hours", "timezone": "Europe/Berlin",
                 "hours_mon": "09:00-12:00, 13:00-17:30", "hours_tue": "9:00-17:00",
                 "hours_fri": "09:00 - 15:00", "holidays": "2030-12-25\n2030-12-26"}  # fmt: skip


@pytest.fixture
def admin(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "admin@alpha.test", password)


def policies(session: Session) -> list[tuple[Any, ...]]:
    session.expire_all()
    with unscoped(session):
        rows = session.scalars(select(SlaPolicy).order_by(SlaPolicy.org_id, SlaPolicy.priority))
        return [
            (p.org_id, p.priority, p.first_response_minutes, p.resolution_minutes,
             p.calendar_id, p.warn_at_percent, p.warn_before_minutes)
            for p in rows
        ]  # fmt: skip


def calendar_rows(session: Session) -> list[tuple[Any, ...]]:
    session.expire_all()
    with unscoped(session):
        rows = session.scalars(select(BusinessCalendar).order_by(BusinessCalendar.id))
        return [(c.org_id, c.name, c.timezone, c.hours, c.holidays) for c in rows]


def make_calendar(session: Session, member: Any, name: str) -> int:
    with tenant_scope(session, member.org_id):
        data = sla_admin.CalendarInput(name, "UTC", {"mon": [["09:00", "17:00"]]}, [])
        return sla_admin.create_calendar(session, member, data).id


def test_admin_saves_replaces_and_removes_a_policy(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    calendar_id = make_calendar(session, world["alpha"]["admin"], "Office hours")
    page = admin.get(SLA)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('name="first_response_minutes"') == 4  # one row per priority
    assert "tickets already open keep the due times" in html
    saved = admin.post(f"{SLA}/high", {**GOOD_POLICY, "calendar": str(calendar_id)})
    assert saved.status_code == 303
    assert saved.headers["Location"].endswith("/o/alpha/admin/sla#sla-high")
    org_id = world["alpha"]["org"].id
    assert policies(session) == [(org_id, "high", 60, 480, calendar_id, [75, 90], [30])]
    html = admin.get(SLA).get_data(as_text=True)
    assert f'<option value="{calendar_id}" selected>Office hours</option>' in html
    assert 'value="75, 90"' in html

    replaced = {**GOOD_POLICY, "first_response_minutes": "15", "warn_at_percent": "",
                "warn_before_minutes": ""}  # fmt: skip
    assert admin.post(f"{SLA}/high", replaced).status_code == 303
    assert policies(session) == [(org_id, "high", 15, 480, None, [], [])]
    assert admin.post(f"{SLA}/high/delete").status_code == 303
    assert policies(session) == []
    assert admin.post(f"{SLA}/high/delete").status_code == 404  # nothing left to remove
    assert admin.post(f"{SLA}/critical", GOOD_POLICY).status_code == 404


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"first_response_minutes": "0"}, "first_response_minutes", "from 1 to 525,600"),
        ({"first_response_minutes": "ten"}, "first_response_minutes", "whole minutes"),
        ({"resolution_minutes": "525601"}, "resolution_minutes", "from 1 to 525,600"),
        ({"resolution_minutes": "30"}, "resolution_minutes",
         "must be at least the first response target (60 minutes)"),
        ({"calendar": "999999"}, "calendar", "there is no calendar with id 999999"),
        ({"calendar": "office"}, "calendar", "&#39;office&#39; is not a calendar"),
        ({"warn_at_percent": "75, 100"}, "warn_at_percent", "100 is not a percentage from 1 to 99"),
        ({"warn_at_percent": "75, 75"}, "warn_at_percent", "75 is listed twice"),
        ({"warn_at_percent": "10 20 30 40 50 60"}, "warn_at_percent", "at most 5 values"),
        ({"warn_at_percent": "75%"}, "warn_at_percent", "&#39;75%&#39; is not a whole number"),
        ({"warn_before_minutes": "60"}, "warn_before_minutes",
         "not less than the first response target (60 minutes)"),
        ({"warn_before_minutes": "0"}, "warn_before_minutes", "0 is out of range"),
    ],
)  # fmt: skip
def test_each_bad_policy_field_is_a_422_and_saves_nothing(
    admin: Browser, session: Session, change: dict[str, str], field: str, message: str
) -> None:
    sent = {**GOOD_POLICY, **change}
    response = admin.post(f"{SLA}/urgent", sent)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    row = html[html.index('id="sla-urgent"') :]
    row = row[: row.index("</tr>")]
    if field != "calendar":  # a select cannot show an unknown choice
        assert f'name="{field}" value="{sent[field]}"' in row  # the typed value comes back
    assert 'class="field-error"' in row
    assert policies(session) == []


def test_every_policy_error_is_shown_at_once(admin: Browser, session: Session) -> None:
    bad = {"first_response_minutes": "", "resolution_minutes": "x", "calendar": "",
           "warn_at_percent": "0", "warn_before_minutes": "-5"}  # fmt: skip
    html = admin.post(f"{SLA}/low", bad).get_data(as_text=True)
    assert html.count('class="field-error"') == 5
    assert policies(session) == []


def test_admin_creates_edits_and_deletes_a_calendar(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    created = admin.post(CALENDARS, GOOD_CALENDAR)
    assert created.status_code == 303
    org_id = world["alpha"]["org"].id
    [(org, name, timezone, hours, holidays)] = calendar_rows(session)
    assert (org, name, timezone, holidays) == (org_id, "Office hours", "Europe/Berlin",
                                               ["2030-12-25", "2030-12-26"])  # fmt: skip
    assert hours["mon"] == [["09:00", "12:00"], ["13:00", "17:30"]]
    assert hours["tue"] == [["09:00", "17:00"]] and hours["fri"] == [["09:00", "15:00"]]
    assert hours["sat"] == [] and set(hours) == {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

    listing = admin.get(CALENDARS).get_data(as_text=True)
    calendar_id = int(re.search(r"/admin/calendars/(\d+)\"", listing).group(1))  # type: ignore[union-attr]
    edit = admin.get(f"{CALENDARS}/{calendar_id}").get_data(as_text=True)
    assert 'value="09:00-12:00, 13:00-17:30"' in edit
    assert "2030-12-25\n2030-12-26</textarea>" in edit
    changed = {**GOOD_CALENDAR, "name": "Support", "hours_mon": "", "hours_sun": "10:00-24:00",
               "holidays": ""}  # fmt: skip
    assert admin.post(f"{CALENDARS}/{calendar_id}", changed).status_code == 303
    [(_, name, _, hours, holidays)] = calendar_rows(session)
    assert (name, hours["mon"], hours["sun"], holidays) == ("Support", [], [["10:00", "24:00"]],
                                                            [])  # fmt: skip

    admin.post(f"{SLA}/normal", {**GOOD_POLICY, "calendar": str(calendar_id)})
    refused = admin.post(f"{CALENDARS}/{calendar_id}/delete")
    assert refused.status_code == 409
    assert "used by the SLA policy for normal priority" in refused.get_data(as_text=True)
    assert len(calendar_rows(session)) == 1
    admin.post(f"{SLA}/normal", GOOD_POLICY)  # back to 24x7
    assert admin.post(f"{CALENDARS}/{calendar_id}/delete").status_code == 303
    assert calendar_rows(session) == []


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"name": "  "}, "name", "give the calendar a name"),
        ({"timezone": "Mars/Olympus"}, "timezone", "unknown timezone &#39;Mars/Olympus&#39;"),
        ({"hours_mon": "9am-5pm"}, "hours.mon", "&#39;9am-5pm&#39; is not an interval"),
        ({"hours_tue": "17:00-09:00"}, "hours.tue", "must start before it ends"),
        ({"hours_wed": "09:00-13:00, 12:00-17:00"}, "hours.wed", "overlap; merge them"),
        ({"hours_thu": "09:00-25:00"}, "hours.thu", "&#39;25:00&#39; is not a time"),
        ({"holidays": "2030-12-25\nchristmas"}, "holidays", "not a date: &#39;christmas&#39;"),
        ({"hours_mon": "", "hours_tue": "", "hours_fri": ""}, "hours",
         "the week has no business hours"),
    ],
)  # fmt: skip
def test_each_bad_calendar_field_is_a_422_and_saves_nothing(
    admin: Browser, session: Session, change: dict[str, str], field: str, message: str
) -> None:
    response = admin.post(CALENDARS, {**GOOD_CALENDAR, **change})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert message in html
    assert 'class="field-error"' in html
    for value in change.values():  # what was typed comes back
        assert value.split("\n")[0] in html
    assert calendar_rows(session) == []


def test_calendar_names_are_unique_per_org(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    make_calendar(session, world["beta"]["admin"], "Office hours")  # beta's name is free here
    assert admin.post(CALENDARS, GOOD_CALENDAR).status_code == 303
    again = admin.post(CALENDARS, {**GOOD_CALENDAR, "name": "OFFICE HOURS"})
    assert again.status_code == 422
    assert "already a calendar called" in again.get_data(as_text=True)
    with unscoped(session):
        assert session.scalar(select(func.count()).select_from(BusinessCalendar)) == 2


def test_agents_and_requesters_get_403_and_change_nothing(
    app: Flask, session: Session, world: dict[str, Any], password: str
) -> None:
    calendar_id = make_calendar(session, world["alpha"]["admin"], "Office hours")
    for email in ("agent@alpha.test", "requester@alpha.test"):
        who = as_user(app, email, password)
        for url in (SLA, CALENDARS, f"{CALENDARS}/{calendar_id}"):
            page = who.get(url)
            assert page.status_code == 403, (email, url)
            assert "Only admins of Alpha can change SLA policies" in page.get_data(as_text=True)
        assert who.post(f"{SLA}/high", GOOD_POLICY).status_code == 403
        assert who.post(CALENDARS, {**GOOD_CALENDAR, "name": "x"}).status_code == 403
        assert who.post(f"{CALENDARS}/{calendar_id}/delete").status_code == 403
        assert 'href="/o/alpha/admin/sla"' not in who.get("/o/alpha/tickets").get_data(
            as_text=True)  # fmt: skip
    assert policies(session) == []
    assert [row[1] for row in calendar_rows(session)] == ["Office hours"]


def test_another_orgs_calendar_is_404(
    admin: Browser, session: Session, world: dict[str, Any]
) -> None:
    beta_calendar = make_calendar(session, world["beta"]["admin"], "beta-secret hours")
    assert 'href="/o/alpha/admin/sla"' in admin.get("/o/alpha/tickets").get_data(as_text=True)
    for url in (f"{CALENDARS}/{beta_calendar}", f"{CALENDARS}/{2**40}"):
        assert admin.get(url).status_code == 404
    assert admin.post(f"{CALENDARS}/{beta_calendar}", GOOD_CALENDAR).status_code == 404
    assert admin.post(f"{CALENDARS}/{beta_calendar}/delete").status_code == 404
    used = admin.post(f"{SLA}/high", {**GOOD_POLICY, "calendar": str(beta_calendar)})
    assert used.status_code == 422
    assert f"there is no calendar with id {beta_calendar}" in used.get_data(as_text=True)
    assert admin.get("/o/beta/admin/sla").status_code == 404  # not a member of beta
    assert [row[1] for row in calendar_rows(session)] == ["beta-secret hours"]
    assert policies(session) == []
