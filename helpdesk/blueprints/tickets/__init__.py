from helpdesk.blueprints.tickets.routes import bp

__all__ = ["bp"]
