"""Feature-flag gates: which routes each runtime switch turns off, all in one list.

Why a list instead of checks inside views: what a flag covers is read in one place (like
`helpdesk/ratelimits.py` for limits), and a test checks that every upload, download,
public-form, inbound-mail and API write route is in it. `install` wraps each listed view,
so a gate runs after the route's own before_request checks (login, the org gate, the API
token: a stranger still gets 401 or 404 first) and before the view reads a file or stores
anything. Views that check access inside themselves (the requester's /r/ pages, the inbound
secret) are answered the same 503 whoever asks, so the answer reveals nothing.

The deploy-time switches UPLOADS_ENABLED and DOWNLOADS_ENABLED stay in the attachment
services: a route is served only when its env switch AND its flag allow it.

A switched-off route answers 503 with Retry-After and says what is off. The API and the
inbound-mail endpoint get problem+json. Browsers get a page. HTMX requests get the page's
message block and a toast, with `HX-Reswap: none`, so the form keeps its text and files.
Webhooks are not a route: each delivery checks its flag (`services/deliveries.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, render_template, request
from jinja2_fragments.flask import render_block
from werkzeug.wrappers import Response

from helpdesk.blueprints.upload_forms import incoming_files
from helpdesk.db import get_session
from helpdesk.errors import problem
from helpdesk.htmx import is_htmx, trigger
from helpdesk.services import flags
from helpdesk.services.flags import SwitchedOff

RETRY_AFTER = "60"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _sends_files() -> bool:
    """True when a message form carries at least one file (an empty file field does not)."""
    return bool(incoming_files())


@dataclass(frozen=True)
class Gate:
    """Routes one flag turns off: listed endpoints and/or a whole blueprint."""

    flag: str
    message: str
    endpoints: frozenset[str] = frozenset()
    blueprint: str | None = None
    methods: frozenset[str] | None = None  # None: every method
    when: Callable[[], bool] | None = None  # a further condition on the request
    machine: bool = False  # the caller is a program: answer problem+json

    def covers(self, endpoint: str) -> bool:
        """Whether this gate wraps the endpoint's view."""
        in_blueprint = self.blueprint is not None and endpoint.startswith(f"{self.blueprint}.")
        return endpoint in self.endpoints or in_blueprint

    def applies(self) -> bool:
        """Whether the current request is one this gate stops (method and condition)."""
        if self.methods is not None and request.method not in self.methods:
            return False
        return self.when is None or self.when()


def _names(*endpoints: str) -> frozenset[str]:
    return frozenset(endpoints)


GATES: list[Gate] = [
    Gate(
        "attachments_upload",
        "File uploads are switched off for now, so nothing was saved. Try again later.",
        endpoints=_names("api.upload_attachments"),
    ),
    # The message forms take text and files together: only a message with files is refused.
    Gate(
        "attachments_upload",
        "File uploads are switched off for now, so nothing was saved. Send your message "
        "without the files, or try again later.",
        endpoints=_names("tickets.create", "tickets.comment", "links.reply"),
        when=_sends_files,
    ),
    Gate(
        "attachments_download",
        "File downloads are switched off for now. The file is kept; try again later.",
        endpoints=_names(
            "tickets.attachment_download", "links.attachment_download", "api.download_attachment"
        ),
    ),
    Gate(
        "public_form",
        "The request form is closed for now, so nothing was sent. Please try again later.",
        blueprint="request_form",
    ),
    Gate(
        "inbound_email",
        "Inbound email is paused, so this message was not stored. Keep it and retry later.",
        endpoints=_names("inbound.receive"),
        machine=True,
    ),
    Gate(
        "api_writes",
        "Changes through the API are switched off for now, so nothing was saved. Reading "
        "still works; retry later.",
        blueprint="api",
        methods=WRITE_METHODS,
        machine=True,
    ),
]


def gates_for(endpoint: str, methods: Iterable[str] | None = None) -> list[Gate]:
    """The gates of an endpoint (served for `methods`, when given), in list order."""
    served = None if methods is None else frozenset(methods)
    return [
        gate
        for gate in GATES
        if gate.covers(endpoint)
        and (served is None or gate.methods is None or gate.methods & served)
    ]


def _gated(view: Callable[..., Any], gates: Iterable[Gate]) -> Callable[..., Any]:
    checks = tuple(gates)

    @functools.wraps(view)
    def gated(*args: Any, **kwargs: Any) -> Any:
        for gate in checks:
            if gate.applies():
                flags.require(get_session(), gate.flag, gate.message)
        return view(*args, **kwargs)

    return gated


def switched_off(exc: SwitchedOff) -> Response:
    """503 + Retry-After: problem+json, an HTMX fragment and toast, or a page."""
    gate_machine = any(g.machine and g.flag == exc.flag for g in gates_for(request.endpoint or ""))
    response: Response
    if gate_machine or request.path.startswith("/api/"):
        response = problem(503, exc.message, flag=exc.flag)
    elif is_htmx():
        body = render_block("errors/error.html", "content", status=503, message=exc.message)
        response = trigger(Response(body, status=503, mimetype="text/html"), toast=exc.message)
        response.headers["HX-Reswap"] = "none"  # the form stays as it is, text and files kept
    else:
        html = render_template("errors/error.html", status=503, message=exc.message)
        response = Response(html, status=503, mimetype="text/html")
    response.headers["Retry-After"] = RETRY_AFTER
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask) -> None:
    """Wrap every gated view, answer SwitchedOff, and add the operators' /ops/flags page."""
    from helpdesk.blueprints.ops.flags import bp as ops_flags_bp

    app.register_blueprint(ops_flags_bp)
    listed = {name for gate in GATES for name in gate.endpoints}
    missing = sorted(listed - set(app.view_functions))
    if missing:
        raise RuntimeError(f"flag gates name endpoints that do not exist: {', '.join(missing)}")
    methods: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        methods.setdefault(rule.endpoint, set()).update(rule.methods or ())
    for endpoint, view in list(app.view_functions.items()):
        gates = gates_for(endpoint, methods.get(endpoint, ()))
        if gates:
            app.view_functions[endpoint] = _gated(view, gates)
    app.register_error_handler(SwitchedOff, switched_off)
