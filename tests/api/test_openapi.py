"""The OpenAPI document is valid 3.1, covers exactly the API's routes, and tells the truth."""

from __future__ import annotations

import re

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from helpdesk.services import api_tokens
from helpdesk.tenancy import tenant_scope
from tests.factories import make_ticket

BASE = "/api/v1/orgs/alpha/tickets"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def bearer(session, member) -> dict[str, str]:
    with tenant_scope(session, member.org_id):
        _token, plaintext = api_tokens.create_token(session, member, "test token")
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture
def doc(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.json


def operations(doc):
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method, path, operation


def test_document_is_valid_openapi_31(doc):
    assert doc["openapi"] == "3.1.0"
    validate(doc)
    validate(doc, cls=OpenAPIV31SpecValidator)


def test_document_covers_exactly_the_api_routes(app, doc):
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    documented = {(method, path) for method, path, _op in operations(doc)}
    assert documented == routes


def test_every_protected_operation_documents_its_errors(doc):
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    for method, path, operation in operations(doc):
        if operation.get("security") == []:
            continue
        codes = set(operation["responses"])
        assert {"401", "404", "422"} <= codes, (method, path)
        if "requestBody" in operation:
            assert "415" in codes, (method, path)
    for name, response in doc["components"]["responses"].items():
        assert set(response["content"]) == {"application/problem+json"}, name


@pytest.fixture
def check(doc):
    """Validate a JSON value against one of the document's component schemas."""
    registry = Registry().with_resource(
        "urn:helpdesk-api", Resource.from_contents(doc, default_specification=DRAFT202012)
    )

    def _check(value, name: str) -> None:
        schema = {"$ref": f"urn:helpdesk-api#/components/schemas/{name}"}
        validator = Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())
        errors = [e.message for e in validator.iter_errors(value)]
        assert errors == [], (name, errors)

    return _check


def test_responses_match_the_documented_schemas(client, session, world, check):
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"])
    headers = bearer(session, alpha["agent"])
    new = {"subject": "s", "body": "b", "priority": "low", "requester_email": "r@example.test"}
    check(new, "NewTicket")
    check(client.post(BASE, json=new, headers=headers).json, "Ticket")
    patch = {"assignee_email": "agent@alpha.test", "tags": ["a"], "status": "open"}
    check(patch, "TicketPatch")
    check(client.patch(f"{BASE}/1", json=patch, headers=headers).json, "Ticket")
    check(client.get(BASE, headers=headers).json, "TicketList")
    check(client.get(f"{BASE}?limit=1", headers=headers).json, "TicketList")
    check({"body": "x", "internal": True}, "NewComment")
    check(client.post(f"{BASE}/1/comments", json={"body": "x"}, headers=headers).json, "Comment")
    check(client.get(f"{BASE}/1/comments", headers=headers).json, "CommentList")
    problems = [
        client.get(BASE),
        client.get(f"{BASE}/9", headers=headers),
        client.get(f"{BASE}?limit=0", headers=headers),
        client.post(BASE, data="x", headers=headers),
    ]
    for response in problems:
        check(response.json, "Problem")


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ({"subject": "s", "body": "b", "extra": 1}, "NewTicket"),
        ({"tags": "a,b"}, "TicketPatch"),
        ({"body": "x", "internal": "yes"}, "NewComment"),
    ],
)
def test_documented_schemas_refuse_what_the_api_refuses(doc, value, name):
    registry = Registry().with_resource(
        "urn:helpdesk-api", Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    schema = {"$ref": f"urn:helpdesk-api#/components/schemas/{name}"}
    assert not Draft202012Validator(schema, registry=registry).is_valid(value)
