"""The OpenAPI 3.1 description of API v1, built from the same schemas the views enforce.

A test checks that every API route appears here and nothing else does.
"""

from __future__ import annotations

from typing import Any

from helpdesk.blueprints.api.payload import LIMIT_DEFAULT, LIMIT_MAX
from helpdesk.blueprints.api.schemas import COMPONENTS, PRIORITIES, STATUSES, Schema, ref

PREFIX = "/api/v1"
ORG = f"{PREFIX}/orgs/{{org_slug}}"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"

ERRORS = {
    "Unauthorized": (
        "Missing, malformed, unknown, revoked or expired token, or a deactivated account.",
        {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}},
    ),
    "Forbidden": ("The caller may see the ticket but not do this (requesters).", None),
    "NotFound": (
        "No such organization or ticket, or it is not visible to this token "
        "(tokens work only with their own organization).",
        None,
    ),
    "UnsupportedMediaType": ("The body is not sent as application/json.", None),
    "AdminOnly": ("Only admins of the organization may do this (agents and requesters).", None),
    "Conflict": ("Not done because of the current state; `detail` says what to change.", None),
    "Unprocessable": (
        "Invalid input: `errors` maps each field or parameter at fault to a message.",
        None,
    ),
}


def _problem_response(name: str) -> Schema:
    description, headers = ERRORS[name]
    response: Schema = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": ref("Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


def _errors(*names: str) -> dict[str, Schema]:
    codes = {"Unauthorized": "401", "Forbidden": "403", "NotFound": "404",
             "UnsupportedMediaType": "415", "Unprocessable": "422", "AdminOnly": "403",
             "Conflict": "409"}  # fmt: skip
    chosen = ("Unauthorized", "NotFound", "Unprocessable", *names)
    return {codes[n]: {"$ref": f"#/components/responses/{n}"} for n in chosen}


def _ok(description: str, schema: str, status: str = "200", **extra: Any) -> dict[str, Schema]:
    return {
        status: {"description": description, "content": {JSON: {"schema": ref(schema)}}, **extra}
    }


def _body(schema: str) -> Schema:
    return {"required": True, "content": {JSON: {"schema": ref(schema)}}}


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": dict(schema)}  # fmt: skip


LIST_PARAMETERS = [
    _query(
        "q",
        "Full-text search over subject and messages (web-search syntax: words, \"a phrase\", "
        "-exclude, or); results ranked by relevance, subject matches first. `#123` or `123` "
        "finds ticket 123. Requesters search only public messages.",
        {"type": "string", "maxLength": 200},
    ),
    _query("status", "Only tickets with this status; `all_open` = new, open, pending, on_hold.",
           {"type": "string", "enum": ["all_open", *STATUSES]}),
    _query("priority", "Only tickets with this priority.", {"type": "string", "enum": PRIORITIES}),
    _query("assignee", "`me`, `unassigned`, or an agent's email address.", {"type": "string"}),
    _query("tag", "Only tickets with this tag.", {"type": "string", "maxLength": 40}),
    _query("requester", "Only tickets of the requester with this email.", {"type": "string"}),
    _query("sla", "SLA state: `ok`, `warning`, `breached`, or `none` (no policy applies).",
           {"type": "string", "enum": ["ok", "warning", "breached", "none"]}),
    _query("sort", "Order: `updated` (default), `created` (newest), `oldest`, `priority`, "
           "`due` (soonest SLA due time first; only tickets with an unmet SLA target). "
           "Ignored by `q` searches, which rank by relevance.",
           {"type": "string", "enum": ["updated", "created", "oldest", "priority", "due"]}),
    *(
        _query(key, f"Whole days in UTC, inclusive ({key.replace('_', ' ')} this date).",
               {"type": "string", "format": "date"})
        for key in ("created_after", "created_before", "updated_after", "updated_before")
    ),
    _query("cursor", "The `next_cursor` of the previous page.", {"type": "string"}),
    _query("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX,
                                   "default": LIMIT_DEFAULT}),
]  # fmt: skip

ID: Schema = {"type": "integer", "minimum": 1}


def path_param(name: str, description: str, schema: Schema = ID) -> Schema:
    """A required path parameter (an id unless another schema is given)."""
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema}  # fmt: skip


PATH_PARAMETERS: dict[str, Schema] = {
    "OrgSlug": path_param(
        "org_slug", "The organization the token was created in.",
        {"type": "string", "pattern": "^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"},
    ),
    "Number": path_param("number", "The ticket's per-organization number."),
    "CannedId": path_param("canned_id", "A canned reply's id (from the canned reply list)."),
    "ViewId": path_param("view_id", "A saved view's id (from the view list)."),
}  # fmt: skip


def _params(*names: str) -> list[Schema]:
    return [{"$ref": f"#/components/parameters/{n}"} for n in names]


def _paths() -> dict[str, Schema]:
    location = {"headers": {"Location": {"schema": {"type": "string", "format": "uri"},
                                         "description": "The new ticket's URL"}}}  # fmt: skip
    return {
        f"{PREFIX}/openapi.json": {"get": {
            "operationId": "getOpenApi", "summary": "This document.", "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1 document",
                                  "content": {JSON: {"schema": {"type": "object"}}}}},
        }},
        f"{ORG}/tickets": {"parameters": _params("OrgSlug"), "get": {
            "operationId": "listTickets",
            "summary": "List tickets, most recently updated first (requesters: their own).",
            "parameters": LIST_PARAMETERS,
            "responses": {**_ok("One page of tickets", "TicketList"), **_errors()},
        }, "post": {
            "operationId": "createTicket", "summary": "Open a ticket with its first message.",
            "requestBody": _body("NewTicket"),
            "responses": {**_ok("The new ticket", "Ticket", "201", **location),
                          **_errors("UnsupportedMediaType")},
        }},
        f"{ORG}/views": {"parameters": _params("OrgSlug"), "get": {
            "operationId": "listViews",
            "summary": "Built-in, shared and your own saved views (requesters: none).",
            "responses": {**_ok("The views", "ViewList"), **_errors()},
        }, "post": {
            "operationId": "createView", "summary": "Save a view.",
            "requestBody": _body("NewView"),
            "responses": {**_ok("The new view", "View", "201"),
                          **_errors("Forbidden", "UnsupportedMediaType")},
        }},
        f"{ORG}/views/{{view_id}}": {"parameters": _params("OrgSlug", "ViewId"), "delete": {
            "operationId": "deleteView",
            "summary": "Delete one of your views, or (admins) a shared view.",
            "responses": {"204": {"description": "Deleted"}, **_errors("Forbidden")},
        }},
        f"{ORG}/canned-replies": {"parameters": _params("OrgSlug"), "get": {
            "operationId": "listCannedReplies",
            "summary": "The org's canned replies (requesters: none).",
            "responses": {**_ok("The canned replies", "CannedReplyList"), **_errors()},
        }, "post": {
            "operationId": "createCannedReply", "summary": "Add a canned reply (agents, admins).",
            "requestBody": _body("NewCannedReply"),
            "responses": {**_ok("The new canned reply", "CannedReply", "201"),
                          **_errors("Forbidden", "UnsupportedMediaType")},
        }},
        f"{ORG}/canned-replies/{{canned_id}}": {"parameters": _params("OrgSlug", "CannedId"),
                                                "delete": {
            "operationId": "deleteCannedReply",
            "summary": "Delete a canned reply (its author or an admin).",
            "responses": {"204": {"description": "Deleted"}, **_errors("Forbidden")},
        }},
        f"{ORG}/tickets/{{number}}/canned-replies/{{canned_id}}": {
            "parameters": _params("OrgSlug", "Number", "CannedId"), "get": {
            "operationId": "fillCannedReply",
            "summary": "A canned reply with its placeholders filled for this ticket.",
            "responses": {**_ok("The filled text", "FilledReply"), **_errors("Forbidden")},
        }},
        f"{ORG}/tickets/bulk": {"parameters": _params("OrgSlug"), "post": {
            "operationId": "bulkUpdateTickets",
            "summary": "Change status, priority, assignee or tags of many tickets at once.",
            "requestBody": _body("BulkUpdate"),
            "responses": {**_ok("The changed tickets", "BulkResult"),
                          **_errors("Forbidden", "UnsupportedMediaType")},
        }},
        f"{ORG}/tickets/{{number}}": {"parameters": _params("OrgSlug", "Number"), "get": {
            "operationId": "getTicket", "summary": "Show one ticket.",
            "responses": {**_ok("The ticket", "Ticket"), **_errors()},
        }, "patch": {
            "operationId": "updateTicket",
            "summary": "Change status, priority, assignee or tags (agents and admins).",
            "requestBody": _body("TicketPatch"),
            "responses": {**_ok("The updated ticket", "Ticket"),
                          **_errors("Forbidden", "UnsupportedMediaType")},
        }},
        f"{ORG}/tickets/{{number}}/revoke-links": {"parameters": _params("OrgSlug", "Number"),
                                                   "post": {
            "operationId": "revokeRequesterLinks",
            "summary": "Revoke every emailed link to the ticket at once (agents and admins). "
                       "The requester's next email carries a new link.",
            "responses": {**_ok("How many links were revoked", "RevokedLinks"),
                          **_errors("Forbidden")},
        }},
        f"{ORG}/tickets/{{number}}/solve": {"parameters": _params("OrgSlug", "Number"), "post": {
            "operationId": "solveTicket",
            "summary": "\"This solved my problem\": mark the ticket solved (its requester, or "
                       "staff). Already solved: unchanged. A closed ticket answers 422.",
            "responses": {**_ok("The ticket", "Ticket"), **_errors()},
        }},
        f"{ORG}/tickets/{{number}}/comments": {"parameters": _params("OrgSlug", "Number"), "get": {
            "operationId": "listComments",
            "summary": "The conversation, oldest first (requesters never see internal notes).",
            "responses": {**_ok("The comments", "CommentList"), **_errors()},
        }, "post": {
            "operationId": "createComment", "summary": "Reply, or add an internal note.",
            "requestBody": _body("NewComment"),
            "responses": {**_ok("The new comment", "Comment", "201"),
                          **_errors("Forbidden", "UnsupportedMediaType")},
        }},
    }  # fmt: skip


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document."""
    from helpdesk.blueprints.api.openapi_admin import ADMIN_PARAMETERS, admin_paths
    from helpdesk.blueprints.api.openapi_attachments import (
        ATTACHMENT_COMPONENTS,
        ATTACHMENT_PARAMETERS,
        ATTACHMENT_RESPONSES,
        attachment_paths,
    )

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "helpdesk API",
            "version": "1",
            "description": (
                "Tickets and comments of one organization. Authenticate with a personal "
                "API token: `Authorization: Bearer <token>`. A token works only with the "
                "organization it was created in. Errors are RFC 9457 problem+json."
            ),
        },
        "security": [{"bearerAuth": []}],
        "paths": {**_paths(), **admin_paths(), **attachment_paths()},
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "hdk_…"}
            },
            "schemas": {**COMPONENTS, **ATTACHMENT_COMPONENTS},
            "parameters": {**PATH_PARAMETERS, **ADMIN_PARAMETERS, **ATTACHMENT_PARAMETERS},
            "responses": {
                **{name: _problem_response(name) for name in ERRORS},
                **ATTACHMENT_RESPONSES,
            },
        },
    }
