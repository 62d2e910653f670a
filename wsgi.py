"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …` (incl. worker, cron, jobs)."""

from helpdesk import create_app
from jobs import worker

app = create_app()
worker.init_app(app)
