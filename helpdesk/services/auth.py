"""Logging in and out, ending sessions and changing passwords — each outcome audited.

Why this is a security module: a session is a signed cookie holding
"<user id>:<session_version>" (docs/decisions/0002), so the only way to kill a copied or
stolen cookie is to bump `users.session_version`. Logout, "log out everywhere", a password
change, a password reset and the operator's `sessions revoke` all do exactly that.

Every outcome is appended to the site audit chain (`services/audit.py`) in the same
transaction, and logged as a structured event. Neither ever holds an email, password or
token: users are named by id, an unknown email by a short SHA-256 prefix. A failed login
costs one argon2 verification whatever the reason, so timing tells nothing either.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from helpdesk.models import Membership, User
from helpdesk.services import audit, orgs
from helpdesk.services.errors import ValidationError
from helpdesk.services.passwords import (
    hash_password,
    needs_rehash,
    password_problem,
    verify_password,
)
from helpdesk.services.validation import normalize_email

log = logging.getLogger(__name__)
BAD_CURRENT_PASSWORD = "That is not your current password, so nothing was changed."  # noqa: S105


def email_digest(email: str) -> str:
    """Return a short SHA-256 prefix of an email as typed (for audit data, never the email)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:12]


def record_event(
    session: Session,
    action: str,
    user_id: int | None,
    *,
    actor_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Append an account event to the site audit chain and log it (ids only)."""
    audit.record(
        session,
        None,
        action,
        actor_id=actor_id,
        target_type="user" if user_id is not None else None,
        target_id=user_id,
        data=data,
    )
    fields = {k: v for k, v in (data or {}).items() if k in ("reason", "source", "count")}
    log.info(action, extra={"event": action, "user_id": user_id, **fields})


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active user with these credentials, or None (same cost either way)."""
    address = normalize_email(email)
    user = session.scalar(select(User).where(User.email == address)) if address else None
    ok = verify_password(user.password_hash if user else None, password)
    reason = None
    if user is None:
        reason = "unknown_account"
    elif not ok:
        reason = "bad_password"
    elif not user.active:
        reason = "inactive"
    if user is None or reason is not None:
        data = {"reason": reason, "email_sha256": email_digest(email)}
        record_event(session, "auth.login_failed", user.id if user else None, data=data)
        session.commit()
        return None
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    record_event(session, "auth.login", user.id, actor_id=user.id)
    session.commit()
    return user


def load_user(
    session: Session, identity: str, org_slug: str | None = None
) -> tuple[User | None, Membership | None]:
    """Resolve a session identity "<id>:<session_version>"; stale versions resolve to None.

    With `org_slug` (a request for an org page) the user's membership there comes in the
    same query, with the user; it is returned for the org gate, which still decides.
    """
    user_id, _, version = identity.partition(":")
    if not (user_id.isdigit() and version.isdigit()):
        return None, None
    member = orgs.membership_by_slug(session, org_slug, int(user_id)) if org_slug else None
    user = member.user if member is not None else session.get(User, int(user_id))
    if user is None or not user.active or user.session_version != int(version):
        return None, None
    return user, member


def log_out(session: Session, user: User) -> None:
    """Log the user out: every session of theirs ends, copied cookies included."""
    user.session_version += 1
    record_event(session, "auth.logout", user.id, actor_id=user.id)
    session.commit()


def revoke_sessions(session: Session, user: User, source: str) -> None:
    """End every session of one user; source says who asked ("self" or "cli")."""
    user.session_version += 1
    actor = user.id if source == "self" else None
    record_event(session, "auth.sessions_revoked", user.id, actor_id=actor, data={"source": source})
    session.commit()


def revoke_all_sessions(session: Session, source: str = "cli") -> int:
    """End every session of every user in one UPDATE; return how many users it touched."""
    result = session.execute(
        update(User).values(session_version=User.session_version + 1),
        execution_options={"synchronize_session": False},
    )
    count = int(getattr(result, "rowcount", 0) or 0)
    record_event(
        session,
        "auth.sessions_revoked",
        None,
        data={"source": source, "scope": "all", "count": count},
    )
    session.commit()
    return count


def change_password(session: Session, user: User, current: str, new: str, confirm: str) -> None:
    """Set a new password after re-checking the current one; end every other session.

    Raises ValidationError (field -> message) and changes nothing when the current
    password is wrong (audited as a failed attempt) or the new one is unacceptable.
    """
    errors: dict[str, str] = {}
    if not verify_password(user.password_hash, current):
        errors["current_password"] = BAD_CURRENT_PASSWORD
        record_event(
            session,
            "auth.password_change_failed",
            user.id,
            actor_id=user.id,
            data={"reason": "bad_password"},
        )
        session.commit()
    errors.update(new_password_problems(new, confirm))
    if not errors and new == current:
        errors["new_password"] = "Choose a password different from your current one."  # noqa: S105
    if errors:
        raise ValidationError(errors)
    user.password_hash = hash_password(new)
    user.session_version += 1  # every other session ends; the caller re-logs this one in
    record_event(session, "auth.password_changed", user.id, actor_id=user.id)
    session.commit()


def new_password_problems(new: str, confirm: str) -> dict[str, str]:
    """Return field -> message for a new password typed twice (empty when acceptable)."""
    problem = password_problem(new)
    if problem:
        return {"new_password": f"Please {problem}."}
    if new != confirm:
        return {"confirm_password": "The two new passwords differ. Type the same one twice."}
    return {}
