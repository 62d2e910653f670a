"""POST /inbound/email: raw RFC 822 messages from an inbound-mail service."""

from helpdesk.blueprints.inbound.routes import bp

__all__ = ["bp"]
