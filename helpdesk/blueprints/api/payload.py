"""Parse what a client sent: the JSON body, the query string and path numbers.

Everything client-supplied is allow-listed: unknown body fields and unknown query
parameters are refused with 422 naming the allowed ones, never silently ignored.
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.exceptions import BadRequest

from helpdesk.blueprints.api.problems import ApiProblem, invalid
from helpdesk.blueprints.api.schemas import Schema
from helpdesk.services import queries
from helpdesk.services.errors import ValidationError
from helpdesk.services.validation import normalize_email, positive_int

LIMIT_DEFAULT = 25
LIMIT_MAX = 100

_TYPE_NAMES = {
    "integer": "a whole number",
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "null": "null",
    "object": "an object",
}
_PLURAL_NAMES = {"integer": "whole numbers", "string": "strings", "boolean": "true/false values",
                 "object": "objects", "array": "lists", "null": "nulls"}  # fmt: skip


def json_object() -> dict[str, Any]:
    """Return the request body as a JSON object, or raise 415/422."""
    if not request.is_json:
        raise ApiProblem(
            415, "Send the request body as JSON with 'Content-Type: application/json'."
        )
    try:
        data = request.get_json()
    except BadRequest:
        raise ApiProblem(422, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiProblem(422, 'The request body must be a JSON object, like {"body": "…"}.')
    return data


def _matches(value: object, schema: Schema) -> bool:
    if "enum" in schema and value not in schema["enum"]:
        return False
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    for kind in kinds:
        if kind == "string" and isinstance(value, str):
            return True
        if kind == "boolean" and isinstance(value, bool):
            return True
        if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if kind == "object" and isinstance(value, dict):
            return True
        if kind == "null" and value is None:
            return True
        if kind == "array" and isinstance(value, list):
            return all(_matches(item, schema["items"]) for item in value)
    return False


def _expected(schema: Schema) -> str:
    if "enum" in schema:
        return f"choose one of: {', '.join(schema['enum'])}"
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    text = " or ".join(_TYPE_NAMES[k] for k in kinds)
    if "array" in kinds:
        text += f" of {_PLURAL_NAMES[schema['items']['type']]}"
    return f"must be {text}"


def check_fields(data: dict[str, Any], schema: Schema) -> None:
    """Refuse fields the schema does not list, values of the wrong JSON type or off its enum."""
    properties: dict[str, Schema] = schema["properties"]
    allowed = ", ".join(sorted(properties))
    errors: dict[str, str] = {}
    for key, value in data.items():
        field = properties.get(key)
        if field is None:
            errors[str(key)] = f"unknown field; allowed: {allowed}"
        elif not _matches(value, field):
            errors[key] = _expected(field)
    if errors:
        raise invalid(errors)


def refuse_fields(data: dict[str, Any], fields: tuple[str, ...], reason: str) -> None:
    """Refuse the given fields when present (role-dependent input)."""
    errors = {key: reason for key in fields if key in data}
    if errors:
        raise invalid(errors)


def query_args(allowed: tuple[str, ...]) -> dict[str, str]:
    """Return the allow-listed query parameters (each at most once); empty means absent."""
    errors: dict[str, str] = {}
    for key in request.args:
        if key not in allowed:
            errors[key] = f"unknown parameter; allowed: {', '.join(sorted(allowed))}"
        elif len(request.args.getlist(key)) > 1:
            errors[key] = "give this parameter once"
    if errors:
        raise invalid(errors)
    return {k: v for k in allowed if (v := request.args.get(k, "").strip())}


def list_request(allowed: tuple[str, ...]) -> tuple[queries.TicketFilter, str | None, int]:
    """Parse the ticket list's query string into (filters, cursor, limit), reporting all errors."""
    args = query_args(allowed)
    errors: dict[str, str] = {}
    filters = queries.TicketFilter()
    try:
        filters = queries.parse_filter({k: v for k, v in args.items() if k != "assignee"})
    except ValidationError as exc:
        errors.update(exc.errors)
    assignee = args.get("assignee")
    if assignee is not None:
        filters.assignee = assignee.lower()
        if filters.assignee not in ("me", "unassigned") and normalize_email(assignee) is None:
            errors["assignee"] = "use me, unassigned or an agent's email address"
    limit = positive_int(args.get("limit", str(LIMIT_DEFAULT)))
    if limit is None or limit > LIMIT_MAX:
        errors["limit"] = f"use a whole number from 1 to {LIMIT_MAX}"
    if errors:
        raise invalid(errors)
    return filters, args.get("cursor"), limit or LIMIT_DEFAULT


def ticket_number(raw: str) -> int:
    """Parse a ticket number from the path."""
    number = positive_int(raw)
    if number is None:
        raise invalid({"number": "use the ticket's number, a positive whole number like 42"})
    return number
