"""OpenAPI paths of the admin API: SLA policies, calendars, webhooks and deliveries.

`openapi.document()` merges these in; the route coverage test checks both together.
"""

from __future__ import annotations

from helpdesk.blueprints.api import openapi as base
from helpdesk.blueprints.api.schemas_admin import Schema
from helpdesk.models import Priority

ADMIN_PARAMETERS: dict[str, Schema] = {
    "Priority": base.path_param(
        "priority", "The ticket priority the policy applies to.",
        {"type": "string", "enum": [p.value for p in Priority]},
    ),
    "CalendarId": base.path_param(
        "calendar_id", "A business calendar's id (from the calendar list)."
    ),
    "WebhookId": base.path_param("webhook_id", "A webhook endpoint's id (from the webhook list)."),
    "DeliveryId": base.path_param("delivery_id", "A delivery's id (from a delivery log)."),
}  # fmt: skip

_DELIVERY_QUERY = [
    base._query("before", "Only deliveries older than this one: the `next_before` of the "
                "previous page.", {"type": "integer", "minimum": 1}),
    base._query("limit", "Page size.", {"type": "integer", "minimum": 1, "maximum": 100,
                                        "default": 50}),
]  # fmt: skip


def _admin(*names: str) -> dict[str, Schema]:
    """Error responses of an admin-only operation."""
    return base._errors("AdminOnly", *names)


def admin_paths() -> dict[str, Schema]:
    """The admin operations, keyed by path."""
    org, ok, body, params = base.ORG, base._ok, base._body, base._params
    deleted = {"204": {"description": "Deleted"}}
    return {
        f"{org}/sla-policies": {"parameters": params("OrgSlug"), "get": {
            "operationId": "listSlaPolicies",
            "summary": "The SLA policies, by priority (a priority without one has no SLA).",
            "responses": {**ok("The policies", "SlaPolicyList"), **_admin()},
        }},
        f"{org}/sla-policies/{{priority}}": {"parameters": params("OrgSlug", "Priority"), "put": {
            "operationId": "putSlaPolicy",
            "summary": "Create (201) or replace (200) the policy for one priority.",
            "requestBody": body("SlaPolicyPut"),
            "responses": {**ok("The policy", "SlaPolicy"), **ok("The new policy", "SlaPolicy",
                          "201"), **_admin("UnsupportedMediaType", "Conflict")},
        }, "delete": {
            "operationId": "deleteSlaPolicy",
            "summary": "Remove the policy: new tickets of that priority get no SLA.",
            "responses": {**deleted, **_admin()},
        }},
        f"{org}/calendars": {"parameters": params("OrgSlug"), "get": {
            "operationId": "listCalendars", "summary": "The business calendars, by name.",
            "responses": {**ok("The calendars", "CalendarList"), **_admin()},
        }, "post": {
            "operationId": "createCalendar",
            "summary": "Add a business calendar (time zone, weekly hours, holidays).",
            "requestBody": body("NewCalendar"),
            "responses": {**ok("The new calendar", "Calendar", "201"),
                          **_admin("UnsupportedMediaType")},
        }},
        f"{org}/calendars/{{calendar_id}}": {"parameters": params("OrgSlug", "CalendarId"),
                                             "get": {
            "operationId": "getCalendar", "summary": "One business calendar.",
            "responses": {**ok("The calendar", "Calendar"), **_admin()},
        }, "patch": {
            "operationId": "updateCalendar",
            "summary": "Change a calendar; open tickets keep their due times.",
            "requestBody": body("CalendarPatch"),
            "responses": {**ok("The calendar", "Calendar"), **_admin("UnsupportedMediaType")},
        }, "delete": {
            "operationId": "deleteCalendar",
            "summary": "Delete a calendar no policy uses (409 names the policies that do).",
            "responses": {**deleted, **_admin("Conflict")},
        }},
        **_webhook_paths(),
    }  # fmt: skip


def _webhook_paths() -> dict[str, Schema]:
    org, ok, body, params = base.ORG, base._ok, base._body, base._params
    return {
        f"{org}/webhooks": {"parameters": params("OrgSlug"), "get": {
            "operationId": "listWebhooks", "summary": "The webhook endpoints (never secrets).",
            "responses": {**ok("The endpoints", "WebhookList"), **_admin()},
        }, "post": {
            "operationId": "createWebhook",
            "summary": "Add an endpoint; the response carries its signing secret, once.",
            "requestBody": body("NewWebhook"),
            "responses": {**ok("The new endpoint and its secret", "WebhookWithSecret", "201"),
                          **_admin("UnsupportedMediaType")},
        }},
        f"{org}/webhooks/{{webhook_id}}": {"parameters": params("OrgSlug", "WebhookId"), "get": {
            "operationId": "getWebhook", "summary": "One endpoint (never its secret).",
            "responses": {**ok("The endpoint", "Webhook"), **_admin()},
        }, "patch": {
            "operationId": "updateWebhook",
            "summary": "Change url, events, description or active (true re-enables).",
            "requestBody": body("WebhookPatch"),
            "responses": {**ok("The endpoint", "Webhook"), **_admin("UnsupportedMediaType")},
        }, "delete": {
            "operationId": "deleteWebhook", "summary": "Delete an endpoint and its log.",
            "responses": {"204": {"description": "Deleted"}, **_admin()},
        }},
        f"{org}/webhooks/{{webhook_id}}/rotate-secret": {
            "parameters": params("OrgSlug", "WebhookId"), "post": {
            "operationId": "rotateWebhookSecret",
            "summary": "Issue a new secret (shown once); the old one signs for 24 more hours.",
            "responses": {**ok("The endpoint and its new secret", "WebhookWithSecret"),
                          **_admin()},
        }},
        f"{org}/webhooks/{{webhook_id}}/deliveries": {
            "parameters": params("OrgSlug", "WebhookId"), "get": {
            "operationId": "listWebhookDeliveries",
            "summary": "The endpoint's deliveries, newest first.",
            "parameters": _DELIVERY_QUERY,
            "responses": {**ok("One page of deliveries", "DeliveryList"), **_admin()},
        }},
        f"{org}/deliveries/{{delivery_id}}/redeliver": {
            "parameters": params("OrgSlug", "DeliveryId"), "post": {
            "operationId": "redeliver",
            "summary": "Send a delivery again from its first attempt (queued).",
            "responses": {"202": {"description": "Queued", "content": {
                base.JSON: {"schema": {"$ref": "#/components/schemas/Delivery"}}}},
                **_admin("Conflict")},
        }},
    }  # fmt: skip
