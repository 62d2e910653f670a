"""The org admin area: SLA policies, business calendars, webhooks and deliveries."""

from helpdesk.blueprints.admin import routes_sla, routes_webhooks
from helpdesk.blueprints.admin.base import bp

__all__ = ["bp", "routes_sla", "routes_webhooks"]
