"""Message-IDs and MIME message building: threading headers, header injection, bad input."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from typing import Any

import pytest

from helpdesk.services.mail_transport import build_message, make_message_id, ticket_thread_id
from tests.unit.mail_helpers import THREAD, make_mail


def test_message_ids_are_stable() -> None:
    first = make_message_id("comment", 7, "Support.Example.com")
    assert first == "<helpdesk.comment.7@support.example.com>"
    assert make_message_id("comment", "7", "support.example.com") == first
    assert ticket_thread_id("alpha", 42, "support.example.com") == THREAD


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_message_id("com.ment", 7, "example.com"),
        lambda: make_message_id("comment", "7 8", "example.com"),
        lambda: make_message_id("comment", True, "example.com"),
        lambda: make_message_id("comment", 7, "ex@mple.com"),
        lambda: make_message_id("comment", 7, "example.com>\r\nBcc: x@evil.test"),
        lambda: ticket_thread_id("al.pha", 1, "example.com"),
        lambda: ticket_thread_id("alpha", 0, "example.com"),
    ],
)
def test_message_id_parts_are_checked(call: Callable[[], str]) -> None:
    with pytest.raises(ValueError, match="must be"):
        call()


def test_build_message_with_both_parts_and_thread_headers() -> None:
    message = build_message(make_mail())
    raw = message.as_bytes()
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    headers = raw.split(b"\r\n\r\n")[0]
    assert headers.isascii()
    unfolded = headers.replace(b"\r\n ", b" ").split(b"\r\n")
    assert any(line.startswith(b"From: =?utf-8?") for line in unfolded)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == 'Société Générale, "Support"'
    assert parsed["From"].addresses[0].addr_spec == "support@example.com"
    assert parsed["Subject"] == "[#42] Printer on fire — ça brûle"
    assert parsed["Message-ID"] == "<helpdesk.comment.7@support.example.com>"
    assert parsed["In-Reply-To"] == THREAD
    assert parsed["References"].split() == [THREAD, "<helpdesk.comment.6@support.example.com>"]
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Date"].datetime.utcoffset().total_seconds() == 0


def test_text_only_message_and_extra_headers() -> None:
    message = build_message(
        make_mail(html=None, reply_to="reply+42@example.com", extra_headers={"X-Ticket": "42"})
    )
    assert message.get_content_type() == "text/plain"
    assert message.get_content().rstrip("\n") == "Plain text body\nsecond line"
    assert message["Reply-To"] == "reply+42@example.com"
    assert message["X-Ticket"] == "42"


def test_long_thread_ids_are_never_encoded() -> None:
    long_id = f"<helpdesk.ticket.{'a' * 60}.1@{'sub.' * 10}example.com>"
    raw = build_message(make_mail(in_reply_to=long_id, references=[long_id] * 3)).as_bytes()
    assert f"In-Reply-To: {long_id}\r\n".encode() in raw
    assert f"References: {long_id}\r\n {long_id}\r\n {long_id}\r\n".encode() in raw


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hello\r\nBcc: victim@example.org"},
        {"subject": "Hello\nX-Injected: 1"},
        {"subject": "Hello\u2028X-Injected: 1"},
        {"from_name": "Support\r\nBcc: victim@example.org"},
        {"from_addr": "support@example.com\r\nBcc: victim@example.org"},
        {"to": ["dana@example.com\nBcc: victim@example.org"]},
        {"reply_to": "x@example.com\r\nBcc: victim@example.org"},
        {"message_id": "<a@example.com>\r\nBcc: victim@example.org"},
        {"in_reply_to": "<a@example.com>\nBcc: victim@example.org"},
        {"references": ["<a@example.com>\r\nBcc: victim@example.org"]},
        {"extra_headers": {"X-Ticket": "42\r\nBcc: victim@example.org"}},
        {"extra_headers": {"X-Ticket\r\nBcc": "victim@example.org"}},
    ],
)
def test_header_injection_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"line break|not a valid|letters, digits"):
        build_message(make_mail(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"to": []}, "no recipients"),
        ({"to": ["not-an-address"]}, "'not-an-address' is not a valid email address"),
        ({"message_id": "helpdesk.1@example.com"}, "is not a message id"),
        ({"extra_headers": {"Bcc": "x@example.com"}}, "set Bcc through the OutgoingMail fields"),
        ({"text": "  "}, "needs a plain-text body"),
    ],
)
def test_build_message_explains_bad_input(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_message(make_mail(**changes))
