from helpdesk.blueprints.links.routes import bp

__all__ = ["bp"]
