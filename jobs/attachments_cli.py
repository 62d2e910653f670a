"""`flask --app wsgi attachments …`: operate the virus-scan pipeline (rescan after an outage).

`rescan` is for after a clamd outage (`--status error`, the default: files whose retries ran
out), for scans that seem stuck (`--status pending`) and after a signature update
(`--status all`: every file but the infected ones, whose objects are already gone). Matching
files go back to `pending` — not downloadable until their new verdict, which is the safe
side — with a fresh retry budget, and a scan job is queued for each. It refuses to start
while clamd does not answer, so an outage cannot turn every file into `error` at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.scanning import ping
from helpdesk.services import scan_queue, scans
from jobs.context import system_session
from jobs.scan import queue_scans


@click.group("attachments", cls=AppGroup)
def attachments_group() -> None:
    """Operate on attachments and their virus scans."""


@attachments_group.command("rescan")
@click.option(
    "--status",
    "which",
    type=click.Choice(sorted(scan_queue.RESCANNABLE)),
    default="error",
    show_default=True,
    help="error: failed scans; pending: stuck scans; all: everything but infected files",
)
@click.option(
    "--since",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Only files uploaded on or after this day (YYYY-MM-DD, UTC)",
)
def rescan(which: str, since: datetime | None) -> None:
    """Set matching attachments back to pending and queue a scan for each."""
    url = str(current_app.config.get("CLAMD_URL") or "")
    if not url:
        raise click.ClickException(
            "CLAMD_URL is empty, so there is nothing to scan with: set it to your clamd "
            "(tcp://host:3310 or unix:///run/clamav/clamd.ctl) and run this again"
        )
    if not ping(url):
        raise click.ClickException(
            f"clamd at {url} does not answer PING: start it (or fix CLAMD_URL), then run "
            "this again. Nothing was changed."
        )
    start = since.replace(tzinfo=UTC) if since is not None else None
    now = datetime.now(UTC)
    total = queued = 0
    try:
        with system_session() as session:
            for batch in scan_queue.rescan_batches(session, which, start, now):
                total += len(batch)
                queued += queue_scans(batch)
            skipped = scan_queue.count_infected(session, start) if which == "all" else 0
    except SQLAlchemyError as exc:
        raise click.ClickException(
            f"the database is unreachable ({type(exc).__name__}): check DATABASE_URL; "
            f"{total} file(s) were set back to pending before it failed"
        ) from exc
    scope = f" uploaded since {start.date().isoformat()}" if start else ""
    click.echo(f"{total} attachment(s){scope} set back to pending ({which}); {queued} queued "
               "on the scan queue")  # fmt: skip
    if skipped:
        click.echo(f"{skipped} infected attachment(s) skipped: their files were removed")
    if queued < total:
        minutes = int(scans.LOST_AFTER.total_seconds() // 60)
        click.echo(
            f"{total - queued} could not be queued (Redis unreachable): the scan relay of "
            f"`flask --app wsgi cron` queues them once Redis is back (it picks up scans that "
            f"waited {minutes} minutes)"
        )
    if total:
        click.echo("scans run on a worker serving the scan queue (`flask --app wsgi worker` does)")
