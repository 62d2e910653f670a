from helpdesk.blueprints.tickets import attachments  # noqa: F401  (registers its routes on bp)
from helpdesk.blueprints.tickets.routes import bp

__all__ = ["bp"]
