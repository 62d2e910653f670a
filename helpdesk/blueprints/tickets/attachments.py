"""Downloads and the self-polling scan badge of attachments, for the ticket pages.

GET /o/<org>/attachments/<id>/download hands a file out only after the one permission
check (`services.attachments.download`): a 303 to a presigned URL that lives seconds (S3),
or the bytes streamed from disk with headers that make browsers save, never render, them.
GET /o/<org>/attachments/<id>/status is the badge fragment ("scanning…", the link, or
"blocked: <signature>"); it answers htmx's 286 once the state is settled, which stops the
polling. The requester's /r/ pages reuse `serve_download` and `badge` (links blueprint), and
the API reuses `serve_download`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any, BinaryIO

from flask import current_app, redirect, request, url_for
from werkzeug.wrappers import Response

from helpdesk.blueprints import gate
from helpdesk.blueprints.tickets.routes import bp
from helpdesk.db import get_session, utcnow
from helpdesk.errors import error_response
from helpdesk.htmx import render
from helpdesk.models import Attachment, Membership, ScanStatus, Ticket
from helpdesk.services import attachments
from helpdesk.services.errors import Conflict
from helpdesk.storage import ObjectNotFound, StorageError

CHUNK = 64 * 1024
HTMX_STOP_POLLING = 286
RETRY_AFTER = "60"
STORAGE_DOWN = "File storage is unavailable right now. Try again in a few minutes."
MISSING = "This file is no longer in storage. Ask for it to be sent again."
POLL_SECONDS = {ScanStatus.PENDING.value: 2, ScanStatus.ERROR.value: 15}


def serve_download(download: attachments.Download) -> Response:
    """Answer with a 303 to the presigned URL, or stream the stored file."""
    if download.url is not None:
        response = redirect(download.url, code=303)
        response.headers["Cache-Control"] = "private, no-store"  # the URL is a bearer token
        response.headers["Referrer-Policy"] = "no-referrer"
        return response
    with ExitStack() as stack:
        handle = stack.enter_context(download.open())  # StorageError before any byte is sent
        body = _chunks(handle, stack.pop_all())
    return Response(body, status=200, headers=download.headers)


def _chunks(handle: BinaryIO, opened: ExitStack) -> Iterator[bytes]:
    """Yield the file in chunks; the storage handle is released when the body is done."""
    with opened:
        while chunk := handle.read(CHUNK):
            yield chunk


def download_or_error(
    member: Membership, attachment_id: int, on_ticket: Ticket | None = None
) -> Response:
    """The web answer to a download: the file, or a page that says why not (409, 503)."""
    try:
        download = attachments.download(
            get_session(), member, attachment_id, utcnow(), on_ticket=on_ticket
        )
        return serve_download(download)
    except Conflict as exc:
        return error_response(409, sentence(str(exc)))
    except attachments.Unavailable as exc:
        return _retry_later(error_response(503, sentence(str(exc))))
    except ObjectNotFound:
        current_app.logger.error("attachment_object_missing id=%s", attachment_id)
        return error_response(404, MISSING)
    except StorageError:
        return _retry_later(error_response(503, STORAGE_DOWN))


def sentence(message: str) -> str:
    """A service message ("this file is …") as a sentence for a page."""
    return f"{message[:1].upper()}{message[1:]}."


def _retry_later(response: Response) -> Response:
    response.headers["Retry-After"] = RETRY_AFTER
    return response


def badge_info(attachment: Attachment) -> dict[str, Any]:
    """What the badge template shows: URLs for this page's kind, state, size, polling."""
    args = request.view_args or {}
    slug = args.get("org_slug", "")
    if request.blueprint == "links":  # the requester's page of one ticket
        common = {"org_slug": slug, "number": args.get("number"), "attachment_id": attachment.id}
        download = url_for("links.attachment_download", **common)
        status = url_for("links.attachment_status", **common)
    else:
        download = url_for("tickets.attachment_download", org_slug=slug,
                           attachment_id=attachment.id)  # fmt: skip
        status = url_for("tickets.attachment_status", org_slug=slug, attachment_id=attachment.id)
    return {
        "download_url": download if attachments.refusal(attachment) is None else None,
        "status_url": status,
        "settled": attachments.settled(attachment),
        "poll_seconds": POLL_SECONDS.get(attachment.scan_status, 5),
        "size": attachments.size_text(attachment.size),
    }


@bp.app_template_global("attachment_badge")
def _attachment_badge(attachment: Attachment) -> dict[str, Any]:
    return badge_info(attachment)


def badge(attachment: Attachment) -> Response:
    """The badge fragment; 286 (htmx: stop polling) once the scan state is settled."""
    status = HTMX_STOP_POLLING if attachments.settled(attachment) else 200
    response = render("attachments/_badge.html", status=status, attachment=attachment)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/attachments/<int:attachment_id>/download")
def attachment_download(org_slug: str, attachment_id: int) -> Response:
    return download_or_error(gate.current_member(), attachment_id)


@bp.get("/attachments/<int:attachment_id>/status")
def attachment_status(org_slug: str, attachment_id: int) -> Response:
    attachment = attachments.load_attachment(get_session(), gate.current_member(), attachment_id)
    return badge(attachment)
