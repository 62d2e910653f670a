"""API v1: a ticket's attachments — upload (multipart), list, show, download.

Uploads are the one multipart endpoint of the API. The app's 2 MB body limit is raised for
this request only, after the token and the ticket were checked, to what one message may
carry (files x per-file limit + 1 MiB), so Werkzeug refuses a larger body before reading it
(413) and spools file parts to temporary files. `services.attachments` enforces the
per-file, per-message and per-ticket limits while it reads; nothing is stored until every
file passed. Downloads answer 303 to a presigned URL that lives seconds (S3) or stream the
file (disk), only for a clean file the token's user may see; otherwise 409 names the state.
"""

from __future__ import annotations

from typing import IO, Any

from flask import Response, current_app, jsonify, request, url_for
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.formparser import default_stream_factory
from werkzeug.wrappers import Response as WerkzeugResponse

from helpdesk.blueprints.api import auth, payload, serialize
from helpdesk.blueprints.api.problems import ApiProblem, invalid
from helpdesk.blueprints.api.routes import bp
from helpdesk.blueprints.tickets.attachments import serve_download
from helpdesk.db import get_session, utcnow
from helpdesk.errors import problem
from helpdesk.models import Attachment, Channel, ScanStatus, Ticket
from helpdesk.services import attachments, tickets
from helpdesk.services.errors import Conflict
from helpdesk.services.permissions import load_ticket
from helpdesk.storage import ObjectNotFound, StorageError

MIB = 1024 * 1024
UPLOAD_FIELDS = ("file", "body", "internal")
RETRY_AFTER = "60"
NOT_MULTIPART = (
    "Send the files as multipart/form-data, one part named 'file' per file "
    "(curl: -F file=@report.pdf)."
)
MALFORMED = (
    "The multipart body is malformed or was cut short, so nothing was saved: send it again "
    "as multipart/form-data with one part named 'file' per file."
)
CUT_SHORT = "The request body ended before its declared Content-Length: nothing was saved."
NO_FILE = (
    "The request has no file: send each file as a multipart/form-data part named 'file' "
    "(curl: -F file=@report.pdf)."
)
STORAGE_DOWN = "File storage is unavailable right now, so nothing was saved. Try again later."
STORAGE_DOWN_READ = "File storage is unavailable right now. Try again in a few minutes."
MISSING = "This file is no longer in storage. Ask for it to be sent again."


class NotDownloadable(ApiProblem):
    """409 for a file that is not clean (yet): `scan_status` says which state it is in."""

    def __init__(self, detail: str, scan_status: str) -> None:
        super().__init__(409, detail)
        self.scan_status = scan_status

    def response(self) -> Response:
        return problem(409, self.detail, scan_status=self.scan_status)


def _sentence(message: str) -> str:
    return f"{message[:1].upper()}{message[1:]}."


def _unavailable(detail: str) -> ApiProblem:
    return ApiProblem(503, detail, headers={"Retry-After": RETRY_AFTER})


@bp.errorhandler(attachments.TooLarge)
def _too_large(exc: attachments.TooLarge) -> Response:
    get_session().rollback()
    return ApiProblem(413, _sentence(str(exc))).response()


@bp.errorhandler(attachments.Unavailable)
def _switched_off(exc: attachments.Unavailable) -> Response:
    get_session().rollback()
    return _unavailable(_sentence(str(exc))).response()


def attachment_json(item: Attachment, org_slug: str) -> dict[str, Any]:
    """An attachment as the API shows it."""
    ids: dict[str, Any] = {"org_slug": org_slug, "attachment_id": item.id}
    blocked = item.scan_status == ScanStatus.INFECTED
    return {
        "id": item.id,
        "filename": item.filename,
        "size": item.size,
        "content_type": item.content_type,
        "sha256": item.sha256,
        "scan_status": item.scan_status,
        "signature": item.signature if blocked else None,
        "downloadable": attachments.refusal(item) is None,
        "internal": item.internal,
        "comment_id": item.comment_id,
        "created_at": serialize.timestamp(item.created_at),
        "url": url_for("api.get_attachment", **ids, _external=True),
        "download_url": url_for("api.download_attachment", **ids, _external=True),
    }


def body_limit() -> int:
    """The largest body an upload may send: every file at its limit plus the text fields."""
    config = current_app.config
    return int(config["ATTACHMENT_MAX_FILES"]) * int(config["ATTACHMENT_MAX_BYTES"]) + MIB


def _body_too_large() -> ApiProblem:
    config = current_app.config
    most, size = config["ATTACHMENT_MAX_FILES"], int(config["ATTACHMENT_MAX_BYTES"])
    detail = f"This request is too large: send at most {most} files of at most "
    return ApiProblem(413, f"{detail}{attachments.size_text(size)} each.")


def _parse(spooled: list[IO[bytes]]) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
    """Parse the body strictly: a malformed or cut-short body is an error, not "no files".

    Every temporary file the parser creates is appended to `spooled` (the caller closes
    them, also those of a body that failed half way).
    """
    if request.mimetype != "multipart/form-data":
        raise ApiProblem(415, NOT_MULTIPART)
    request.max_content_length = body_limit()
    parser = request.make_form_data_parser()
    parser.silent = False  # Werkzeug would quietly return no fields at all

    def spool(*args: Any, **kwargs: Any) -> IO[bytes]:
        stream = default_stream_factory(*args, **kwargs)  # memory, then a temporary file
        spooled.append(stream)
        return stream

    parser.stream_factory = spool
    try:
        _stream, form, files = parser.parse(
            request.stream, request.mimetype, request.content_length, request.mimetype_params
        )
    except RequestEntityTooLarge:
        raise _body_too_large() from None
    except ClientDisconnected:
        raise ApiProblem(400, CUT_SHORT) from None
    except ValueError:
        raise ApiProblem(400, MALFORMED) from None
    return form, files


def _fields(form: MultiDict[str, str], files: MultiDict[str, FileStorage]) -> dict[str, str]:
    """Refuse unknown or repeated fields; return the text fields."""
    errors = {key: f"unknown field; allowed: {', '.join(UPLOAD_FIELDS)}"
              for key in {*files.keys(), *form.keys()} if key not in UPLOAD_FIELDS}  # fmt: skip
    if "file" in form:
        errors["file"] = "send the file's content as a file part (curl: -F file=@report.pdf)"
    for key in ("body", "internal"):
        if key in files or len(form.getlist(key)) > 1:
            errors[key] = "give this field once, as text"
    if errors:
        raise invalid(errors)
    if "file" not in files:
        raise ApiProblem(422, NO_FILE, {"file": "send at least one file"})
    return {k: form[k] for k in ("body", "internal") if k in form}


def _internal(fields: dict[str, str]) -> bool:
    value = fields.get("internal", "false").strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid({"internal": "use true or false"})
    return value in ("true", "1")


def _created(rows: list[Attachment], org_slug: str) -> tuple[Response, int, dict[str, str]]:
    items = [attachment_json(row, org_slug) for row in rows]
    if len(items) == 1:
        return jsonify(items[0]), 201, {"Location": items[0]["url"]}
    return jsonify(items=items), 201, {}


@bp.post("/orgs/<org_slug>/tickets/<number>/attachments")
def upload_attachments(org_slug: str, number: str) -> tuple[Response, int, dict[str, str]]:
    """Attach files to the ticket, or (with `body`) send them with a reply or note."""
    parsed = payload.ticket_number(number)
    session, member = get_session(), auth.current_member()
    ticket = load_ticket(session, member, parsed)
    attachments.require_uploads_enabled()
    spooled: list[IO[bytes]] = []
    try:
        form, files = _parse(spooled)
        rows = _store(ticket, parsed, files.getlist("file"), _fields(form, files))
    finally:
        for stream in spooled:
            stream.close()
    return _created(rows, org_slug)


def _store(
    ticket: Ticket, number: int, parts: list[FileStorage], fields: dict[str, str]
) -> list[Attachment]:
    session, member = get_session(), auth.current_member()
    internal = _internal(fields)
    incoming = [attachments.IncomingFile(p.filename or "", p.stream, p.mimetype) for p in parts]
    used = attachments.ticket_bytes(session, ticket)
    try:
        prepared = attachments.check_uploads(incoming, existing_ticket_bytes=used)
        if "body" in fields:
            comment = tickets.add_comment(session, member, number, fields["body"], internal,
                                          Channel.API, uploads=prepared)  # fmt: skip
            return [a for a in attachments.list_for_ticket(session, member, ticket)
                    if a.comment_id == comment.id]  # fmt: skip
        rows = attachments.store_uploads(session, member, ticket, prepared, internal=internal)
        session.commit()
        return rows
    except StorageError:
        session.rollback()
        raise _unavailable(STORAGE_DOWN) from None


@bp.get("/orgs/<org_slug>/tickets/<number>/attachments")
def list_attachments(org_slug: str, number: str) -> Response:
    """The ticket's files, oldest first (requesters never see files of internal notes)."""
    session, member = get_session(), auth.current_member()
    ticket = load_ticket(session, member, payload.ticket_number(number))
    rows = attachments.list_for_ticket(session, member, ticket)
    return jsonify(items=[attachment_json(row, org_slug) for row in rows])


@bp.get("/orgs/<org_slug>/attachments/<int:attachment_id>")
def get_attachment(org_slug: str, attachment_id: int) -> Response:
    """One file's metadata and scan status."""
    row = attachments.load_attachment(get_session(), auth.current_member(), attachment_id)
    return jsonify(attachment_json(row, org_slug))


@bp.get("/orgs/<org_slug>/attachments/<int:attachment_id>/download")
def download_attachment(org_slug: str, attachment_id: int) -> WerkzeugResponse:
    """303 to a short-lived URL (S3) or the file itself (disk); 409 unless it is clean."""
    session, member = get_session(), auth.current_member()
    try:
        return serve_download(attachments.download(session, member, attachment_id, utcnow()))
    except Conflict as exc:
        row = attachments.load_attachment(session, member, attachment_id)
        raise NotDownloadable(_sentence(str(exc)), row.scan_status) from None
    except ObjectNotFound:
        current_app.logger.error("attachment_object_missing id=%s", attachment_id)
        raise ApiProblem(404, MISSING) from None
    except StorageError:
        raise _unavailable(STORAGE_DOWN_READ) from None
