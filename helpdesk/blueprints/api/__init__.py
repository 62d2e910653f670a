"""REST API v1: JSON over bearer tokens, under /api/v1."""

from helpdesk.blueprints.api import (  # noqa: F401  (register routes)
    routes_attachments,
    routes_sla,
    routes_webhooks,
)
from helpdesk.blueprints.api.routes import bp

__all__ = ["bp"]
