from helpdesk.blueprints.profile.routes import bp

__all__ = ["bp"]
