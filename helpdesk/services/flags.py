"""Feature flags: site-wide switches that operators flip at runtime during an incident.

Why they live in the database with a short per-process cache: every web process, worker and
instance has to see a flip (no process may keep state another one needs), and a gated route
must not cost a query per request. Each process keeps one snapshot of all flags for
FLAG_CACHE_SECONDS (default 5). The snapshot's age is counted from *before* the read, so a
flip committed anywhere is seen everywhere within that time at most. The process that flips
a flag drops its own snapshot, so it sees the change at once. A flag with no row is on.

Reads use their own short connection, never the caller's transaction, so a failed read
cannot spoil the caller's work. If the flags cannot be read (database down, table missing),
the process keeps the last state it read. If it never read one, each flag takes its
`when_unreadable` state, which is off for every flag today (docs/decisions/0009). The
fallback is cached like a normal read, so a dead database is not asked again on every call.

`set_flag` writes the row and appends `flag.set` to the site audit chain in one transaction.
Setting a flag to the state it already has is recorded too (`changed: false`), because an
operator confirming a switch during an incident belongs in the record. Such a no-op leaves
the row, and so its "since", untouched.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime
from time import monotonic
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import FeatureFlag, User
from helpdesk.services import audit
from helpdesk.services.errors import DomainError, ValidationError

EXTENSION = "helpdesk.flags"
DEFAULT_CACHE_SECONDS = 5
REASON_MAX = 500
AUDIT_ACTION = "flag.set"
STATES = {"on": True, "off": False}
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Flag:
    """A known flag: its name, what turning it off does, and its state when unreadable."""

    name: str
    description: str
    when_unreadable: bool = False
    env_switch: str | None = None  # a deploy-time switch that also turns the same thing off


FLAGS: dict[str, Flag] = {
    flag.name: flag
    for flag in (
        Flag(
            "attachments_upload",
            "Off: every file upload (agent forms, requester page, API) answers 503; messages "
            "without files still go through.",
            env_switch="UPLOADS_ENABLED",
        ),
        Flag(
            "attachments_download",
            "Off: every attachment download (agent pages, requester pages, API) answers 503; "
            "files stay stored and listed.",
            env_switch="DOWNLOADS_ENABLED",
        ),
        Flag(
            "public_form",
            "Off: the public request form (/o/<org>/request) answers 503; nothing is stored.",
        ),
        Flag(
            "inbound_email",
            "Off: POST /inbound/email answers 503, so the mail service keeps each message and "
            "retries later.",
        ),
        Flag(
            "webhooks",
            "Off: webhook deliveries are held (still pending, no attempt counted) and go out "
            "once webhooks are back on; email is not affected.",
        ),
        Flag(
            "api_writes",
            "Off: every API v1 call that changes something (POST, PUT, PATCH, DELETE) answers "
            "503; reads keep working.",
        ),
    )
}


class SwitchedOff(DomainError):
    """A route or action is turned off by a feature flag (HTTP 503 with Retry-After)."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(message)
        self.flag = flag
        self.message = message


@dataclass(frozen=True)
class FlagState:
    """A flag as operators see it: state, and who changed it when and why."""

    name: str
    description: str
    enabled: bool
    reason: str
    updated_at: datetime | None
    updated_by: str | None  # the operator's email; None for the command line or never set
    env_switch: str | None


@dataclass(frozen=True)
class _Snapshot:
    states: dict[str, bool]
    expires: float  # monotonic() time


class FlagCache:
    """One process's snapshot of every flag (held per app in `app.extensions`)."""

    def __init__(self) -> None:
        self.snapshot: _Snapshot | None = None
        self.generation = 0  # bumped by clear_cache: a read begun before it is not kept
        self.lock = threading.Lock()


def known(name: str) -> Flag:
    """Return the flag called `name`, or raise ValidationError naming every known flag."""
    flag = FLAGS.get(name)
    if flag is None:
        raise ValidationError(
            {"name": f"unknown flag {name!r}; the known flags are {', '.join(FLAGS)}"}
        )
    return flag


def parse_state(text: str) -> bool:
    """Return True for "on" and False for "off" (any case); anything else is refused."""
    value = STATES.get(text.strip().lower())
    if value is None:
        raise ValidationError({"state": "use on or off"})
    return value


def is_enabled(session: Session, name: str) -> bool:
    """Return whether the flag is on, as this process last read it (at most a few s old)."""
    flag = known(name)
    return _states(session).get(flag.name, True)


def require(session: Session, name: str, message: str) -> None:
    """Raise SwitchedOff(message) while the flag is off."""
    if not is_enabled(session, name):
        raise SwitchedOff(name, message)


def clear_cache() -> None:
    """Forget this app's snapshot: the next check reads the database."""
    cache = _cache()
    if cache is not None:
        cache.generation += 1
        cache.snapshot = None


def _cache() -> FlagCache | None:
    if not has_app_context():
        return None
    cache: FlagCache = current_app.extensions.setdefault(EXTENSION, FlagCache())
    return cache


def _ttl() -> float:
    if not has_app_context():
        return 0.0
    return float(current_app.config.get("FLAG_CACHE_SECONDS", DEFAULT_CACHE_SECONDS))


def _states(session: Session) -> dict[str, bool]:
    cache = _cache()
    if cache is None:
        return _read_or_fallback(session, None)
    snapshot = cache.snapshot
    started = monotonic()
    if snapshot is not None and started < snapshot.expires:
        return snapshot.states
    with cache.lock:  # one reader per process refreshes; the others wait for its result
        snapshot = cache.snapshot
        if snapshot is not None and monotonic() < snapshot.expires:
            return snapshot.states
        started = monotonic()  # counted from before the read: never older than the TTL
        generation = cache.generation
        states = _read_or_fallback(session, snapshot)
        if generation == cache.generation:  # no flip by this process since the read began
            cache.snapshot = _Snapshot(states, started + _ttl())
    return states


def _read_or_fallback(session: Session, last: _Snapshot | None) -> dict[str, bool]:
    try:
        return _read(session)
    except SQLAlchemyError as exc:
        source = "last known state" if last is not None else "fail-safe defaults"
        log.warning("flags_unreadable error=%s using=%s", type(exc).__name__, source,
                    extra={"event": "flags.unreadable", "error_type": type(exc).__name__,
                           "source": source})  # fmt: skip
        if last is not None:
            return last.states
        return {flag.name: flag.when_unreadable for flag in FLAGS.values()}


def _read(session: Session) -> dict[str, bool]:
    """Every flag's state, read on a connection of its own (outside the caller's work)."""
    states = {name: True for name in FLAGS}
    with session.get_bind().engine.connect() as conn:  # never the caller's connection
        rows = conn.execute(select(FeatureFlag.name, FeatureFlag.enabled)).all()
    for name, enabled in rows:
        if name in states:  # rows of flags no longer known are ignored
            states[name] = bool(enabled)
    return states


def clean_reason(text: str | None) -> str:
    """Return the reason on one line without control characters; refuse one that is too long."""
    flat = " ".join((text or "").split())
    flat = "".join(ch for ch in flat if ch.isprintable())
    if len(flat) > REASON_MAX:
        raise ValidationError({"reason": f"keep the reason to {REASON_MAX} characters or fewer"})
    return flat


def set_flag(
    session: Session,
    name: str,
    enabled: bool,
    actor_id: int | None,
    reason: str = "",
    *,
    via: str = "web",
) -> bool:
    """Turn a flag on or off, audited in the same transaction; commits. True if it changed."""
    flag = known(name)
    reason = clean_reason(reason)
    # Serialize writers of flags, so `previous` in the audit event is always the truth.
    session.execute(select(func.pg_advisory_xact_lock(func.hashtext("feature_flags"))))
    row = session.get(FeatureFlag, flag.name, populate_existing=True)
    previous = True if row is None else row.enabled
    changed = previous != enabled
    if changed:
        if row is None:
            row = FeatureFlag(name=flag.name)
            session.add(row)
        row.enabled, row.reason = enabled, reason
        row.updated_at, row.updated_by_id = utcnow(), actor_id
    data: dict[str, Any] = {"enabled": enabled, "previous": previous, "changed": changed,
                            "reason": reason, "via": via}  # fmt: skip
    audit.record(session, None, AUDIT_ACTION, actor_id=actor_id, target_type="feature_flag",
                 target_id=flag.name, data=data)  # fmt: skip
    session.commit()
    clear_cache()
    log.info("flag_set name=%s enabled=%s changed=%s actor_id=%s via=%s",
             flag.name, enabled, changed, actor_id, via,
             extra={"event": AUDIT_ACTION, "flag": flag.name, "enabled": enabled,
                    "actor_id": actor_id, "source": via})  # fmt: skip
    return changed


def list_flags(session: Session) -> list[FlagState]:
    """Every known flag with its stored state (fresh from the database, not the cache)."""
    stmt = select(FeatureFlag, User.email).outerjoin(User, User.id == FeatureFlag.updated_by_id)
    stored = {row.name: (row, email) for row, email in session.execute(stmt).all()}
    states: list[FlagState] = []
    for flag in FLAGS.values():
        row, email = stored.get(flag.name, (None, None))
        states.append(
            FlagState(
                name=flag.name,
                description=flag.description,
                enabled=True if row is None else row.enabled,
                reason=row.reason if row is not None else "",
                updated_at=row.updated_at if row is not None else None,
                updated_by=email,
                env_switch=flag.env_switch,
            )
        )
    return states
