"""The org admin area: SLA policies, business calendars, webhooks, deliveries, inbound email."""

from helpdesk.blueprints.admin import routes_inbound, routes_sla, routes_webhooks
from helpdesk.blueprints.admin.base import bp

__all__ = ["bp", "routes_inbound", "routes_sla", "routes_webhooks"]
