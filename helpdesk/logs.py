"""Log lines: one JSON object per line, with the request or job they belong to, and no PII.

Why this is a security module: log lines are shipped to more systems, kept longer and read
by more people than the database, so what reaches them must never identify or authorize
anyone. Code logs ids, never emails, names, bodies, tokens, passwords, cookies or client
addresses — and because one careless format string would undo that, `RedactFilter`
defends in depth: whatever looks like an email address, a bearer token or `Authorization`
value, a password/secret/token field, an API token, a link token in a path, a webhook
signature or a full IP address is masked before the line is written. Extra fields pass
only when their name is allow-listed (`ALLOWED_FIELDS`, or an id/count/duration suffix).

Every line carries `time` (UTC), `level`, `event`, `logger`, `request_id`, `org_id` and
`user_id`, read from the request being served or the job being run (`bound`).
`json.dumps` escapes newlines and control characters, so hostile input never splits a line.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from flask import g, has_request_context, request

from helpdesk.tenancy import current_org_id

HANDLER_MARK = "_helpdesk_handler"
CONTEXT_FIELDS = ("request_id", "org_id", "user_id")
ALLOWED_FIELDS = frozenset(
    {
        "event", "request_id", "org_id", "user_id", "route", "method", "status",
        "duration_ms", "ip_prefix", "user_agent", "job", "job_id", "queue", "reason",
        "result", "outcome", "channel", "attempt", "attempts", "max_attempts", "error",
        "error_type", "limit", "scope", "kind", "count", "ok", "seq", "action", "target_type",
        "retry_at", "quarantined", "signature", "scan_status", "source", "check", "flag",
        "enabled", "revision", "pid", "detail", "response_status", "shared_rows", "first_broken",
    }
)  # fmt: skip
ALLOWED_SUFFIXES = ("_id", "_ids", "_count", "_ms", "_seconds", "_at")
QUIET_LOGGERS = ("alembic.runtime.plugins", "mail.log")  # mail.log: the dev SMTP sink (aiosmtpd)
MAX_TEXT = 2_000
CACHED_TEXT = 200  # redaction results of texts up to this long are cached
MAX_MESSAGE = 8_000
MAX_EXC = 16_000
REDACTED = "[redacted]"

_REDACTED_MARK = "_helpdesk_redacted"
_bound: ContextVar[Mapping[str, Any] | None] = ContextVar("helpdesk_log_context", default=None)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message", "asctime", "taskName", "_helpdesk_redacted"
}  # fmt: skip
_EVENT_TOKEN = re.compile(r"^([a-z][a-z0-9_]*(?:[.:][a-z0-9_]+)*)(?:\s|$)")

# --- redaction ----------------------------------------------------------------------------

_SECRET_KEY = r"(?:[\w-]*[_-])?(?:password|passwd|secret|token|api_?key)"  # noqa: S105
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # email addresses, also URL-encoded (pat%40example.com)
    (re.compile(r"[\w.%+'-]+(?:@|%40)[\w-]+(?:\.[\w-]+)*\.[A-Za-z][\w-]*"), "[email]"),
    # Authorization / Cookie header values, up to the end of the line or a quote
    (
        re.compile(
            r"(?i)\b((?:proxy-)?authorization|set-cookie|cookie|x-csrf-?token)"
            r"(['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"\b((?i:bearer)|Basic)\s+[\w.~+/=-]{6,}"), r"\1 " + REDACTED),
    # password=..., "token": "...", csrf_token=... (not token_id=, which is an id)
    (
        re.compile(
            rf"(?i)(?<![\w-])({_SECRET_KEY})(?![\w-])(['\"]?\s*[:=]\s*['\"]?)"
            r"(?!\[redacted\])[^\s'\"&,;}\]]+"
        ),
        r"\1\2" + REDACTED,
    ),
    (re.compile(r"\bhdk_[\w-]{6,}"), "hdk_" + REDACTED),  # API tokens
    (re.compile(r"\bwhsec_[\w+/=-]{6,}"), "whsec_" + REDACTED),  # webhook secrets
    (re.compile(r"\bv1,[\w+/=-]{16,}"), "v1," + REDACTED),  # webhook signatures
    # link, reset and invite tokens in paths: /t/<token>, /reset/<token>
    (
        re.compile(r"(/(?:t|reset|password-reset|invite|verify|unsubscribe)/)[^\s/?#'\"<>]{12,}"),
        r"\1" + REDACTED,
    ),
)
_SECRET_NAME = re.compile(r"(?i)token|passw|secret|key|signature|csrf|session|auth")
MIN_SECRET = 8
_IPV4 = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?!\.?\d|/\d)")
_IPV6 = re.compile(r"(?<![\w:.])((?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4})(?![\w:]|/\d)")


@functools.lru_cache(maxsize=4096)  # every request logs one; the same few clients repeat
def address_prefix(address: str | None) -> str | None:
    """Return the /24 (IPv4) or /48 (IPv6) network of an address; None if it is not one."""
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return None
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def _mask_ip(match: re.Match[str]) -> str:
    return address_prefix(match.group(1)) or match.group(0)


def request_secrets() -> list[str]:
    """Secret values the request being served carries, longest first.

    URL parameters, query and (already parsed) form fields with a secret-sounding name,
    every cookie value and the Authorization header's parts: wherever one of them shows
    up (an exception message quoting a token), it is masked. The body is never read here.
    """
    if not has_request_context():
        return []
    named: list[tuple[str, Any]] = [*(request.view_args or {}).items()]
    named += request.args.items(multi=True)
    form = request.__dict__.get("form")  # present only once the view parsed it
    if form is not None:
        named += form.items(multi=True)
    found = {str(v) for k, v in named if _SECRET_NAME.search(k) and len(str(v)) >= MIN_SECRET}
    found.update(v for v in request.cookies.values() if len(v) >= MIN_SECRET)
    auth = request.headers.get("Authorization", "")
    found.update(part for part in auth.split() if len(part) >= MIN_SECRET)
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Mask emails, credentials, tokens and full IP addresses in `text`.

    `secrets` is the request's `request_secrets()`, when the caller already has them.
    """
    for secret in request_secrets() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    if len(text) <= CACHED_TEXT:
        return _redact_patterns(text)  # route templates, events, user agents: seen again
    return _apply_patterns(text)


def _apply_patterns(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = _IPV4.sub(_mask_ip, text)
    return _IPV6.sub(_mask_ip, text)


# The patterns' result depends on the text alone (request secrets are replaced before), so
# short texts are cached: every request logs the same few route templates and agents.
_redact_patterns = functools.lru_cache(maxsize=4096)(_apply_patterns)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more]"


def _clean(value: Any, secrets: list[str]) -> Any:
    """A JSON-safe, redacted, size-bounded copy of an extra field's value."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean(v, secrets) for v in list(value)[:50]]
    if isinstance(value, datetime):
        return value.isoformat()
    return redact(_clip(str(value), MAX_TEXT), secrets)


def _allowed(name: str) -> bool:
    return name in ALLOWED_FIELDS or name.endswith(ALLOWED_SUFFIXES)


def _without_raw_path(message: str) -> str:
    """Flask logs "Exception on <raw path> [GET]": say the route template instead."""
    if not message.startswith("Exception on ") or not has_request_context():
        return message
    rule = request.url_rule
    return f"Exception on {rule.rule if rule else 'unmatched'} [{request.method}]"


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # a bad format string must not lose the line
        return str(record.msg)


class RedactFilter(logging.Filter):
    """Rewrite the record's message and allow-listed extras in redacted form.

    It changes the record itself, so handlers that see it after this one get it clean too.
    Other extras stay on the record untouched; the formatters never write them.
    """

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = request_secrets()  # once per line, not once per field
        record.msg = redact(_clip(_without_raw_path(_message(record)), MAX_MESSAGE), secrets)
        record.args = ()
        if record.exc_info and not record.exc_text:  # formatters reuse the cached text
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(_clip(record.exc_text, MAX_EXC), secrets)
        for name in [n for n in record.__dict__ if n not in _STANDARD and _allowed(n)]:
            setattr(record, name, _clean(record.__dict__[name], secrets))
        setattr(record, _REDACTED_MARK, True)  # the formatter need not do it again
        return True


# --- context ------------------------------------------------------------------------------


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Attach `fields` (request_id, org_id, job …) to every line logged inside the block."""
    outer = _bound.get() or {}
    token = _bound.set({**outer, **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def _loaded(obj: Any, name: str) -> Any:
    """An attribute already in memory; never a lazy load (logging must not query)."""
    from sqlalchemy import inspect

    state = inspect(obj, raiseerr=False)
    if state is None:
        return getattr(obj, name, None)
    return state.dict.get(name)


def _request_user_id() -> Any:
    user = g.get("_login_user")  # set by flask-login once something asked for current_user
    if user is not None and getattr(user, "is_authenticated", False):
        return _loaded(user, "id")
    token = g.get("api_token")
    return _loaded(token, "user_id") if token is not None else None


def request_context() -> dict[str, Any]:
    """Return request_id, org_id and user_id of the request being served (if any)."""
    if not has_request_context():
        return {}
    session = g.get("db_session")
    return {
        "request_id": g.get("request_id"),
        "org_id": current_org_id(session) if session is not None else None,
        "user_id": _request_user_id(),
    }


class ContextFilter(logging.Filter):
    """Add request_id, org_id and user_id (an explicit `extra` wins) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = dict(_bound.get() or {})
        context.update((k, v) for k, v in request_context().items() if v is not None)
        for name, value in context.items():
            if value is not None and getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


# --- formatting ---------------------------------------------------------------------------


def fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    """Return the record as the dict one JSON line holds."""
    if getattr(record, _REDACTED_MARK, False):
        return _fields(record, formatter, lambda value: value)  # RedactFilter cleaned it
    secrets = request_secrets()
    return _fields(record, formatter, lambda value: _clean(value, secrets), secrets)


def _fields(
    record: logging.LogRecord,
    formatter: logging.Formatter,
    clean: Callable[[Any], Any],
    secrets: list[str] | None = None,
) -> dict[str, Any]:
    message = _message(record)
    if secrets is not None:
        message = redact(_clip(_without_raw_path(message), MAX_MESSAGE), secrets)
    event = getattr(record, "event", None)
    if not event:
        match = _EVENT_TOKEN.match(message)
        event = match.group(1) if match else message
    out: dict[str, Any] = {
        "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "event": clean(event),
        "logger": record.name,
    }
    for name in CONTEXT_FIELDS:
        out[name] = clean(getattr(record, name, None))
    for name, value in record.__dict__.items():
        if name not in _STANDARD and name not in out and _allowed(name):
            out[name] = clean(value)
    if message != event:
        out["message"] = message
    exc = record.exc_text or (formatter.formatException(record.exc_info) if record.exc_info else "")
    if exc:
        out["exc"] = exc if secrets is None else redact(_clip(exc, MAX_EXC), secrets)
    if record.stack_info:
        out["stack"] = redact(_clip(formatter.formatStack(record.stack_info), MAX_EXC))
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line (ASCII: control characters and newlines are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(fields(record, self), ensure_ascii=True, default=str)


class TextFormatter(logging.Formatter):
    """A readable line for development (LOG_FORMAT=text), redacted like the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        data = fields(record, self)
        head = f"{data.pop('time')} {data.pop('level'):<7} {data.pop('event')}"
        data.pop("logger")
        exc = data.pop("exc", None)
        rest = " ".join(f"{k}={v}" for k, v in data.items() if v is not None)
        line = f"{head} {rest}".rstrip().replace("\r", "\\r").replace("\n", "\\n")
        return f"{line}\n{exc}" if exc else line


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (test capture swaps it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self) -> Any:
        return sys.stderr


def build_handler(fmt: str = "json", stream: Any = None) -> logging.Handler:
    """Return a handler with the context and redaction filters and the chosen format."""
    handler: logging.Handler = (
        logging.StreamHandler(stream) if stream is not None else StderrHandler()
    )
    handler.addFilter(ContextFilter())
    handler.addFilter(RedactFilter())
    handler.setFormatter(TextFormatter() if fmt == "text" else JsonFormatter())
    setattr(handler, HANDLER_MARK, True)
    return handler


def configure(fmt: str = "json", level: str = "INFO") -> None:
    """Send every log line of this process to stderr in `fmt` (idempotent).

    Replaces a handler installed by an earlier call (a second app in tests, the gunicorn
    config), keeps handlers others installed, and removes Flask's default text handler.
    """
    from flask.logging import default_handler

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, HANDLER_MARK, False):
            root.removeHandler(handler)
    root.addHandler(build_handler(fmt))
    root.setLevel(level)
    logging.getLogger("helpdesk").removeHandler(default_handler)
    for name in QUIET_LOGGERS:  # chatty at INFO, useless in operation
        logging.getLogger(name).setLevel(logging.WARNING)


def gunicorn_logconfig(fmt: str = "json", level: str = "INFO") -> dict[str, Any]:
    """Return gunicorn's `logconfig_dict`: its own lines through the same handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": level, "handlers": ["helpdesk"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
        "handlers": {"helpdesk": {"()": "helpdesk.logs.build_handler", "fmt": fmt}},
        "formatters": {},
    }
