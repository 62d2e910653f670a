from helpdesk.blueprints.canned.routes import bp

__all__ = ["bp"]
