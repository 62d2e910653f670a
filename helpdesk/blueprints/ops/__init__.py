from helpdesk.blueprints.ops.cli import operators_group
from helpdesk.blueprints.ops.routes import bp
from helpdesk.blueprints.ops.rq import bp as rq_bp

bp.cli.add_command(operators_group)

__all__ = ["bp", "rq_bp"]
