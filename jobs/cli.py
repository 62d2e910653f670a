"""`flask --app wsgi jobs …`: look at and steer the job runner (status, requeue, drain)."""

from __future__ import annotations

import click
from flask.cli import AppGroup


@click.group("jobs", cls=AppGroup)
def jobs_group() -> None:
    """Inspect and steer background jobs."""
