from helpdesk.blueprints.auth import reset  # noqa: F401  (registers its routes on bp)
from helpdesk.blueprints.auth.routes import bp

__all__ = ["bp"]
