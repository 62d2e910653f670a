"""One helper decides page or fragment; responses always vary on HX-Request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from flask import Flask, make_response, render_template, request
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response


def is_htmx() -> bool:
    """True for an HTMX request that wants a fragment (not boosted, not history restore)."""
    return (
        request.headers.get("HX-Request") == "true"
        and request.headers.get("HX-Boosted") != "true"
        and request.headers.get("HX-History-Restore-Request") != "true"
    )


def render(template: str, block: str | None = None, status: int = 200, **ctx: Any) -> Response:
    """Render the named block for HTMX requests, the whole page otherwise."""
    if block is not None and is_htmx():
        body = render_block(template, block, **ctx)
    else:
        body = render_template(template, **ctx)
    return make_response(body, status)


def trigger(response: Response, **events: Any) -> Response:
    """Attach HX-Trigger events (e.g. toast="Reply sent") to a response."""
    existing = response.headers.get("HX-Trigger")
    merged: dict[str, Any] = json.loads(existing) if existing else {}
    merged.update(events)
    response.headers["HX-Trigger"] = json.dumps(merged)
    return response


def add_vary(response: Response) -> Response:
    """after_request hook: caches must key on HX-Request."""
    response.vary.add("HX-Request")
    return response


def init_app(app: Flask) -> None:
    """Vary on HX-Request and expose the pinned htmx file name to templates."""
    app.after_request(add_vary)
    found = sorted(Path(app.static_folder or "static").glob("htmx-*.min.js"))
    if not found:
        raise RuntimeError("helpdesk/static/htmx-<version>.min.js is missing")
    name = found[-1].name
    app.context_processor(lambda: {"htmx_js": name})
