"""The org admin area: SLA policies, calendars, webhooks, deliveries, inbound email, audit log."""

from helpdesk.blueprints.admin import routes_audit, routes_inbound, routes_sla, routes_webhooks
from helpdesk.blueprints.admin.base import bp

__all__ = ["bp", "routes_audit", "routes_inbound", "routes_sla", "routes_webhooks"]
