"""Forgotten passwords: ask for a link, mint it in the job, use it once.

Why this is a security module (SECURITY.md 4 and 7):

* Asking (`request_reset`) answers the same way whether or not the address has an account,
  and does no slow work in the request: for an active account with a password it records
  the request and queues `jobs.accounts.send_password_reset(user_id)` after commit. Only the
  user id crosses Redis: the token is minted by the job, so no secret ever sits in a queue.
* A token is `secrets.token_urlsafe(24)` (192 random bits), sent only in the email; the
  table keeps its SHA-256 (unique index), so the lookup is by hash and a leaked table hands
  out nothing. Anything that is not exactly 32 URL-safe characters is refused without a
  lookup (fail closed).
* A link works once, for PASSWORD_RESET_MINUTES. Using it sets the password, bumps the
  session version (every session ends, a thief's too), and marks every other open link of
  the account used. Opening it (GET) changes nothing: mail scanners open links.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import PasswordReset, User
from helpdesk.services import tasks
from helpdesk.services.access_links import hash_token
from helpdesk.services.auth import new_password_problems, record_event
from helpdesk.services.errors import ValidationError
from helpdesk.services.notification_content import EmailContent
from helpdesk.services.passwords import hash_password
from helpdesk.services.validation import normalize_email

TOKEN_BYTES = 24  # 192 bits; token_urlsafe(24) is 32 characters
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32}")
JOB = "jobs.accounts.send_password_reset"


class InvalidReset(Exception):
    """The link is unknown, used or expired (one answer for all three)."""


def request_reset(session: Session, email: str) -> None:
    """Queue a reset email if the address has an active account with a password.

    Raises ValidationError only for an address that is not an email address at all;
    everything else looks the same to the caller, account or not.
    """
    address = normalize_email(email)
    if address is None:
        raise ValidationError({"email": "Enter the email address you log in with."})
    user = session.scalar(select(User).where(User.email == address))
    if user is None or not user.active or not user.password_hash:
        return
    record_event(session, "auth.password_reset_requested", user.id)
    tasks.after_commit(session, JOB, user.id, queue="notify")
    session.commit()


def current_minutes() -> int:
    """Return how long a new reset link works (PASSWORD_RESET_MINUTES)."""
    return int(current_app.config["PASSWORD_RESET_MINUTES"])


def mint_reset(
    session: Session, user: User, now: datetime | None = None
) -> tuple[PasswordReset, str]:
    """Add a new reset link for the user (not committed); return the row and the token."""
    now = now or utcnow()
    plaintext = secrets.token_urlsafe(TOKEN_BYTES)
    minutes = current_minutes()
    reset = PasswordReset(
        user_id=user.id,
        token_hash=hash_token(plaintext),
        created_at=now,
        expires_at=now + timedelta(minutes=minutes),
    )
    session.add(reset)
    session.flush()
    return reset, plaintext


def reset_url(plaintext: str) -> str:
    """Return the public address of a reset link: BASE_URL/reset/<token>."""
    return f"{str(current_app.config['BASE_URL']).rstrip('/')}/reset/{plaintext}"


def check_reset(
    session: Session, plaintext: str, now: datetime | None = None, lock: bool = False
) -> PasswordReset:
    """Return the usable reset row for a token, or raise InvalidReset."""
    if not isinstance(plaintext, str) or not _TOKEN_SHAPE.fullmatch(plaintext):
        raise InvalidReset
    query = select(PasswordReset).where(PasswordReset.token_hash == hash_token(plaintext))
    reset = session.scalar(query.with_for_update() if lock else query)
    now = now or utcnow()
    if reset is None or reset.used_at is not None or reset.expires_at <= now:
        raise InvalidReset
    user = session.get(User, reset.user_id)
    if user is None or not user.active:
        raise InvalidReset
    return reset


def reset_password(
    session: Session, plaintext: str, new: str, confirm: str, now: datetime | None = None
) -> User:
    """Set a new password through a reset link; end every session and every other link.

    Raises InvalidReset (nothing changed) or ValidationError (nothing changed, link still good).
    """
    now = now or utcnow()
    reset = check_reset(session, plaintext, now, lock=True)  # two tabs cannot both use it
    errors = new_password_problems(new, confirm)
    if errors:
        session.rollback()
        raise ValidationError(errors)
    user = session.get(User, reset.user_id)
    assert user is not None  # checked above, row locked
    user.password_hash = hash_password(new)
    user.session_version += 1
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now),
        execution_options={"synchronize_session": False},
    )
    record_event(
        session, "auth.password_reset", user.id, actor_id=user.id, data={"reset_id": reset.id}
    )
    session.commit()
    return user


def reset_email(url: str, minutes: int) -> EmailContent:
    """Render the email carrying a reset link (HTML and text)."""
    subject = "Reset your helpdesk password"
    env = current_app.jinja_env
    ctx = {"url": url, "minutes": minutes, "subject": subject}
    text = env.get_template("emails/password_reset.txt").render(**ctx)
    html = env.get_template("emails/password_reset.html").render(**ctx)
    return EmailContent(subject=subject, text=text, html=html)
