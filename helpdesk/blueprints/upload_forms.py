"""The web forms' side of attachments: file fields in, clear answers out.

Why the body limit is raised in a url_value_preprocessor: Flask-WTF checks the CSRF token
in an app-wide before_request hook, and reading the token parses the whole multipart body
— files included — under the app's 2 MB MAX_CONTENT_LENGTH. URL value preprocessors run
before every before_request hook, so the upload endpoints raise the limit there, to what
one message may carry (files times the per-file limit + 1 MiB for the text fields), and only for a
caller who may upload at all while uploads are switched on: anyone else is still held to
2 MB. Werkzeug spools file parts to temporary files, so a large body never sits in memory;
the per-file and per-ticket limits are the upload service's, enforced while it reads.

A message form that fails comes back with the text the person typed and the reason next to
the file field: 422 (a refused file), 413 (a limit), 503 (storage down, uploads switched
off). Browsers cannot put files back into a file field, so the form says to choose them
again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from flask import Blueprint, current_app, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Response

from helpdesk.db import get_session
from helpdesk.errors import error_response
from helpdesk.htmx import is_htmx, trigger
from helpdesk.models import Attachment, Ticket
from helpdesk.services import attachments, flags
from helpdesk.services.attachments import IncomingFile, Prepared, TooLarge, Unavailable
from helpdesk.services.errors import Conflict, ValidationError
from helpdesk.storage import StorageError

MIB = 1024 * 1024
RETRY_AFTER = "60"  # seconds: storage outages and incident switches are not over in a second
STORAGE_DOWN = (
    "File storage is unavailable right now, so nothing was saved. "
    "Try again in a few minutes, or send your message without the files."
)
CHOOSE_AGAIN = "Choose your files again: a form sent back with a problem cannot keep them."
# What a message form answers with itself, re-rendered with the reason (see `failure`).
FAILURES = (ValidationError, Conflict, TooLarge, StorageError, Unavailable)


def body_limit(config: Mapping[str, Any]) -> int:
    """The largest request body an upload form may send under these settings."""
    return int(config["ATTACHMENT_MAX_FILES"]) * int(config["ATTACHMENT_MAX_BYTES"]) + MIB


def limits() -> dict[str, Any]:
    """What the file field shows and checks before sending (`upload` in the templates)."""
    config = current_app.config
    max_bytes = int(config["ATTACHMENT_MAX_BYTES"])
    return {
        # The deploy-time switch and the runtime flag: the file field hides when either is off.
        "enabled": bool(config["UPLOADS_ENABLED"])
        and flags.is_enabled(get_session(), "attachments_upload"),
        "max_files": int(config["ATTACHMENT_MAX_FILES"]),
        "max_bytes": max_bytes,
        "max_size": attachments.size_text(max_bytes),
    }


def accept_uploads(
    bp: Blueprint, endpoints: Iterable[str], may_upload: Callable[[dict[str, Any]], bool]
) -> None:
    """Let these endpoints of `bp` receive files from callers `may_upload(view_args)` allows."""
    names = frozenset(endpoints)

    def _raise_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
        config = current_app.config
        if endpoint in names and config["UPLOADS_ENABLED"] and may_upload(values or {}):
            request.max_content_length = body_limit(config)

    def _too_large(exc: RequestEntityTooLarge) -> Response:
        if request.endpoint not in names:
            return error_response(413, exc.description)  # what the app answers elsewhere
        return body_too_large()

    bp.url_value_preprocessor(_raise_limit)
    bp.register_error_handler(RequestEntityTooLarge, _too_large)


def body_too_large() -> Response:
    """Answer a body over the whole-message limit: nothing of it could be read."""
    info = limits()
    status = 413
    message = (
        f"This message is too large to receive: attach at most {info['max_files']} files of "
        f"at most {info['max_size']} each. Nothing was saved."
    )
    if not info["enabled"]:
        off = attachments.UPLOADS_OFF
        status, message = 503, f"{off[:1].upper()}{off[1:]}."
    if not is_htmx():
        return retry_later(error_response(status, message))
    response = Response("", status=status)
    response.headers["HX-Reswap"] = "none"  # the form stays as it is, text and files kept
    return retry_later(trigger(response, toast=message))


def incoming_files() -> list[IncomingFile]:
    """The files of the form's `files` field (an empty file input sends a nameless empty part)."""
    found: list[IncomingFile] = []
    for part in request.files.getlist("files"):
        if not part.filename:
            head = part.stream.read(1)
            part.stream.seek(0)
            if not head:
                continue
        found.append(IncomingFile(part.filename or "", part.stream, part.mimetype or None))
    return found


def check_files(
    session: Session, files: Sequence[IncomingFile], ticket: Ticket | None = None
) -> list[Prepared]:
    """Check a message's files before anything is saved (the ticket's total counts too)."""
    if not files:
        return []
    used = attachments.ticket_bytes(session, ticket) if ticket is not None else 0
    return attachments.check_uploads(files, existing_ticket_bytes=used)


def failure(exc: Exception, sent_files: bool) -> tuple[int, dict[str, str]]:
    """The status and form errors for an exception in FAILURES."""
    if isinstance(exc, TooLarge):
        status, errors = 413, {"files": str(exc)}
    elif isinstance(exc, StorageError):
        status, errors = 503, {"files": STORAGE_DOWN}
    elif isinstance(exc, Unavailable):
        status, errors = 503, {"files": str(exc)}
    elif isinstance(exc, ValidationError):
        status, errors = 422, dict(exc.errors)
    elif isinstance(exc, Conflict):
        status, errors = 409, {"new": str(exc)}  # someone else wrote: the form shows it above
    else:
        raise TypeError(f"not an upload failure: {exc!r}")
    if sent_files and "files" not in errors:
        errors["files"] = CHOOSE_AGAIN
    return status, errors


def retry_later(response: Response) -> Response:
    """Add Retry-After to a 503 answer."""
    if response.status_code == 503:
        response.headers["Retry-After"] = RETRY_AFTER
    return response


def by_comment(files: Iterable[Attachment]) -> dict[int | None, list[Attachment]]:
    """Group a ticket's files by the message they came with (None: added to the ticket)."""
    grouped: dict[int | None, list[Attachment]] = {}
    for attachment in files:
        grouped.setdefault(attachment.comment_id, []).append(attachment)
    return grouped


def with_files(count: int) -> str:
    """The end of a toast for a message sent with files (" with 2 files"; "" for none)."""
    return f" with {count} file{'s' if count != 1 else ''}" if count else ""
