"""Logging in and out, and turning a session identity back into a user."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import User
from helpdesk.services.passwords import hash_password, needs_rehash, verify_password
from helpdesk.services.validation import normalize_email


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active user with these credentials, or None (same cost either way)."""
    address = normalize_email(email)
    user = session.scalar(select(User).where(User.email == address)) if address else None
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.commit()
    return user


def load_user(session: Session, identity: str) -> User | None:
    """Resolve a session identity "<id>:<session_version>"; stale versions resolve to None."""
    user_id, _, version = identity.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None
    return user


def end_sessions(session: Session, user: User) -> None:
    """Invalidate every session of this user (logout, revocation, password change)."""
    user.session_version += 1
    session.commit()
