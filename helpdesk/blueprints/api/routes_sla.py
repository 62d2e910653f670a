"""API v1 for org admins: SLA policies (one per priority) and business calendars.

Registered on the `api` blueprint (imported by its package). Agents and requesters get a
403 problem before their input is looked at; bad input is a 422 naming every field at
fault, and nothing is saved.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from helpdesk.blueprints.api import auth, payload
from helpdesk.blueprints.api.problems import ApiProblem
from helpdesk.blueprints.api.routes import bp
from helpdesk.blueprints.api.schemas_admin import CALENDAR_PATCH, NEW_CALENDAR, POLICY_PUT
from helpdesk.blueprints.api.serialize import timestamp
from helpdesk.db import get_session, utcnow
from helpdesk.models import BusinessCalendar, Membership, SlaPolicy
from helpdesk.services import sla_admin
from helpdesk.services.errors import Conflict


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict) -> Response:
    get_session().rollback()
    return ApiProblem(409, f"Not done: {exc}.").response()


def admin_member(what: str) -> Membership:
    """The token owner's membership, if they are an admin (403 problem otherwise)."""
    member = auth.current_member()
    sla_admin.require_admin(member, what)
    return member


def policy_json(policy: SlaPolicy) -> dict[str, Any]:
    """An SLA policy as the API shows it."""
    calendar = policy.calendar
    return {
        "priority": policy.priority,
        "first_response_minutes": policy.first_response_minutes,
        "resolution_minutes": policy.resolution_minutes,
        "calendar": sla_admin.ALWAYS if calendar is None else calendar.id,
        "calendar_name": sla_admin.ALWAYS if calendar is None else calendar.name,
        "warn_at_percent": list(policy.warn_at_percent),
        "warn_before_minutes": list(policy.warn_before_minutes),
        "updated_at": timestamp(policy.updated_at),
    }


def calendar_json(calendar: BusinessCalendar, used_by: list[str]) -> dict[str, Any]:
    """A business calendar as the API shows it."""
    return {
        "id": calendar.id,
        "name": calendar.name,
        "timezone": calendar.timezone,
        "hours": dict(calendar.hours),
        "holidays": list(calendar.holidays),
        "used_by": used_by,
        "created_at": timestamp(calendar.created_at),
    }


def _calendar_input(data: dict[str, Any]) -> sla_admin.CalendarInput:
    return sla_admin.CalendarInput(
        name=data.get("name"),
        timezone=data.get("timezone"),
        hours=data.get("hours"),
        holidays=data.get("holidays"),
    )


@bp.get("/orgs/<org_slug>/sla-policies")
def list_sla_policies(org_slug: str) -> Response:
    member = admin_member("manage SLA policies")
    policies = sla_admin.list_policies(get_session(), member).values()
    return jsonify(items=[policy_json(p) for p in policies if p is not None])


@bp.put("/orgs/<org_slug>/sla-policies/<priority>")
def put_sla_policy(org_slug: str, priority: str) -> tuple[Response, int]:
    member = admin_member("manage SLA policies")
    data = payload.json_object()
    payload.check_fields(data, POLICY_PUT)
    sent = sla_admin.PolicyInput(
        first_response_minutes=data.get("first_response_minutes"),
        resolution_minutes=data.get("resolution_minutes"),
        calendar=data.get("calendar"),
        warn_at_percent=data.get("warn_at_percent"),
        warn_before_minutes=data.get("warn_before_minutes", []),
    )
    policy, created = sla_admin.save_policy(get_session(), member, priority, sent, utcnow())
    return jsonify(policy_json(policy)), 201 if created else 200


@bp.delete("/orgs/<org_slug>/sla-policies/<priority>")
def delete_sla_policy(org_slug: str, priority: str) -> tuple[str, int]:
    sla_admin.delete_policy(get_session(), admin_member("manage SLA policies"), priority)
    return "", 204


@bp.get("/orgs/<org_slug>/calendars")
def list_calendars(org_slug: str) -> Response:
    session, member = get_session(), admin_member("manage business calendars")
    usage = sla_admin.calendar_usage(session, member)
    items = [
        calendar_json(c, usage.get(c.id, [])) for c in sla_admin.list_calendars(session, member)
    ]
    return jsonify(items=items)


@bp.post("/orgs/<org_slug>/calendars")
def create_calendar(org_slug: str) -> tuple[Response, int]:
    member = admin_member("manage business calendars")
    data = payload.json_object()
    payload.check_fields(data, NEW_CALENDAR)
    calendar = sla_admin.create_calendar(get_session(), member, _calendar_input(data))
    return jsonify(calendar_json(calendar, [])), 201


@bp.get("/orgs/<org_slug>/calendars/<int:calendar_id>")
def get_calendar(org_slug: str, calendar_id: int) -> Response:
    session, member = get_session(), admin_member("manage business calendars")
    calendar = sla_admin.get_calendar(session, member, calendar_id)
    return jsonify(calendar_json(calendar, sla_admin.calendar_usage(session, member).get(
        calendar.id, [])))  # fmt: skip


@bp.patch("/orgs/<org_slug>/calendars/<int:calendar_id>")
def patch_calendar(org_slug: str, calendar_id: int) -> Response:
    session, member = get_session(), admin_member("manage business calendars")
    data = payload.json_object()
    payload.check_fields(data, CALENDAR_PATCH)
    calendar = sla_admin.update_calendar(session, member, calendar_id, _calendar_input(data))
    return jsonify(calendar_json(calendar, sla_admin.calendar_usage(session, member).get(
        calendar.id, [])))  # fmt: skip


@bp.delete("/orgs/<org_slug>/calendars/<int:calendar_id>")
def delete_calendar(org_slug: str, calendar_id: int) -> tuple[str, int]:
    member = admin_member("manage business calendars")
    sla_admin.delete_calendar(get_session(), member, calendar_id)
    return "", 204
