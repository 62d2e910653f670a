"""Read a raw RFC 822 message: sender, recipients, thread ids, and the text a person wrote.

Why this is careful: inbound mail is hostile or broken input from anyone on the internet.
Parsing never raises — a message that cannot be used comes back with `fatal` set to a reason
an admin can read, and every lossy step (unknown charset, truncation, skipped attachments)
is recorded in `notes`. Headers are read with the lenient `compat32` policy and decoded by
hand, because the modern header parser raises on some malformed address lists. HTML mail is
turned into plain text here (html.parser, no markup kept); the text then takes the normal
markdown → nh3 path of `rendering.py` like any typed comment, so nothing from the message is
ever shown as its own HTML. The raw bytes stay in `InboundMessage.raw` for audit.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field
from email import errors, message_from_bytes
from email.header import Header, decode_header
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import getaddresses, parseaddr

from helpdesk.services.mail_text import html_to_text, reply_text
from helpdesk.services.validation import normalize_email, one_line

PEEK_BYTES = 262_144  # the header block is read from this much of the message
TEXT_MAX = 200_000  # characters of body text examined; the rest is cut (noted)
HTML_MAX = 2_000_000  # characters of HTML converted
RECIPIENT_HEADERS = ("X-Original-To", "Delivered-To", "To", "Cc")
_MSGID_RE = re.compile(r"<[^<>\s]{1,995}>")
_STRUCTURAL = (
    errors.NoBoundaryInMultipartDefect,
    errors.StartBoundaryNotFoundDefect,
    errors.MultipartInvariantViolationDefect,
)
_REPLY_PREFIX = r"re|aw|sv|antw|odp|rif"
_FORWARD_PREFIX = r"fwd?|wg|tr|vb|vl|enc"
_PREFIXES_RE = re.compile(
    rf"^\s*(?:(?:{_REPLY_PREFIX}|{_FORWARD_PREFIX})\s*(?:\[\d+\]|\(\d+\))?\s*:\s*)+", re.I
)
_FORWARD_RE = re.compile(rf"^\s*(?:{_FORWARD_PREFIX})\s*:", re.I)
TAG_RE = re.compile(r"\[\s*([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\s+#(\d{1,9})\s*\]", re.I)


@dataclass
class ParsedMail:
    message: Message
    message_id: str | None = None
    subject: str = ""
    sender: str | None = None
    sender_name: str = ""
    recipients: list[str] = field(default_factory=list)
    thread_ids: list[str] = field(default_factory=list)  # In-Reply-To, then References newest
    body: str = ""
    has_text: bool = False
    forwarded: bool = False
    notes: list[str] = field(default_factory=list)
    fatal: str | None = None


def parse(raw: bytes) -> ParsedMail:
    """Parse a raw message; never raises (a message that cannot be used has `fatal` set)."""
    try:
        msg = message_from_bytes(raw, policy=compat32)
    except Exception as exc:  # the feed parser should not raise, but never trust that
        reason = f"the message could not be parsed ({type(exc).__name__})"
        return ParsedMail(Message(), fatal=reason)
    mail = ParsedMail(msg)
    try:
        _read_headers(mail)
        _read_body(mail)
    except (RecursionError, LookupError, ValueError, TypeError, AttributeError) as exc:
        mail.fatal = f"the message structure could not be read ({type(exc).__name__})"
    return mail


def peek(raw: bytes) -> tuple[str | None, str]:
    """Return (Message-ID, subject) from the header block only; lenient, never raises."""
    try:
        msg = BytesHeaderParser(policy=compat32).parsebytes(raw[:PEEK_BYTES])
        return header_message_id(msg), one_line(header_text(msg, "Subject"))[:1000]
    except Exception:
        return None, ""


def _read_headers(mail: ParsedMail) -> None:
    msg = mail.message
    mail.message_id = header_message_id(msg)
    mail.subject = one_line(header_text(msg, "Subject", mail.notes))
    name, address = parseaddr(header_text(msg, "From", mail.notes))
    mail.sender = normalize_email(address)
    mail.sender_name = one_line(name)[:120]
    mail.recipients = addresses(msg, RECIPIENT_HEADERS)
    ids = message_ids(header_text(msg, "In-Reply-To"))
    ids += list(reversed(message_ids(header_text(msg, "References"))))
    mail.thread_ids = list(dict.fromkeys(ids))
    mail.forwarded = bool(_FORWARD_RE.match(mail.subject))


def header_text(msg: Message, name: str, notes: list[str] | None = None) -> str:
    """Return one header decoded to text (RFC 2047 words, 8-bit bytes), or ""."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        parts = decode_header(value if isinstance(value, Header) else str(value))
    except (errors.HeaderParseError, ValueError, LookupError):
        return str(value)
    out: list[str] = []
    for chunk, charset in parts:
        if isinstance(chunk, str):
            out.append(chunk)
        else:
            out.append(decode_bytes(chunk, charset, notes if notes is not None else []))
    return "".join(out)


def header_message_id(msg: Message) -> str | None:
    """Return the message's own Message-ID (<…> form when present), at most 998 characters."""
    value = one_line(header_text(msg, "Message-ID"))
    found = message_ids(value)
    if found:
        return found[0]
    return value[:998] or None


def message_ids(value: str) -> list[str]:
    """Return every <…> id in a header value, in order."""
    return _MSGID_RE.findall(value or "")


def addresses(msg: Message, names: tuple[str, ...]) -> list[str]:
    """Return the valid addresses in these headers (lower-cased, first occurrence kept)."""
    found: list[str] = []
    for name in names:
        values = [str(v) for v in (msg.get_all(name) or [])]
        try:
            pairs = getaddresses(values)
        except (ValueError, TypeError, IndexError):
            pairs = []
        for _name, address in pairs:
            email = normalize_email(address)
            if email is not None and email not in found:
                found.append(email)
    return found


def decode_bytes(data: bytes, charset: str | None, notes: list[str]) -> str:
    """Decode text leniently: an unknown charset or bad bytes become U+FFFD (noted).

    ISO-8859-1 is read as Windows-1252 first, as browsers do: mail labelled Latin-1 often
    carries Windows quotes and the euro sign.
    """
    name = (charset or "utf-8").strip().strip('"').lower() or "utf-8"
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        _note(notes, f"unknown charset {name[:40]!r} decoded as UTF-8 with replacement characters")
        return data.decode("utf-8", "replace")
    if codec == "ascii":
        codec = "utf-8"  # 8-bit data labelled as ASCII is nearly always UTF-8
    for candidate in ("cp1252", codec) if codec == "iso8859-1" else (codec,):
        try:
            return data.decode(candidate)
        except LookupError:  # a codec that is not a text encoding (base64, rot13 …)
            _note(notes, f"charset {name[:40]!r} is not a text encoding; decoded as UTF-8")
            return data.decode("utf-8", "replace")
        except ValueError:
            continue
    if codec == "utf-8":
        _note(notes, "text was not valid UTF-8; decoded as Windows-1252")
        return data.decode("cp1252", "replace")
    _note(notes, f"text was not valid {name[:40]}; undecodable bytes replaced")
    try:
        return data.decode(codec, "replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", "replace")


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


# --- body -------------------------------------------------------------------------------------


def _read_body(mail: ParsedMail) -> None:
    msg = mail.message
    plain: Message | None = None
    html: Message | None = None
    skipped = 0
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if part.get_content_disposition() == "attachment" or part.get_filename():
            skipped += 1
        elif ctype == "text/plain" and plain is None:
            plain = part
        elif ctype == "text/html" and html is None:
            html = part
        elif not ctype.startswith("multipart/"):
            skipped += 1
    text = _part_text(plain, mail.notes) if plain is not None else ""
    if not text.strip() and html is not None:
        markup = _part_text(html, mail.notes)
        if len(markup) > HTML_MAX:
            markup = markup[:HTML_MAX]
            _note(mail.notes, "the HTML part was cut to its first 2,000,000 characters")
        text = html_to_text(markup)
    if skipped:
        _note(mail.notes, f"{skipped} attachment(s) not imported (kept in the raw message)")
    defects = [d for part in msg.walk() for d in part.defects]
    structural = next((d for d in defects if isinstance(d, _STRUCTURAL)), None)
    mail.has_text = bool(text.strip())
    if not mail.has_text and structural is not None:
        mail.fatal = f"malformed MIME: {_describe_defect(structural)}; no readable text"
        return
    if len(text) > TEXT_MAX:
        text = text[:TEXT_MAX]
        _note(mail.notes, f"the text was cut to its first {TEXT_MAX:,} characters")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    mail.body = text if mail.forwarded else reply_text(text)


def _describe_defect(defect: errors.MessageDefect) -> str:
    return {
        errors.NoBoundaryInMultipartDefect: "a multipart message without a boundary",
        errors.StartBoundaryNotFoundDefect: "the multipart boundary never appears in the body",
    }.get(type(defect), type(defect).__name__)


def _part_text(part: Message, notes: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    return decode_bytes(payload, part.get_content_charset(), notes)


# --- subjects ----------------------------------------------------------------------------------


def ticket_subject(subject: str) -> str:
    """Strip Re:/Fwd:/AW:/SV: prefixes and ticket tags; "(no subject)" when nothing is left."""
    text = _PREFIXES_RE.sub("", subject)
    text = TAG_RE.sub(" ", text)
    text = one_line(_PREFIXES_RE.sub("", one_line(text)))
    return text or "(no subject)"


def subject_tag(subject: str) -> tuple[str, int] | None:
    """Return (org slug, ticket number) from the first "[slug #123]" tag, if any."""
    match = TAG_RE.search(subject)
    return (match.group(1).lower(), int(match.group(2))) if match else None


# --- automatic mail and bounces ----------------------------------------------------------------

_DAEMON_RE = re.compile(r"^(?:mailer-daemon|postmaster)(?:@|$)", re.I)
_QMAIL_RE = re.compile(r"^<([^<>\s@]+@[^<>\s]+)>:", re.M)


@dataclass(frozen=True)
class Bounce:
    recipients: list[str]  # addresses whose delivery failed
    reason: str
    delay_only: bool = False  # a "still trying" notice, not a failure


def noise_reason(msg: Message) -> str | None:
    """Say why this is automatic mail nobody should answer (auto-reply, bulk, list), or None."""
    auto = one_line(header_text(msg, "Auto-Submitted")).lower()
    if auto and auto.split(";")[0].strip() != "no":
        return f"automatic message (Auto-Submitted: {auto[:60]})"
    precedence = one_line(header_text(msg, "Precedence")).lower()
    if precedence in ("bulk", "junk", "list"):
        return f"bulk mail (Precedence: {precedence})"
    for name in ("List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond"):
        if msg.get(name) is not None:
            kind = "mailing-list mail" if name.startswith("List") else "automatic reply"
            return f"{kind} ({name} header)"
    if _report_type(msg) == "disposition-notification":
        return "read receipt (disposition notification)"
    return None


def _report_type(msg: Message) -> str | None:
    if msg.get_content_type() != "multipart/report":
        return None
    return str(msg.get_param("report-type") or "delivery-status").lower()


def bounce_info(msg: Message) -> Bounce | None:
    """Return the failed recipients of a delivery-failure report, or None if it is not one."""
    _name, address = parseaddr(header_text(msg, "From"))
    if _report_type(msg) != "delivery-status" and not _DAEMON_RE.match(address.strip()):
        return None
    failed: list[str] = []
    delayed: list[str] = []
    reasons: list[str] = []
    for block in _dsn_blocks(msg):
        field_value = block.get("final-recipient") or block.get("original-recipient") or ""
        recipient = normalize_email(field_value.rpartition(";")[2].strip().strip("<>"))
        if recipient is None:
            continue
        action = block.get("action", "failed").lower()
        (delayed if action.startswith("delayed") else failed).append(recipient)
        if not action.startswith(("delivered", "relayed", "expanded", "delayed")):
            reasons.append(_dsn_reason(block))
    if not failed and not delayed:
        failed = addresses(msg, ("X-Failed-Recipients",)) or _qmail_recipients(msg)
    failed = list(dict.fromkeys(failed))
    reason = "; ".join(r for r in dict.fromkeys(reasons) if r) or "delivery failed"
    return Bounce(failed, reason[:500], delay_only=not failed and bool(delayed))


def _dsn_reason(block: dict[str, str]) -> str:
    status = block.get("status", "")
    diagnostic = block.get("diagnostic-code", "")
    return one_line(f"{status} {diagnostic}".strip())


def _dsn_blocks(msg: Message) -> list[dict[str, str]]:
    """The per-recipient field blocks of every message/delivery-status part."""
    blocks: list[dict[str, str]] = []
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            for sub in payload:
                if isinstance(sub, Message):
                    blocks.append({k.lower(): one_line(str(v)) for k, v in sub.items()})
            continue
        text = _part_text(part, [])
        for chunk in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
            fields = re.findall(r"^([A-Za-z-]+):[ \t]*(.*(?:\n[ \t].*)*)", chunk, re.M)
            blocks.append({k.lower(): one_line(v) for k, v in fields})
    return blocks


def _qmail_recipients(msg: Message) -> list[str]:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            found = [normalize_email(a) for a in _QMAIL_RE.findall(_part_text(part, []))]
            return [a for a in found if a is not None]
    return []


def header_addresses(head: bytes) -> list[str]:
    """Return the From/To/Cc addresses of a message's header block (for participant checks)."""
    try:
        msg = message_from_bytes(head, policy=compat32)
    except Exception:
        return []
    return addresses(msg, ("From", "To", "Cc"))
