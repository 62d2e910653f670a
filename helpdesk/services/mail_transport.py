"""SMTP transport for notification email: build the message, send it.

Why: the delivery job runs unattended, so every failure has to say what to do next.
Errors split in two: TransientMailError (refused or timed-out connections, 4xx replies)
means "retry later"; PermanentMailError (5xx replies, a malformed message, a setup the
server rejects: wrong login, no STARTTLS, an unverifiable certificate) means "retrying will
not help". Setup errors count as permanent on purpose: retrying a wrong password gets
accounts locked, and a TLS failure must never fall back to plain text.

The settings (SmtpConfig, parse_smtp_url, MailConfigError) live in smtp_config and are
re-exported here. The password lives only in SmtpConfig (kept out of its repr); logs use
`redacted()` and every error message is scrubbed of it.

Headers are built so that mail cannot be turned against its readers or ourselves: any
header value with a line break or control character is refused (header injection);
Auto-Submitted and X-Auto-Response-Suppress stop out-of-office replies from looping back
into tickets; Message-IDs are stable per notification, so a retried send is recognisable
as the same message. Message-ID, In-Reply-To and References are written verbatim (folded
only between ids), because the stdlib folder would RFC 2047-encode a long id and break
threading in the receiver's client.
"""

from __future__ import annotations

import email.policy
import re
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import quote

from helpdesk.services.smtp_config import (
    DOMAIN_RE,
    SECURITY_MODES,
    TIMEOUT_MAX,
    UNSAFE_CHARS_RE,
    URL_EXAMPLE,
    MailConfigError,
    SmtpConfig,
    parse_smtp_url,
)
from helpdesk.services.validation import normalize_email

__all__ = [
    "SECURITY_MODES",
    "TIMEOUT_MAX",
    "URL_EXAMPLE",
    "MailConfigError",
    "OutgoingMail",
    "PermanentMailError",
    "SmtpConfig",
    "TransientMailError",
    "build_message",
    "make_message_id",
    "parse_smtp_url",
    "send_mail",
    "ticket_thread_id",
]

_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MSGID_RE = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,75}")
_MANAGED_HEADERS = {
    "from", "to", "cc", "bcc", "sender", "subject", "date", "message-id", "in-reply-to",
    "references", "reply-to", "auto-submitted", "x-auto-response-suppress", "mime-version",
    "content-type", "content-transfer-encoding",
}  # fmt: skip
_POLICY = email.policy.SMTP.clone(refold_source="none")
_REPLY_MAX = 200


class TransientMailError(Exception):
    """Sending failed for now (connection trouble, 4xx reply): retry later."""


class PermanentMailError(Exception):
    """Sending cannot succeed as is (5xx reply, malformed message, rejected setup)."""


def make_message_id(kind: str, ident: str | int, domain: str) -> str:
    """Return the stable Message-ID <helpdesk.{kind}.{ident}@{domain}> for one notification."""
    if isinstance(ident, bool) or not isinstance(ident, str | int):
        raise ValueError("Message-ID ident must be text or a whole number")
    _require_token("Message-ID kind", kind)
    _require_token("Message-ID ident", str(ident))
    return f"<helpdesk.{kind}.{ident}@{_require_domain(domain)}>"


def ticket_thread_id(org_slug: str, ticket_number: int, domain: str) -> str:
    """Return the thread root id <helpdesk.ticket.{org}.{number}@{domain}> for a ticket."""
    _require_token("organization slug", org_slug)
    if isinstance(ticket_number, bool) or not isinstance(ticket_number, int) or ticket_number < 1:
        raise ValueError("ticket number must be a whole number from 1 up")
    return f"<helpdesk.ticket.{org_slug}.{ticket_number}@{_require_domain(domain)}>"


def _require_token(what: str, value: object) -> None:
    if not isinstance(value, str) or not _TOKEN_RE.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '-' or '_' (got {value!r})")


def _require_domain(domain: object) -> str:
    if not isinstance(domain, str) or not DOMAIN_RE.fullmatch(domain):
        raise ValueError(f"mail domain must be a host name like example.com (got {domain!r})")
    return domain.lower()


@dataclass
class OutgoingMail:
    to: list[str]
    subject: str
    text: str
    html: str | None
    from_addr: str
    from_name: str
    message_id: str
    in_reply_to: str | None = None
    references: list[str] = field(default_factory=list)
    reply_to: str | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)


def build_message(mail: OutgoingMail) -> EmailMessage:
    """Build the MIME message (text, plus html as an alternative) with threading headers."""
    if not mail.to:
        raise ValueError("the message has no recipients; add at least one 'to' address")
    for addr in mail.to:
        _require_address("to", addr)
    message = EmailMessage(policy=_POLICY)
    message["From"] = Address(
        display_name=_single_line("From name", mail.from_name),
        addr_spec=_require_address("From", mail.from_addr),
    )
    message["To"] = ", ".join(mail.to)
    if mail.reply_to is not None:
        message["Reply-To"] = _require_address("Reply-To", mail.reply_to)
    message["Subject"] = _single_line("Subject", mail.subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message.set_raw("Message-ID", _require_msgid("Message-ID", mail.message_id))
    if mail.in_reply_to is not None:
        message.set_raw("In-Reply-To", _require_msgid("In-Reply-To", mail.in_reply_to))
    if mail.references:
        ids = [_require_msgid("References", ref) for ref in mail.references]
        message.set_raw("References", "\n ".join(ids))  # folded between ids, never inside
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    for name, value in mail.extra_headers.items():
        if not isinstance(name, str) or not _HEADER_NAME_RE.fullmatch(name):
            raise ValueError(f"extra header name {name!r} must be letters, digits and '-'")
        if name.lower() in _MANAGED_HEADERS:
            raise ValueError(f"set {name} through the OutgoingMail fields, not extra_headers")
        message[name] = _single_line(f"header {name}", value)
    if not isinstance(mail.text, str) or not mail.text.strip():
        raise ValueError("the message needs a plain-text body")
    message.set_content(mail.text)
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html")
    return message


def _single_line(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text")
    if UNSAFE_CHARS_RE.search(value):
        raise ValueError(f"{what} contains a line break or control character; use one line")
    return value


def _require_address(what: str, value: object) -> str:
    text = _single_line(f"{what} address", value)
    if normalize_email(text) is None:
        raise ValueError(f"{what} address {text!r} is not a valid email address")
    return text


def _require_msgid(what: str, value: object) -> str:
    text = _single_line(what, value)
    if not _MSGID_RE.fullmatch(text):
        raise ValueError(f"{what} {text!r} is not a message id like <local@example.com>")
    return text


def send_mail(config: SmtpConfig, mail: OutgoingMail) -> None:
    """Deliver one message; raise TransientMailError (retry) or PermanentMailError (don't)."""
    try:
        message = build_message(mail)
    except ValueError as exc:
        raise PermanentMailError(f"message not sent, it is malformed: {exc}") from exc
    server = f"{config.host}:{config.port}"
    step = f"connecting to {server}"
    smtp: smtplib.SMTP | None = None
    try:
        if config.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=_tls_context()
            )
        else:
            smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        if config.security == "starttls":
            step = f"starting TLS with {server}"
            smtp.starttls(context=_tls_context())
        if config.username is not None and config.password is not None:
            step = f"logging in to {server} as {config.username!r}"
            smtp.login(config.username, config.password)
        step = f"sending through {server}"
        refused = smtp.send_message(message, from_addr=mail.from_addr, to_addrs=mail.to)
    except (smtplib.SMTPException, OSError) as exc:
        raise _classify(exc, step, config) from exc
    finally:
        if smtp is not None:
            _quit(smtp)
    if refused:
        raise _refused(refused, step, config, some_accepted=True)


def _tls_context() -> ssl.SSLContext:
    """A verifying client context, made only when TLS is used.

    Making one loads every system CA certificate: 10-20 ms of CPU, which the job worker
    spent on every message, plain SMTP included, before this was lazy.
    """
    return ssl.create_default_context()


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _classify(exc: BaseException, step: str, config: SmtpConfig) -> Exception:
    """Turn an smtplib or socket error into a Transient/PermanentMailError with a short text."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return _refused(exc.recipients, step, config, some_accepted=False)
    if isinstance(exc, smtplib.SMTPAuthenticationError) and exc.smtp_code >= 500:
        text = f"{step}: login refused ({_reply(exc.smtp_code, exc.smtp_error)})"
        hint = "; check the user name and password in SMTP_URL"
        return PermanentMailError(_scrub(text + hint, config))
    if isinstance(exc, smtplib.SMTPResponseException):
        text = f"{step}: server replied {_reply(exc.smtp_code, exc.smtp_error)}"
        error = PermanentMailError if 500 <= exc.smtp_code < 600 else TransientMailError
        return error(_scrub(text, config))
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        starttls = step.startswith("starting TLS")
        hint = "fix security= in SMTP_URL or the server setup" if starttls else "not retrying"
        return PermanentMailError(_scrub(f"{step}: {str(exc).rstrip('.')}; {hint}", config))
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or "unknown reason"
        text = f"{step}: the server's TLS certificate is not trusted ({reason})"
        return PermanentMailError(_scrub(text, config))
    if isinstance(exc, ssl.SSLError):
        hint = "; check the port and security (465 is smtps://, 587 is ?security=starttls)"
        return PermanentMailError(_scrub(f"{step}: TLS failed ({exc.reason}){hint}", config))
    return TransientMailError(_scrub(f"{step}: {_describe(exc, config)}", config))


def _describe(exc: BaseException, config: SmtpConfig) -> str:
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return f"no answer within {config.timeout:g} seconds"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the mail server running and the port right?)"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve the host name {config.host!r}"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "the server closed the connection"
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)[:_REPLY_MAX]


def _refused(
    recipients: dict[str, tuple[int, bytes]], step: str, config: SmtpConfig, some_accepted: bool
) -> Exception:
    """Describe refused recipients; transient when any refusal is a 4xx (worth a retry)."""
    details = "; ".join(f"{addr} ({_reply(*answer)})" for addr, answer in recipients.items())
    prefix = "delivered to the others but refused" if some_accepted else "all recipients refused"
    text = _scrub(f"{step}: {prefix}: {details}", config)
    if any(400 <= code < 500 for code, _ in recipients.values()):
        return TransientMailError(text)
    return PermanentMailError(text)


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {' '.join(text.split())}"[:_REPLY_MAX]


def _scrub(text: str, config: SmtpConfig) -> str:
    """Remove the password (plain or percent-encoded) from a message meant for logs."""
    if config.password:
        for form in {config.password, quote(config.password, safe="")}:
            text = text.replace(form, "***")
    return text
