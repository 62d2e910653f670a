"""The worker and scheduler processes: `flask --app wsgi worker` and `flask --app wsgi cron`.

Jobs run inside the worker process (RQ's SimpleWorker, no fork per job): the app, its
engine pool and Redis client are built once at start, and a job costs a dequeue rather than
a fork. `--max-jobs` bounds what a leaky job could accumulate (run the worker under a
supervisor that restarts it). See docs/decisions/0005-job-runner.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.job import Job

from helpdesk import logs
from helpdesk.metrics import record_job_start
from helpdesk.services.tasks import QUEUES, get_queue, redis_connection


def _configure_logging() -> None:
    """JSON (or LOG_FORMAT=text) lines on stderr, as the web writes them (idempotent)."""
    settings = current_app.config["SETTINGS"]
    logs.configure(settings.log_format, settings.log_level)


def job_log_fields(job: Job) -> dict[str, Any]:
    """What every line logged while `job` runs carries: its id, name, request id and org."""
    org_id = job.meta.get("org_id")
    if org_id is None and job.args:
        try:  # jobs take ids only, the org's first: the parameter name says so
            first = next(iter(inspect.signature(job.func).parameters), None)
        except Exception:  # an unimportable function fails in RQ itself, with its own log
            first = None
        org_id = job.args[0] if first == "org_id" else None
    return {
        "job_id": job.id,
        "job": job.func_name,
        "queue": job.origin,
        "request_id": job.meta.get("request_id"),
        "org_id": org_id,
    }


class HelpdeskWorker(SimpleWorker):
    """RQ's in-process worker: records each job's enqueue→start wait for /metrics and tags
    every log line of the job with its request id and org."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        record_job_start(job)
        with logs.bound(**job_log_fields(job)):
            super().execute_job(job, queue)


def build_worker(queues: Sequence[str]) -> HelpdeskWorker:
    """Return a worker for the named queues (in priority order) on the app's Redis."""
    conn = redis_connection()
    return HelpdeskWorker([get_queue(q, conn) for q in queues], connection=conn)


def build_scheduler() -> CronScheduler:
    """Return a cron scheduler with every periodic job of jobs/cron.py registered."""
    from jobs.cron import PERIODIC

    scheduler = CronScheduler(connection=redis_connection())
    for spec in PERIODIC:
        scheduler.register(**spec)
    return scheduler


@click.command("worker")
@with_appcontext
@click.option(
    "--queues",
    "-q",
    default=",".join(("sla", "notify", "scan", "default")),
    show_default=True,
    help="Comma-separated queues, highest priority first",
)
@click.option("--burst", is_flag=True, help="Exit once the queues are empty")
@click.option("--max-jobs", type=int, default=None, help="Exit after this many jobs")
def worker_command(queues: str, burst: bool, max_jobs: int | None) -> None:
    """Run a job worker (the app is built once; jobs run in this process)."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUES]
    if unknown or not names:
        raise click.BadParameter(f"queues must be among {', '.join(QUEUES)}", param_hint="-q")
    _configure_logging()
    current_app.logger.info("worker starting queues=%s burst=%s", ",".join(names), burst)
    build_worker(names).work(burst=burst, max_jobs=max_jobs, with_scheduler=not burst)


@click.command("cron")
@with_appcontext
def cron_command() -> None:
    """Run the scheduler that enqueues the periodic jobs of jobs/cron.py (run exactly one)."""
    _configure_logging()
    build_scheduler().start()


def init_app(app: Flask) -> None:
    """Add the worker, cron, jobs and attachments commands to `flask --app wsgi`."""
    from jobs.attachments_cli import attachments_group
    from jobs.cli import jobs_group

    app.cli.add_command(worker_command)
    app.cli.add_command(cron_command)
    app.cli.add_command(jobs_group)
    app.cli.add_command(attachments_group)
