"""Notification preferences: which events a staff member is emailed about, and how often.

Two questions: *which tickets* (only those that concern the member — assigned to them; for
admins also SLA alerts on unassigned tickets and infected files — or every ticket of the
org) and *which events, how* (immediately, in a digest, or never). Staff without a saved row
get the defaults: tickets that concern them, every event, immediately. Requesters have
nothing to choose: they are emailed about their own tickets only, always immediately.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.models import EventKind, Membership, NotificationMode, NotificationPreference
from helpdesk.services.errors import Conflict, ValidationError
from helpdesk.services.permissions import require_staff

EVENTS = tuple(kind.value for kind in EventKind)
MODES = tuple(mode.value for mode in NotificationMode)
DIGEST_MIN, DIGEST_MAX = 5, 1440
DEFAULT_DIGEST_MINUTES = 60

EVENT_LABELS = {
    EventKind.TICKET_CREATED.value: "A ticket is opened",
    EventKind.COMMENT_CREATED.value: "A reply or internal note is added",
    EventKind.TICKET_UPDATED.value: "A ticket is assigned or changes status",
    EventKind.SLA_WARNING.value: "An SLA target is about to be missed",
    EventKind.SLA_BREACHED.value: "An SLA target was missed",
    EventKind.ATTACHMENT_INFECTED.value: "An uploaded file was found infected",
}
MODE_LABELS = {
    NotificationMode.IMMEDIATE.value: "Immediately, one email per event",
    NotificationMode.DIGEST.value: "In a digest email",
    NotificationMode.OFF.value: "Never (no notification email)",
}


@dataclass(frozen=True)
class Preferences:
    """A member's choices; `saved` is False while the defaults apply."""

    events: tuple[str, ...]
    mode: str
    digest_minutes: int
    saved: bool
    watch_all: bool = False


DEFAULTS = Preferences(EVENTS, NotificationMode.IMMEDIATE.value, DEFAULT_DIGEST_MINUTES, False)
SCOPES = {"mine": False, "all": True}  # form value -> watch_all


def get_preferences(session: Session, actor: Membership) -> Preferences:
    """The member's saved preferences in this org, or the defaults."""
    require_staff(actor, "choose notification emails")
    row = _row(session, actor)
    if row is None:
        return DEFAULTS
    return Preferences(tuple(e for e in EVENTS if e in row.events), row.mode,
                       row.digest_minutes, True, row.watch_all)  # fmt: skip


def save_preferences(
    session: Session,
    actor: Membership,
    events: object,
    mode: object,
    digest_minutes: object,
    scope: object = "mine",
) -> Preferences:
    """Store the member's choices (events: a list of event names; digest 5-1440 minutes;
    scope "mine" or "all" tickets of the org)."""
    require_staff(actor, "choose notification emails")
    errors: dict[str, str] = {}
    if scope not in SCOPES:
        errors["scope"] = "choose which tickets: mine (assigned to me) or all"
    chosen: list[str] = []
    if not isinstance(events, list | tuple) or not all(isinstance(e, str) for e in events):
        errors["events"] = "choose events from the list"
    else:
        unknown = sorted(set(events) - set(EVENTS))
        chosen = [e for e in EVENTS if e in events]
        if unknown:
            errors["events"] = f"unknown event {unknown[0]!r}; choose from: {', '.join(EVENTS)}"
    if mode not in MODES:
        errors["mode"] = f"choose how to be emailed: {', '.join(MODES)}"
    elif mode != NotificationMode.OFF.value and not chosen and "events" not in errors:
        errors["events"] = "choose at least one event, or choose never to turn emails off"
    minutes = _minutes(digest_minutes)
    if minutes is None:
        errors["digest_minutes"] = (
            f"enter the digest period in whole minutes from {DIGEST_MIN} to {DIGEST_MAX:,} "
            "(one day)"
        )
    if errors:
        raise ValidationError(errors)
    row = _row(session, actor) or NotificationPreference(user_id=actor.user_id)
    row.events, row.mode, row.digest_minutes = chosen, str(mode), int(minutes or 0)
    row.watch_all = SCOPES[str(scope)]
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # saved twice at the same moment (two tabs)
        session.rollback()
        raise Conflict("your preferences were just saved from another tab; save again") from None
    return Preferences(tuple(chosen), str(mode), int(minutes or 0), True, row.watch_all)


def _row(session: Session, actor: Membership) -> NotificationPreference | None:
    stmt = select(NotificationPreference).where(NotificationPreference.user_id == actor.user_id)
    return session.scalar(stmt)


def _minutes(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 5:
        text = int(text)
    if isinstance(text, int) and DIGEST_MIN <= text <= DIGEST_MAX:
        return text
    return None
