"""REST API v1: JSON over bearer tokens, under /api/v1."""

from helpdesk.blueprints.api import routes_sla, routes_webhooks  # noqa: F401  (register routes)
from helpdesk.blueprints.api.routes import bp

__all__ = ["bp"]
