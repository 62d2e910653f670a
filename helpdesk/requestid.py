"""Request ids: taken from a well-formed `X-Request-ID`, else generated; echoed back.

The id travels into jobs (job meta) and outgoing webhooks so one action can be followed
through web, worker and receiver logs.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, has_request_context, request

HEADER = "X-Request-ID"
_WELL_FORMED = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def current_request_id() -> str | None:
    """Return the id of the request being served, if any."""
    if has_request_context():
        return g.get("request_id")
    return None


def _assign() -> None:
    raw = request.headers.get(HEADER, "")
    g.request_id = raw if _WELL_FORMED.match(raw) else uuid.uuid4().hex


def _echo(response: Response) -> Response:
    rid = g.get("request_id")
    if rid:
        response.headers[HEADER] = rid
    return response


def init_app(app: Flask) -> None:
    app.before_request(_assign)
    app.after_request(_echo)


def current_client_address() -> str | None:
    """Return the client address of the request being served (ProxyFix-corrected), if any."""
    if has_request_context():
        return request.remote_addr
    return None
