"""Response headers every page carries: strict CSP and friends.

Every header is set with `setdefault`, so a view may answer with its own policy and keep
it. Exactly one view does, deliberately: the rq-dashboard pages under /ops/rq
(`helpdesk.blueprints.ops.rq`), shown only to logged-in site operators. That third-party
UI renders one inline <script> per page, builds its rows with underscore templates
(`_.template` compiles with `Function()`, i.e. eval) and puts style="" attributes in its
markup, so its policy adds 'unsafe-inline' 'unsafe-eval' to script-src and
'unsafe-inline' to style-src. Everything else stays as strict as the rest of the site:
same-origin only, no plugins, no framing, no foreign form targets. No other path may be
relaxed without a reason written here.

Two headers depend on the request. `Strict-Transport-Security` is sent only over HTTPS
(`request.is_secure`, which ProxyFix derives from X-Forwarded-Proto only for the trusted
PROXY_HOPS): browsers ignore it over plain HTTP, and a development server must stay
reachable. Pages whose URL carries a credential — emailed ticket links (/t/…) and password
reset links (/reset/…) — always answer `Referrer-Policy: no-referrer`, so the token never
leaves in a Referer header, whatever the view set.
"""

from __future__ import annotations

from flask import Flask, Response, request

_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def _policy(**overrides: str) -> str:
    directives = {**_DIRECTIVES, **{k.replace("_", "-"): v for k, v in overrides.items()}}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


CSP = _policy()
HSTS = "max-age=31536000; includeSubDomains"
TOKEN_PATHS = ("/t/", "/reset/")
# Operators only, /ops/rq: see the module docstring for why and what stays strict.
RQ_DASHBOARD_CSP = _policy(
    script_src="'self' 'unsafe-inline' 'unsafe-eval'", style_src="'self' 'unsafe-inline'"
)


def _apply(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.path.startswith(TOKEN_PATHS):
        headers["Referrer-Policy"] = "no-referrer"
    headers.setdefault("Referrer-Policy", "same-origin")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", HSTS)
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if response.mimetype == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.after_request(_apply)
