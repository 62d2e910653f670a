"""The admin API for SLA policies and business calendars, through bearer tokens."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import BusinessCalendar, SlaPolicy
from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope, unscoped

BASE = "/api/v1/orgs/alpha"
POLICY = {"first_response_minutes": 60, "resolution_minutes": 480, "calendar": "24x7",
          "warn_at_percent": [90, 75]}  # fmt: skip
CALENDAR = {"name": "Office hours", "timezone": "Europe/Berlin",
            "hours": {"mon": [["09:00", "17:00"]], "fri": [["09:00", "12:00"], ["13:00", "15:00"]]},
            "holidays": ["2030-12-25"]}  # fmt: skip


def bearer(session: Session, member: Any) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "test token")
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
def headers(session: Session, world: dict[str, Any]) -> dict[str, str]:
    return bearer(session, world["alpha"]["admin"])


@pytest.fixture
def check(client: FlaskClient):
    """Validate a JSON value against one of the OpenAPI document's component schemas."""
    doc = client.get("/api/v1/openapi.json").json
    registry = Registry().with_resource(
        "urn:api", Resource.from_contents(doc, default_specification=DRAFT202012)
    )

    def _check(value: Any, name: str) -> None:
        schema = {"$ref": f"urn:api#/components/schemas/{name}"}
        errors = [e.message for e in Draft202012Validator(schema, registry=registry)
                  .iter_errors(value)]  # fmt: skip
        assert errors == [], (name, errors)

    return _check


def stored(session: Session) -> tuple[list[tuple[Any, ...]], list[str]]:
    session.expire_all()
    with unscoped(session):
        policies = [(p.priority, p.first_response_minutes, p.resolution_minutes, p.calendar_id,
                     p.warn_at_percent, p.warn_before_minutes)
                    for p in session.scalars(select(SlaPolicy).order_by(SlaPolicy.id))]  # fmt: skip
        names = list(session.scalars(select(BusinessCalendar.name).order_by(BusinessCalendar.id)))
    return policies, names


def test_policy_put_list_replace_delete(
    client: FlaskClient, session: Session, headers: dict[str, str], check: Any
) -> None:
    check(POLICY, "SlaPolicyPut")
    created = client.put(f"{BASE}/sla-policies/high", json=POLICY, headers=headers)
    assert created.status_code == 201, created.json
    check(created.json, "SlaPolicy")
    shown = {k: created.json[k] for k in ("calendar", "calendar_name", "warn_at_percent")}
    assert shown == {"calendar": "24x7", "calendar_name": "24x7", "warn_at_percent": [75, 90]}
    assert (created.json["priority"], created.json["warn_before_minutes"]) == ("high", [])
    replaced = client.put(f"{BASE}/sla-policies/high", headers=headers,
                          json={**POLICY, "first_response_minutes": 30,
                                "warn_before_minutes": [10]})  # fmt: skip
    assert replaced.status_code == 200
    assert replaced.json["first_response_minutes"] == 30
    client.put(f"{BASE}/sla-policies/low", json=POLICY, headers=headers)
    listed = client.get(f"{BASE}/sla-policies", headers=headers)
    check(listed.json, "SlaPolicyList")
    assert [p["priority"] for p in listed.json["items"]] == ["low", "high"]
    assert client.delete(f"{BASE}/sla-policies/high", headers=headers).status_code == 204
    gone = client.delete(f"{BASE}/sla-policies/high", headers=headers)
    assert gone.status_code == 404 and "no SLA policy for high" in gone.json["detail"]
    unknown = client.put(f"{BASE}/sla-policies/critical", json=POLICY, headers=headers)
    assert unknown.status_code == 404
    assert "unknown priority 'critical'" in unknown.json["detail"]
    assert stored(session)[0] == [("low", 60, 480, None, [75, 90], [])]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({**POLICY, "first_response_minutes": 0}, {"first_response_minutes": "from 1 to 525,600"}),
        ({**POLICY, "resolution_minutes": 30},
         {"resolution_minutes": "at least the first response target (60 minutes)"}),
        ({**POLICY, "first_response_minutes": "60"}, {"first_response_minutes": "whole number"}),
        ({**POLICY, "resolution_minutes": None}, {"resolution_minutes": "whole number"}),
        ({**POLICY, "calendar": 424242}, {"calendar": "no calendar with id 424242"}),
        ({**POLICY, "calendar": "weekdays"}, {"calendar": "'weekdays' is not a calendar"}),
        ({**POLICY, "warn_at_percent": [0]}, {"warn_at_percent": "0 is not a percentage"}),
        ({**POLICY, "warn_at_percent": [50, 50]}, {"warn_at_percent": "50 is listed twice"}),
        ({**POLICY, "warn_at_percent": [1, 2, 3, 4, 5, 6]}, {"warn_at_percent": "at most 5"}),
        ({**POLICY, "warn_before_minutes": [60]}, {"warn_before_minutes": "not less than"}),
        ({k: v for k, v in POLICY.items() if k != "warn_at_percent"},
         {"warn_at_percent": "give the warning percentages"}),
        ({**POLICY, "breach_at": 100}, {"breach_at": "unknown field"}),
        ({"first_response_minutes": -1, "resolution_minutes": 0, "warn_at_percent": [101]},
         {"first_response_minutes": "from 1", "resolution_minutes": "from 1",
          "calendar": 'choose "24x7"', "warn_at_percent": "101 is not a percentage"}),
    ],
)  # fmt: skip
def test_bad_policies_are_422_naming_each_field(
    client: FlaskClient, session: Session, headers: dict[str, str], body: Any, errors: Any
) -> None:
    response = client.put(f"{BASE}/sla-policies/urgent", json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert response.mimetype == "application/problem+json"
    assert set(response.json["errors"]) == set(errors)
    for field, part in errors.items():
        assert part in response.json["errors"][field], (field, response.json["errors"][field])
    assert stored(session) == ([], [])


def test_calendar_crud_and_delete_refused_while_used(
    client: FlaskClient, session: Session, headers: dict[str, str], check: Any
) -> None:
    check(CALENDAR, "NewCalendar")
    created = client.post(f"{BASE}/calendars", json=CALENDAR, headers=headers)
    assert created.status_code == 201, created.json
    check(created.json, "Calendar")
    body = created.json
    assert body["hours"]["mon"] == [["09:00", "17:00"]] and body["hours"]["sat"] == []
    assert (body["timezone"], body["holidays"], body["used_by"]) == (
        "Europe/Berlin", ["2030-12-25"], [])  # fmt: skip
    url = f"{BASE}/calendars/{body['id']}"
    patched = client.patch(url, json={"name": "Support", "holidays": []}, headers=headers)
    assert patched.status_code == 200
    assert (patched.json["name"], patched.json["holidays"]) == ("Support", [])
    assert patched.json["hours"] == body["hours"]  # not given: kept
    used = client.put(f"{BASE}/sla-policies/normal", json={**POLICY, "calendar": body["id"]},
                      headers=headers)  # fmt: skip
    assert used.status_code == 201 and used.json["calendar_name"] == "Support"
    check(client.get(f"{BASE}/calendars", headers=headers).json, "CalendarList")
    assert client.get(url, headers=headers).json["used_by"] == ["normal"]
    refused = client.delete(url, headers=headers)
    assert refused.status_code == 409
    assert "used by the SLA policy for normal priority" in refused.json["detail"]
    client.delete(f"{BASE}/sla-policies/normal", headers=headers)
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert stored(session) == ([], [])


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({**CALENDAR, "timezone": "Europe/Atlantis"}, {"timezone": "unknown timezone"}),
        ({**CALENDAR, "hours": {"mon": [["09:00", "17:00"]], "monday": [["09:00", "17:00"]]}},
         {"hours.monday": "unknown weekday 'monday'"}),
        ({**CALENDAR, "hours": {"tue": [["9", "17"]]}}, {"hours.tue": "'9' is not a time"}),
        ({**CALENDAR, "hours": {}}, {"hours": "no business hours"}),
        ({**CALENDAR, "holidays": ["25.12.2030"]}, {"holidays": "not a date: '25.12.2030'"}),
        ({**CALENDAR, "name": ""}, {"name": "give the calendar a name"}),
        ({"name": "x"}, {"timezone": "choose a time zone", "hours": "map weekdays"}),
        ({**CALENDAR, "hours": "9-5"}, {"hours": "must be an object"}),
    ],
)  # fmt: skip
def test_bad_calendars_are_422_naming_each_field(
    client: FlaskClient, session: Session, headers: dict[str, str], body: Any, errors: Any
) -> None:
    response = client.post(f"{BASE}/calendars", json=body, headers=headers)
    assert response.status_code == 422, response.json
    assert set(response.json["errors"]) == set(errors)
    for field, part in errors.items():
        assert part in response.json["errors"][field], (field, response.json["errors"][field])
    assert stored(session) == ([], [])


def test_only_admins_and_only_their_own_org(
    client: FlaskClient, session: Session, world: dict[str, Any], headers: dict[str, str]
) -> None:
    beta_headers = bearer(session, world["beta"]["admin"])
    beta_calendar = client.post("/api/v1/orgs/beta/calendars", headers=beta_headers,
                                json={**CALENDAR, "name": "beta-secret"}).json["id"]  # fmt: skip
    for role in ("agent", "requester"):
        who = bearer(session, world["alpha"][role])
        for method, url, body in (
            ("GET", f"{BASE}/sla-policies", None),
            ("PUT", f"{BASE}/sla-policies/high", {"bogus": 1}),
            ("DELETE", f"{BASE}/sla-policies/high", None),
            ("GET", f"{BASE}/calendars", None),
            ("POST", f"{BASE}/calendars", CALENDAR),
        ):
            response = client.open(url, method=method, json=body, headers=who)
            assert response.status_code == 403, (role, method, url)
            assert response.json["detail"].startswith("You cannot do this: only admins may")
    assert client.get(f"{BASE}/calendars/{beta_calendar}", headers=headers).status_code == 404
    patch = client.patch(f"{BASE}/calendars/{beta_calendar}", json={"name": "x"}, headers=headers)
    assert patch.status_code == 404
    borrowed = client.put(f"{BASE}/sla-policies/high", json={**POLICY, "calendar": beta_calendar},
                          headers=headers)  # fmt: skip
    assert borrowed.status_code == 422 and "no calendar with id" in borrowed.json["errors"][
        "calendar"]  # fmt: skip
    other_org = client.get("/api/v1/orgs/beta/calendars", headers=headers)
    assert other_org.status_code == 404
    assert stored(session) == ([], ["beta-secret"])
