"""The inbound-mail endpoint: authenticate, read the raw message under a hard cap, store it.

Why it looks like this: the caller is a machine (an inbound-mail service or a local MTA
pipe), authenticated by `Authorization: Bearer <INBOUND_EMAIL_SECRET>` compared in constant
time — no cookies, so the route is exempt from CSRF. Without a configured secret the route
does not exist (404). The body is read from the stream in chunks and never more than
INBOUND_MAX_BYTES (+1 to detect an overflow) is held in memory; a declared Content-Length
over the cap is refused before reading anything. Processing happens in a job: the answer
is 202 with the stored message's id. Every refusal is problem+json saying what to fix.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, current_app, jsonify, request
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge
from werkzeug.wrappers import Response

from helpdesk.db import get_session
from helpdesk.errors import problem
from helpdesk.services import inbound
from helpdesk.services.validation import normalize_email

bp = Blueprint("inbound", __name__)
CHUNK = 64 * 1024


class _TooLarge(Exception):
    pass


@bp.post("/inbound/email")
def receive() -> Response:
    """Store one raw email for processing; 202 with its id."""
    secret = str(current_app.config.get("INBOUND_EMAIL_SECRET") or "")
    if not secret:
        abort(404)
    if not _authorized(secret):
        response = problem(
            401,
            "Send the inbound-mail secret as 'Authorization: Bearer <INBOUND_EMAIL_SECRET>'.",
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="inbound-email"'
        return response
    envelope_to = _envelope_recipient()
    if isinstance(envelope_to, Response):
        return envelope_to
    cap = int(current_app.config["INBOUND_MAX_BYTES"])
    try:
        raw = _read_capped(cap)
    except _TooLarge:
        return problem(
            413,
            f"The message is larger than the limit of {cap:,} bytes (INBOUND_MAX_BYTES); "
            "it was not stored. Raise the limit or have the sender send a smaller message.",
            limit=cap,
        )
    except ClientDisconnected:
        return problem(400, "The request body ended early; send the whole message again.")
    if not raw.strip():
        return problem(
            400,
            "The body is empty: post the raw RFC 822 message as the request body "
            "(with a Content-Length or chunked transfer encoding).",
        )
    row = inbound.store(get_session(), raw, envelope_to)
    response = jsonify({"id": row.id, "status": row.status})
    response.status_code = 202
    return response


def _authorized(secret: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    return hmac.compare_digest(given.strip().encode(), secret.encode())


def _envelope_recipient() -> str | Response | None:
    """The optional envelope recipient: ?to= or an X-Original-To request header."""
    values = {
        v.strip() for v in (request.args.get("to"), request.headers.get("X-Original-To")) if v
    }
    if not values:
        return None
    addresses = {normalize_email(v) for v in values}
    if None in addresses or len(addresses) != 1:
        return problem(
            400,
            "The envelope recipient (?to= or the X-Original-To header) must be one email "
            "address, and the same in both when both are given.",
        )
    return addresses.pop()


def _read_capped(cap: int) -> bytes:
    """Read the body in chunks; raise _TooLarge as soon as it passes `cap` bytes."""
    length = request.content_length
    if length is not None and length > cap:
        raise _TooLarge
    request.max_content_length = cap  # this route's own cap replaces the app-wide one
    chunks: list[bytes] = []
    total = 0
    try:
        stream = request.stream
        while True:
            chunk = stream.read(min(CHUNK, cap + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                raise _TooLarge
            chunks.append(chunk)
    except RequestEntityTooLarge:
        raise _TooLarge from None
    return b"".join(chunks)
