"""Account jobs: email a password reset link.

Queued by POST /reset (services/password_resets.py) on the "notify" queue with the user id
only. The token is minted here, in the worker, and stored hashed before the email leaves,
so it never sits in Redis. Accounts belong to no org: the session is not tenant-scoped
(only `User` and `PasswordReset` are touched). A failure to send raises, so the job lands
in RQ's failed registry (`flask jobs requeue-failed`) instead of vanishing; the person can
also simply ask again.
"""

from __future__ import annotations

import logging

from flask import current_app

from helpdesk.db import session_scope
from helpdesk.models import User
from helpdesk.services import delivery_channels, password_resets
from helpdesk.services.mail_transport import OutgoingMail, make_message_id, send_mail

log = logging.getLogger(__name__)
SENDER_NAME = "helpdesk"


def send_password_reset(user_id: int) -> bool:
    """Mint a reset link for the user and email it; False when the account may not reset.

    Raises MailNotConfigured, TransientMailError or PermanentMailError when sending fails.
    """
    factory = current_app.extensions["helpdesk.sessionmaker"]
    with session_scope(factory) as session:
        user = session.get(User, user_id)
        if user is None or not user.active or not user.password_hash:
            log.info(
                "auth.password_reset_skipped",
                extra={"event": "auth.password_reset_skipped", "user_id": user_id},
            )
            return False
        settings = delivery_channels.mail_settings()  # before minting: no link without mail
        reset, plaintext = password_resets.mint_reset(session, user)
        url = password_resets.reset_url(plaintext)
        content = password_resets.reset_email(url, password_resets.current_minutes())
        mail = OutgoingMail(
            to=[user.email],
            subject=content.subject,
            text=content.text,
            html=content.html,
            from_addr=settings.from_addr,
            from_name=SENDER_NAME,
            message_id=make_message_id("reset", reset.id, settings.domain),
        )
        session.commit()  # the link exists before the email that carries it
    send_mail(settings.smtp, mail)
    log.info(
        "auth.password_reset_sent",
        extra={"event": "auth.password_reset_sent", "user_id": user_id, "reset_id": reset.id},
    )
    return True
