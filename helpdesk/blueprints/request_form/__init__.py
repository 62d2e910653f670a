from helpdesk.blueprints.request_form.routes import bp

__all__ = ["bp"]
