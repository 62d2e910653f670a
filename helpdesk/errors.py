"""Error pages: HTML for the browser, problem+json under /api/."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from redis.exceptions import RedisError
from werkzeug.exceptions import HTTPException

from helpdesk.htmx import is_htmx, trigger
from helpdesk.services.errors import Forbidden, NotFound
from helpdesk.storage import StorageError

MESSAGES = {
    400: "The request could not be understood.",
    403: "You are not allowed to do that.",
    404: "There is nothing here, or you do not have access to it.",
    405: "That action is not allowed here.",
    413: "That upload is too large.",
    429: "Too many attempts. Please wait a moment and try again.",
    500: "Something went wrong on our side. Please try again.",
}


def problem(status: int, detail: str, **extra: object) -> Response:
    """An RFC 9457 problem+json response."""
    body = {"type": "about:blank", "title": _title(status), "status": status, "detail": detail}
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = "application/problem+json"
    return response


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def error_response(status: int, detail: str | None = None) -> Response:
    """Render an error for the current request in the right format."""
    message = detail or MESSAGES.get(status, "Error")
    if _wants_json():
        return problem(status, message)
    html = render_template("errors/error.html", status=status, message=message)
    return Response(html, status=status, mimetype="text/html")


def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    detail = None
    if status in (400, 413) and exc.description and not isinstance(exc, CSRFError):
        detail = exc.description
    if status == 429:
        return _too_many(exc)
    response = error_response(status, detail)
    if status == 405:
        allowed = exc.get_headers()
        for name, value in allowed:
            if name == "Allow":
                response.headers["Allow"] = value
    return response


def _too_many(exc: HTTPException) -> Response:
    """429: problem+json for the API, a fragment plus a toast for HTMX, else the page."""
    message = MESSAGES[429]
    if not _wants_json() and is_htmx():
        html = render_template("errors/_too_many.html", message=message)
        response = Response(html, status=429, mimetype="text/html")
        trigger(response, toast=message)
    else:
        response = error_response(429)
    retry = exc.response.headers.get("Retry-After") if exc.response is not None else None
    response.headers["Retry-After"] = retry or "60"  # set by helpdesk.ratelimits on breach
    return response


def _csrf_error(_exc: CSRFError) -> Response:
    return error_response(
        400,
        "Your form expired or did not come from this site, so nothing was saved. "
        "Reload the page and try again.",
    )


def _redis_down(_exc: RedisError) -> Response:
    # Rate-limited routes fail closed when their counters are unreachable (docs/decisions).
    response = error_response(
        503, "This action is briefly unavailable. Please try again in a minute."
    )
    response.headers["Retry-After"] = "30"
    return response


def _storage_down(_exc: StorageError) -> Response:
    # A backstop: upload and download code answers its own 503 with context; anything that
    # reaches here still gets a clear page (the transaction was not committed).
    response = error_response(
        503, "File storage is unavailable right now, so nothing was saved. Please try again soon."
    )
    response.headers["Retry-After"] = "30"
    return response


def init_app(app: Flask) -> None:
    app.register_error_handler(RedisError, _redis_down)
    app.register_error_handler(StorageError, _storage_down)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(NotFound, lambda exc: error_response(404, str(exc)))
    app.register_error_handler(Forbidden, lambda exc: error_response(403, str(exc)))
