"""REST API v1: tickets and their comments, per org, for bearer-token callers.

Each view parses (payload.py) → calls a service → serializes (serialize.py). Services raise
ValidationError / NotFound / Forbidden; the handlers below turn them into problem+json.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from helpdesk.blueprints.api import auth, openapi, payload, serialize
from helpdesk.blueprints.api.problems import ApiProblem, invalid
from helpdesk.blueprints.api.schemas import (
    BULK_UPDATE,
    NEW_CANNED,
    NEW_COMMENT,
    NEW_TICKET,
    NEW_VIEW,
    TICKET_PATCH,
)
from helpdesk.db import get_session
from helpdesk.models import CannedReply, Channel, SavedView
from helpdesk.services import access_links, bulk, canned, queries, ticket_rows, tickets, views
from helpdesk.services.errors import Forbidden, NotFound, ValidationError
from helpdesk.services.permissions import load_ticket

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(auth.authenticate)

LIST_PARAMS = (
    "q", "status", "priority", "assignee", "tag", "requester", "sla", "sort", "cursor", "limit",
    "created_after", "created_before", "updated_after", "updated_before",
)  # fmt: skip
STAFF_ONLY_FIELDS = ("requester_email", "requester_name", "priority")


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _rolled_back(problem: ApiProblem) -> Response:
    get_session().rollback()  # nothing half-done outlives a failed request
    return problem.response()


@bp.errorhandler(ApiProblem)
def _api_problem(exc: ApiProblem) -> Response:
    return _rolled_back(exc)


@bp.errorhandler(ValidationError)
def _validation_error(exc: ValidationError) -> Response:
    return _rolled_back(invalid(exc.errors))


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return _rolled_back(ApiProblem(404, str(exc)))


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden) -> Response:
    return _rolled_back(ApiProblem(403, f"You cannot do this: {exc}."))


@bp.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(openapi.document())


@bp.get("/orgs/<org_slug>/tickets")
def list_tickets(org_slug: str) -> Response:
    filters, cursor, limit = payload.list_request(LIST_PARAMS)
    member = auth.current_member()
    page = queries.list_tickets(get_session(), member, filters, cursor, limit, ticket_rows.FULL)
    items = [serialize.ticket(t, org_slug) for t in page.items]
    return jsonify(items=items, next_cursor=page.next_cursor)


@bp.post("/orgs/<org_slug>/tickets")
def create_ticket(org_slug: str) -> tuple[Response, int, dict[str, str]]:
    data = payload.json_object()
    payload.check_fields(data, NEW_TICKET)
    member = auth.current_member()
    if not member.is_staff:
        payload.refuse_fields(
            data, STAFF_ONLY_FIELDS, "requesters open tickets for themselves; leave this out"
        )
    fields = {k: data.get(k, "") for k in NEW_TICKET["properties"]}
    ticket = tickets.open_ticket(
        get_session(), auth.current_org(), member, tickets.NewTicket(**fields), Channel.API
    )
    body = serialize.ticket(ticket, org_slug)
    return jsonify(body), 201, {"Location": body["url"]}


@bp.get("/orgs/<org_slug>/tickets/<number>")
def get_ticket(org_slug: str, number: str) -> Response:
    ticket = load_ticket(get_session(), auth.current_member(), payload.ticket_number(number))
    return jsonify(serialize.ticket(ticket, org_slug))


@bp.patch("/orgs/<org_slug>/tickets/<number>")
def patch_ticket(org_slug: str, number: str) -> Response:
    parsed = payload.ticket_number(number)
    data = payload.json_object()
    payload.check_fields(data, TICKET_PATCH)
    session, member = get_session(), auth.current_member()
    tickets.update_fields(session, member, parsed, data)
    return jsonify(serialize.ticket(load_ticket(session, member, parsed), org_slug))


@bp.get("/orgs/<org_slug>/tickets/<number>/comments")
def list_comments(org_slug: str, number: str) -> Response:
    session, member = get_session(), auth.current_member()
    ticket = load_ticket(session, member, payload.ticket_number(number))
    items = [serialize.comment(c) for c in queries.conversation(session, member, ticket)]
    return jsonify(items=items)


@bp.post("/orgs/<org_slug>/tickets/<number>/comments")
def create_comment(org_slug: str, number: str) -> tuple[Response, int]:
    parsed = payload.ticket_number(number)
    data = payload.json_object()
    payload.check_fields(data, NEW_COMMENT)
    comment = tickets.add_comment(
        get_session(),
        auth.current_member(),
        parsed,
        data.get("body", ""),
        internal=data.get("internal", False),
        channel=Channel.API,
        set_status=data.get("status"),
    )
    return jsonify(serialize.comment(comment)), 201


@bp.post("/orgs/<org_slug>/tickets/<number>/revoke-links")
def revoke_links(org_slug: str, number: str) -> Response:
    """Revoke every emailed requester link to the ticket (agents and admins)."""
    parsed = payload.ticket_number(number)
    count = access_links.revoke_links(get_session(), auth.current_member(), parsed)
    return jsonify(revoked=count)


@bp.post("/orgs/<org_slug>/tickets/<number>/solve")
def solve_ticket(org_slug: str, number: str) -> Response:
    """Mark the ticket solved ("this solved my problem"): its requester, or staff."""
    parsed = payload.ticket_number(number)
    session, member = get_session(), auth.current_member()
    access_links.solve_by_requester(session, member, parsed)
    return jsonify(serialize.ticket(load_ticket(session, member, parsed), org_slug))


@bp.post("/orgs/<org_slug>/tickets/bulk")
def bulk_update(org_slug: str) -> Response:
    data = payload.json_object()
    payload.check_fields(data, BULK_UPDATE)
    changes = {k: v for k, v in data.items() if k != "numbers"}
    result = bulk.bulk_update(get_session(), auth.current_member(), data.get("numbers"), changes)
    items = [serialize.ticket(t, org_slug) for t in result.tickets]
    return jsonify(items=items, changes=len(result.events))


def _view(view: views.View | SavedView) -> dict[str, Any]:
    shared = view.shared if isinstance(view, views.View) else view.owner_id is None
    return {"id": view.id, "name": view.name, "shared": shared, "filters": dict(view.filters)}


@bp.get("/orgs/<org_slug>/views")
def list_views(org_slug: str) -> Response:
    items = views.list_views(get_session(), auth.current_member())  # none for requesters
    return jsonify(items=[_view(v) for v in items])


@bp.post("/orgs/<org_slug>/views")
def create_view(org_slug: str) -> tuple[Response, int]:
    data = payload.json_object()
    payload.check_fields(data, NEW_VIEW)
    view = views.save_view(
        get_session(),
        auth.current_member(),
        data.get("name", ""),
        data.get("filters", {}),
        bool(data.get("shared", False)),
    )
    return jsonify(_view(view)), 201


@bp.delete("/orgs/<org_slug>/views/<int:view_id>")
def delete_view(org_slug: str, view_id: int) -> tuple[str, int]:
    views.delete_view(get_session(), auth.current_member(), view_id)
    return "", 204


def _canned(reply: CannedReply) -> dict[str, Any]:
    return {"id": reply.id, "title": reply.title, "body": reply.body}


@bp.get("/orgs/<org_slug>/canned-replies")
def list_canned(org_slug: str) -> Response:
    replies = canned.list_canned(get_session(), auth.current_member())  # none for requesters
    return jsonify(items=[_canned(r) for r in replies])


@bp.post("/orgs/<org_slug>/canned-replies")
def create_canned(org_slug: str) -> tuple[Response, int]:
    data = payload.json_object()
    payload.check_fields(data, NEW_CANNED)
    reply = canned.create_canned(
        get_session(), auth.current_member(), data.get("title", ""), data.get("body", "")
    )
    return jsonify(_canned(reply)), 201


@bp.delete("/orgs/<org_slug>/canned-replies/<int:canned_id>")
def delete_canned(org_slug: str, canned_id: int) -> tuple[str, int]:
    canned.delete_canned(get_session(), auth.current_member(), canned_id)
    return "", 204


@bp.get("/orgs/<org_slug>/tickets/<number>/canned-replies/<int:canned_id>")
def fill_canned(org_slug: str, number: str, canned_id: int) -> Response:
    session, member = get_session(), auth.current_member()
    ticket = load_ticket(session, member, payload.ticket_number(number))
    return jsonify(body=canned.fill(session, member, canned_id, ticket))
