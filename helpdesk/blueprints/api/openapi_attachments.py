"""OpenAPI paths and schemas of the attachment API: upload, list, show, download.

`openapi.document()` merges these in; the route coverage test checks both together.
"""

from __future__ import annotations

from helpdesk.blueprints.api import openapi as base
from helpdesk.blueprints.api.schemas import DATE_TIME, Schema, ref
from helpdesk.models import ScanStatus

SCAN_STATUSES = [s.value for s in ScanStatus]

ATTACHMENT: Schema = {
    "type": "object",
    "required": ["id", "filename", "size", "content_type", "sha256", "scan_status", "signature",
                 "downloadable", "internal", "comment_id", "created_at", "url", "download_url"],
    "properties": {
        "id": {"type": "integer", "minimum": 1},
        "filename": {"type": "string", "maxLength": 150,
                     "description": "Display name (normalized: no path, control or bidi "
                                    "characters). Never a storage path."},
        "size": {"type": "integer", "minimum": 1, "description": "Bytes."},
        "content_type": {"type": "string",
                         "description": "Sniffed from the content, not taken from the client."},
        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "scan_status": {"type": "string", "enum": SCAN_STATUSES,
                        "description": "`pending` until the virus scan ran; only `clean` files "
                                       "(and `unscanned` ones outside production) download."},
        "signature": {"type": ["string", "null"],
                      "description": "What the scanner found, for `infected` files."},
        "downloadable": {"type": "boolean"},
        "internal": {"type": "boolean", "description": "Attached to an internal note."},
        "comment_id": {"type": ["integer", "null"],
                       "description": "The comment the file came with; null: the ticket."},
        "created_at": DATE_TIME,
        "url": {"type": "string", "format": "uri"},
        "download_url": {"type": "string", "format": "uri"},
    },
    "additionalProperties": False,
}  # fmt: skip

UPLOAD: Schema = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "array", "minItems": 1,
                 "items": {"type": "string", "contentMediaType": "application/octet-stream"},
                 "description": "One part per file (repeat the field for several)."},
        "body": {"type": "string", "minLength": 1, "maxLength": 50000,
                 "description": "Optional: send the files with a new reply (or note) with this "
                                "markdown text, in one step."},
        "internal": {"type": "string", "enum": ["true", "false"], "default": "false",
                     "description": "Attach to an internal note / as internal (agents only)."},
    },
    "additionalProperties": False,
}  # fmt: skip

ATTACHMENT_COMPONENTS: dict[str, Schema] = {
    "Attachment": ATTACHMENT,
    "AttachmentList": {
        "type": "object",
        "required": ["items"],
        "properties": {"items": {"type": "array", "items": ref("Attachment")}},
        "additionalProperties": False,
    },
    "AttachmentUpload": UPLOAD,
}

ATTACHMENT_PARAMETERS: dict[str, Schema] = {
    "AttachmentId": base.path_param(
        "attachment_id", "An attachment's id (from the ticket's attachment list)."
    ),
}  # fmt: skip


def _problem(description: str, schema: Schema | None = None) -> Schema:
    return {"description": description,
            "content": {base.PROBLEM_JSON: {"schema": schema or ref("Problem")}}}  # fmt: skip


ATTACHMENT_RESPONSES: dict[str, Schema] = {
    "MalformedUpload": _problem(
        "The multipart body is malformed, or shorter or longer than its Content-Length: "
        "nothing was saved."
    ),
    "PayloadTooLarge": _problem(
        "Over a limit: a file's size, the number of files in one message or the ticket's "
        "total. `detail` names the limit; nothing was stored."
    ),
    "StorageUnavailable": {
        **_problem("Attachment storage is unreachable (nothing was saved), or uploads or "
                   "downloads are switched off for an incident. Retry after `Retry-After`."),
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds"}},
    },
    "NotDownloadable": _problem(
        "The file is not clean (yet): still scanning, scan failed (retried), or blocked. "
        "`scan_status` names the state.",
        {"allOf": [ref("Problem"), {"type": "object", "required": ["scan_status"],
                                    "properties": {"scan_status": {"enum": SCAN_STATUSES}}}]},
    ),
}  # fmt: skip


def _refs(**codes: str) -> dict[str, Schema]:
    return {code: {"$ref": f"#/components/responses/{name}"} for code, name in codes.items()}


def attachment_paths() -> dict[str, Schema]:
    """The attachment operations, keyed by path."""
    org, ok, params = base.ORG, base._ok, base._params
    upload_ok = {
        **ok(
            "One file sent: the new attachment",
            "Attachment",
            "201",
            headers={
                "Location": {
                    "schema": {"type": "string", "format": "uri"},
                    "description": "The attachment's URL (one file only)",
                }
            },
        ),
    }
    upload_ok["201"]["content"][base.JSON]["schema"] = {
        "oneOf": [ref("Attachment"), ref("AttachmentList")],
        "description": "One `file` part: the attachment. Several: `{items: [...]}`.",
    }
    return {
        f"{org}/tickets/{{number}}/attachments": {"parameters": params("OrgSlug", "Number"),
                                                  "get": {
            "operationId": "listAttachments",
            "summary": "The ticket's files, oldest first (requesters: not those of internal "
                       "notes).",
            "responses": {**ok("The files", "AttachmentList"), **base._errors()},
        }, "post": {
            "operationId": "uploadAttachments",
            "summary": "Attach files (multipart, field `file`, repeatable), optionally with a "
                       "reply (`body`). Types are sniffed from the content; executables, "
                       "scripts, HTML, SVG and XML are refused. Each file is scanned for "
                       "viruses before it can be downloaded.",
            "requestBody": {"required": True, "content": {"multipart/form-data": {
                "schema": ref("AttachmentUpload"),
                "encoding": {"file": {"contentType": "application/octet-stream"}}}}},
            "responses": {**upload_ok, **base._errors("Forbidden", "UnsupportedMediaType"),
                          **_refs(**{"400": "MalformedUpload", "413": "PayloadTooLarge",
                                     "503": "StorageUnavailable"})},
        }},
        f"{org}/attachments/{{attachment_id}}": {"parameters": params("OrgSlug", "AttachmentId"),
                                                 "get": {
            "operationId": "getAttachment",
            "summary": "One file's metadata and scan status (poll it after an upload).",
            "responses": {**ok("The file", "Attachment"), **base._errors()},
        }},
        f"{org}/attachments/{{attachment_id}}/download": {
            "parameters": params("OrgSlug", "AttachmentId"), "get": {
            "operationId": "downloadAttachment",
            "summary": "Download a clean file: a 303 to a URL valid for seconds (S3 storage), "
                       "or the file itself (disk storage). Never rendered inline.",
            "responses": {
                "200": {"description": "The file, as an attachment (`Content-Disposition`).",
                        "content": {"application/octet-stream": {
                            "schema": {"type": "string", "contentMediaType":
                                       "application/octet-stream"}}}},
                "303": {"description": "Go to the short-lived download URL.",
                        "headers": {"Location": {"schema": {"type": "string", "format": "uri"},
                                                 "description": "Presigned URL"}}},
                **base._errors(),
                **_refs(**{"409": "NotDownloadable"}),
                "503": {"$ref": "#/components/responses/StorageUnavailable"},
            },
        }},
    }  # fmt: skip


__all__ = [
    "ATTACHMENT_COMPONENTS",
    "ATTACHMENT_PARAMETERS",
    "ATTACHMENT_RESPONSES",
    "attachment_paths",
]
