"""SMTP settings for notification email: SmtpConfig, and parse_smtp_url to read SMTP_URL.

Why: the delivery job runs unattended, so a bad SMTP_URL has to be refused up front with a
message that says how to fix it (MailConfigError), never half-used. The password lives only
in SmtpConfig (kept out of its repr); logs use `redacted()`, and parse errors never echo a
piece of the URL that could be part of a password.

mail_transport builds and sends messages with these settings (and re-exports the names here).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SECURITY_MODES = ("none", "starttls", "ssl")
TIMEOUT_MAX = 300.0
URL_EXAMPLE = "smtp://user:password@mail.example.com:587?security=starttls"
_ENCODE_HINT = "percent-encode / ? # @ : in the user name or password (%2F %3F %23 %40 %3A)"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# Shared with mail_transport: a host name, and characters no header or URL may hold.
DOMAIN_RE = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")
UNSAFE_CHARS_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


class MailConfigError(ValueError):
    """The mail setup (SMTP_URL and friends) is unusable; the message says how to fix it."""


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    security: str  # "none" | "starttls" | "ssl"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.host:
            raise MailConfigError("SMTP host is empty; set SMTP_URL like " + URL_EXAMPLE)
        if self.security not in SECURITY_MODES:
            raise MailConfigError(f"SMTP security must be one of: {', '.join(SECURITY_MODES)}")
        if not 1 <= self.port <= 65535:
            raise MailConfigError("SMTP port must be a number from 1 to 65535")
        if not (math.isfinite(self.timeout) and 0 < self.timeout <= TIMEOUT_MAX):
            raise MailConfigError(f"SMTP timeout must be seconds above 0, at most {TIMEOUT_MAX:g}")
        if (self.username is None) != (self.password is None):
            raise MailConfigError("SMTP login needs both a user name and a password")
        if not f"{self.username or ''}{self.password or ''}".isascii():
            raise MailConfigError(
                "SMTP user name and password must be ASCII (smtplib sends no other)"
            )

    def redacted(self) -> str:
        """Return the settings as an SMTP URL with the password replaced by ***."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="") + ":***@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.security == "ssl":
            return f"smtps://{auth}{host}:{self.port}?timeout={self.timeout:g}"
        query = f"security={self.security}&timeout={self.timeout:g}"
        return f"smtp://{auth}{host}:{self.port}?{query}"


def parse_smtp_url(url: str) -> SmtpConfig:
    """Parse smtp://[user:pass@]host[:port][?security=starttls|none&timeout=10] or smtps://."""
    if not isinstance(url, str) or not url.strip():
        raise MailConfigError(f"SMTP_URL is empty; set it like {URL_EXAMPLE}")
    raw = url.strip()
    if UNSAFE_CHARS_RE.search(raw) or " " in raw:
        raise MailConfigError(f"SMTP_URL contains spaces or control characters; {_ENCODE_HINT}")
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps") or not raw[len(scheme) :].startswith("://"):
        raise MailConfigError(f"SMTP_URL must start with smtp:// or smtps://, like {URL_EXAMPLE}")
    if parts.path not in ("", "/") or parts.fragment or raw.endswith("#"):
        raise MailConfigError(f"SMTP_URL must not have a path or #fragment; {_ENCODE_HINT}")
    host = _parse_host(parts.hostname)
    options = _parse_options(parts.query)
    security = _parse_security(scheme, options.get("security"))
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise MailConfigError(f"SMTP_URL port must be a number from 1 to 65535; {_ENCODE_HINT}")
    username, password = _parse_login(parts.username, parts.password)
    return SmtpConfig(
        host=host,
        port=port or (465 if security == "ssl" else 25),
        username=username,
        password=password,
        security=security,
        timeout=_parse_timeout(options.get("timeout")),
    )


def _parse_host(hostname: str | None) -> str:
    if not hostname:
        raise MailConfigError(f"SMTP_URL has no host; set it like {URL_EXAMPLE}")
    if not (DOMAIN_RE.fullmatch(hostname) or re.fullmatch(r"[0-9a-f:.]+", hostname)):
        raise MailConfigError(f"SMTP_URL host is not a valid host name; {_ENCODE_HINT}")
    return hostname


def _parse_options(query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in ("security", "timeout"):
            # Show the name only when it cannot be a piece of a password cut at '?'.
            shown = f" {key!r}" if re.fullmatch(r"[A-Za-z_]{1,30}", key) else ""
            hint = "" if shown else f" ({_ENCODE_HINT})"
            raise MailConfigError(
                f"SMTP_URL has an unknown option{shown}; the options are security and timeout"
                + hint
            )
        if key in options:
            raise MailConfigError(f"SMTP_URL sets {key} twice; keep one")
        options[key] = value
    return options


def _parse_security(scheme: str, value: str | None) -> str:
    mode = (value or "").strip().lower()
    if scheme == "smtps":
        if mode not in ("", "ssl"):
            raise MailConfigError(
                "smtps:// always uses implicit TLS; drop ?security= or use "
                "smtp://host:587?security=starttls"
            )
        return "ssl"
    if not mode:
        return "none"
    if mode not in SECURITY_MODES:
        raise MailConfigError(
            "SMTP_URL security must be none or starttls (use smtps:// for implicit TLS on 465)"
        )
    return mode


def _parse_login(user: str | None, password: str | None) -> tuple[str | None, str | None]:
    name = unquote(user) if user else None
    secret = unquote(password) if password is not None else None
    if name is None and secret:
        raise MailConfigError("SMTP_URL has a password but no user name: smtp://user:pass@host")
    if name is not None and not secret:
        raise MailConfigError(
            f"SMTP_URL has the user name {name!r} but no password; write it as "
            f"smtp://{quote(name, safe='')}:PASSWORD@host (is a variable in it unset?)"
        )
    return name, secret


def _parse_timeout(value: str | None) -> float:
    if value is None:
        return 10.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= TIMEOUT_MAX):
        raise MailConfigError(
            f"SMTP_URL timeout must be a number of seconds above 0, at most {TIMEOUT_MAX:g}"
        )
    return seconds
