from helpdesk.blueprints.ops.routes import bp

__all__ = ["bp"]
