"""Error reports to Sentry (or any server speaking its protocol) when SENTRY_DSN is set.

Why it scrubs: an error report carries the request that failed — URL, query, headers,
cookies, form — and the stack, so by default it would ship link tokens, session cookies,
API tokens, passwords and email addresses to a third party. Here the SDK runs with PII
off (`send_default_pii` unset, i.e. False), no local variables and no request bodies, and
`scrub_event` (`before_send`) removes what is still left: the URL becomes the route
template (no link token, no query values), the Authorization/Cookie/CSRF/forwarding
headers, form data, cookies and the user's email, name and IP address go, and every
remaining string passes through the same redaction as the log lines
(`helpdesk.logs.redact`).

Web (create_app) and the worker and cron (which build the app too) initialise it the same
way; the RQ integration reports failing jobs with their ids.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import has_request_context, request

from helpdesk.config import Settings
from helpdesk.logs import REDACTED, redact

ROOT = Path(__file__).resolve().parent.parent
SECRET_HEADERS = frozenset(
    {
        "authorization", "proxy-authorization", "cookie", "set-cookie", "x-csrftoken",
        "x-csrf-token", "x-forwarded-for", "forwarded", "x-real-ip", "webhook-signature",
    }
)  # fmt: skip
SECRET_KEYS = frozenset(
    {
        "password", "passwd", "secret", "token", "api_key", "signature", "email", "cookies",
        "authorization", "csrf_token", "ip_address", "username",
    }
)  # fmt: skip

KEEP_KEYS = frozenset({"release", "environment", "event_id", "timestamp", "platform"})


def release(settings: Settings) -> str:
    """HELPDESK_RELEASE, else `helpdesk@<version>` plus the git commit when one is checked out."""
    if settings.release:
        return settings.release
    try:
        version = importlib.metadata.version("helpdesk")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    sha = git_commit(ROOT)
    return f"helpdesk@{version}+{sha[:12]}" if sha else f"helpdesk@{version}"


def git_commit(root: Path) -> str | None:
    """Read the checked-out commit from .git without running git (None when unknown)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head or None
        ref = head[5:]
        loose = git / ref
        if loose.is_file():
            return loose.read_text().strip() or None
        for line in (git / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except OSError:
        return None
    return None


def init(settings: Settings) -> bool:
    """Start error reporting when SENTRY_DSN is set; return whether it is on."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        integrations=[FlaskIntegration(), RqIntegration()],
        release=release(settings),
        environment=settings.env,
        traces_sample_rate=settings.sentry_traces_sample_rate,
        # PII stays off: `send_default_pii` left unset is False (recent SDKs deprecate passing
        # it), which also keeps the SDK's own EventScrubber; ours runs after it.
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,
        before_send_transaction=scrub_event,
    )
    return True


def scrub_event(event: Any, _hint: Any = None) -> Any:
    """Remove secrets and personal data from an event (a dict) before it leaves the process."""
    req = event.get("request")
    if isinstance(req, dict):
        _scrub_request(req)
    user = event.get("user")
    if isinstance(user, dict):
        event["user"] = {"id": user["id"]} if "id" in user else {}
    if isinstance(event.get("transaction"), str):
        event["transaction"] = redact(event["transaction"])
    return _walk(event)


def _scrub_request(req: dict[str, Any]) -> None:
    for name in ("data", "cookies", "env"):
        req.pop(name, None)
    headers = req.get("headers")
    if isinstance(headers, dict):
        req["headers"] = {k: v for k, v in headers.items() if k.lower() not in SECRET_HEADERS}
    query = req.get("query_string")
    if isinstance(query, str) and query:
        names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
        req["query_string"] = urlencode([(name, REDACTED) for name in names])
    if isinstance(req.get("url"), str):
        req["url"] = _url_without_secrets(req["url"])


def _url_without_secrets(url: str) -> str:
    """The URL with the route template as its path (no token, no ids) and no query."""
    parts = urlsplit(url)
    path = parts.path
    if has_request_context() and request.url_rule is not None:
        path = request.url_rule.rule
    return urlunsplit((parts.scheme, parts.netloc, redact(path), "", ""))


def _walk(value: Any, key: str = "") -> Any:
    if key in KEEP_KEYS:
        return value
    if key.lower() in SECRET_KEYS and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _walk(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v) for v in value]
    return value
