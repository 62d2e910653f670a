from helpdesk.blueprints.profile import notifications  # noqa: F401  (registers its routes on bp)
from helpdesk.blueprints.profile.routes import bp

__all__ = ["bp"]
