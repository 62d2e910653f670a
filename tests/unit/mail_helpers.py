"""Shared helpers for the mail tests: a complete OutgoingMail and the thread id it replies to."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from helpdesk.services.mail_transport import OutgoingMail, make_message_id

THREAD = "<helpdesk.ticket.alpha.42@support.example.com>"


def make_mail(**changes: Any) -> OutgoingMail:
    mail = OutgoingMail(
        to=["dana@example.com"],
        subject="[#42] Printer on fire — ça brûle",
        text="Plain text body\nsecond line",
        html="<p>HTML body</p>",
        from_addr="support@example.com",
        from_name='Société Générale, "Support"',
        message_id=make_message_id("comment", 7, "support.example.com"),
        in_reply_to=THREAD,
        references=[THREAD, "<helpdesk.comment.6@support.example.com>"],
    )
    return replace(mail, **changes)
