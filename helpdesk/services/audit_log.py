"""The audit log as an org's admins read it: filtered pages, the CSV export, a verify run.

Filters come from the URL and are allow-listed one by one (never passed to the query as
they are); every bad value is reported at once. Pages are newest first, paged by seq (the
chain's own order, on its unique index) with no COUNT(*). The export is itself audited
(`audit.exported`, with the filters used) and committed before the first byte is sent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from helpdesk.db import session_scope
from helpdesk.models import AuditEvent, Membership, User
from helpdesk.services import audit
from helpdesk.services.csv_export import csv_lines
from helpdesk.services.errors import ValidationError
from helpdesk.services.sla_admin import require_admin
from helpdesk.services.validation import normalize_email
from helpdesk.tenancy import tenant_scope

PAGE_SIZE = 50
EXPORT_BATCH = 1000
WHAT = "read the audit log"
# The actions recorded in org chains (for the filter's choices; any well-formed name works).
ACTIONS = (
    "ticket.created", "ticket.updated", "comment.created", "membership.created",
    "token.created", "token.revoked", "webhook.created", "webhook.updated", "webhook.deleted",
    "webhook.secret_rotated", "sla_policy.created", "sla_policy.updated", "sla_policy.deleted",
    "calendar.created", "calendar.updated", "calendar.deleted", "canned_reply.deleted",
    "view.deleted", "attachment.scanned", "access_link.revoked", "audit.exported",
)  # fmt: skip
TARGET_TYPES = ("ticket", "comment", "membership", "api_token", "webhook", "sla_policy",
                "calendar", "canned_reply", "view", "attachment")  # fmt: skip
FILTER_KEYS = ("action", "actor", "target_type", "target_id", "from", "to")
ACTION_PREFIX_RE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)*\.\*$")  # "ticket.*"
TARGET_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
SEQ_MAX = 2**63 - 1
EXPORT_COLUMNS = ("seq", "created_at", "actor_id", "actor", "action", "target_type",
                  "target_id", "data", "ip_prefix", "request_id", "prev_hash", "hash")  # fmt: skip
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditFilter:
    """Checked filter values; `args` keeps them as typed, for links and the export record."""

    action: str | None = None  # an action, or "prefix.*"
    actor_id: int | None = None
    target_type: str | None = None
    target_id: str | None = None
    start: datetime | None = None  # inclusive, UTC midnight
    end: datetime | None = None  # exclusive, the midnight after the "to" day
    args: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Line:
    """One event as the page shows it."""

    seq: int
    created_at: datetime
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    details: list[tuple[str, str]]


@dataclass(frozen=True)
class Page:
    lines: list[Line]
    older: int | None  # the `before` value of the next (older) page, if there is one
    filters: AuditFilter


def parse_filter(session: Session, org_id: int, args: Mapping[str, str]) -> AuditFilter:
    """Check the allow-listed filter keys; raise ValidationError naming every bad one."""
    typed = {k: args.get(k, "").strip() for k in FILTER_KEYS if args.get(k, "").strip()}
    errors: dict[str, str] = {}
    action = typed.get("action")
    if action and not (len(action) <= 64 and (ACTION_PREFIX_RE.match(action)
                                              or audit.ACTION_RE.match(action))):  # fmt: skip
        errors["action"] = "use an action name like ticket.updated, or a prefix like ticket.*"
    actor_id = None
    if "actor" in typed:
        actor_id = _actor_id(session, org_id, typed["actor"])
        if actor_id is None:
            errors["actor"] = "no member of this organization has that email address"
    target_type = typed.get("target_type")
    if target_type and target_type not in TARGET_TYPES:
        errors["target_type"] = f"choose one of: {', '.join(TARGET_TYPES)}"
    target_id = typed.get("target_id")
    if target_id and not TARGET_ID_RE.match(target_id):
        errors["target_id"] = "an id is up to 64 letters, digits and . _ : -"
    days = {key: _day(typed.get(key), key, errors) for key in ("from", "to")}
    if days["from"] and days["to"] and days["from"] > days["to"]:
        errors["to"] = "the end date is before the start date"
    if errors:
        raise ValidationError(errors)
    start = datetime.combine(days["from"], time(), UTC) if days["from"] else None
    end = None
    if days["to"] and days["to"] < date.max:
        end = datetime.combine(days["to"] + timedelta(days=1), time(), UTC)
    return AuditFilter(action, actor_id, target_type, target_id, start, end, typed)


def _actor_id(session: Session, org_id: int, email: str) -> int | None:
    """The user id of the org member with this email (members only: no account oracle)."""
    address = normalize_email(email)
    if address is None:
        return None
    return session.scalar(
        select(Membership.user_id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.org_id == org_id, User.email == address)
    )


def _day(value: str | None, key: str, errors: dict[str, str]) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[key] = "use a date like 2026-01-31"
        return None


def parse_before(value: str | None) -> int | None:
    """The page cursor: the seq the page starts below."""
    if not value:
        return None
    if not (value.isascii() and value.isdigit() and 0 < int(value) <= SEQ_MAX):
        raise ValidationError({"before": "the page link is broken: start again from the top"})
    return int(value)


def browse(session: Session, actor: Membership, args: Mapping[str, str]) -> Page:
    """One page of the org's events, newest first, filtered by the URL's arguments."""
    require_admin(actor, WHAT)
    filters = parse_filter(session, actor.org_id, args)
    before = parse_before(args.get("before"))
    stmt = _filtered(actor.org_id, filters).order_by(AuditEvent.seq.desc())
    if before is not None:
        stmt = stmt.where(AuditEvent.seq < before)
    rows = list(session.scalars(stmt.limit(PAGE_SIZE + 1)))
    shown = rows[:PAGE_SIZE]
    names = _names(session, shown)
    lines = [Line(r.seq, r.created_at, _actor_name(names, r.actor_id), r.action,
                  r.target_type, r.target_id, details(r.data)) for r in shown]  # fmt: skip
    older = shown[-1].seq if len(rows) > PAGE_SIZE else None
    return Page(lines, older, filters)


def _filtered(org_id: int, f: AuditFilter) -> Select[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.org_id == org_id)
    if f.action and f.action.endswith(".*"):
        stmt = stmt.where(AuditEvent.action.startswith(f.action[:-1], autoescape=True))
    elif f.action:
        stmt = stmt.where(AuditEvent.action == f.action)
    if f.actor_id is not None:
        stmt = stmt.where(AuditEvent.actor_id == f.actor_id)
    if f.target_type:
        stmt = stmt.where(AuditEvent.target_type == f.target_type)
    if f.target_id:
        stmt = stmt.where(AuditEvent.target_id == f.target_id)
    if f.start is not None:
        stmt = stmt.where(AuditEvent.created_at >= f.start)
    if f.end is not None:
        stmt = stmt.where(AuditEvent.created_at < f.end)
    return stmt


def _names(session: Session, rows: Sequence[AuditEvent]) -> dict[int | None, str]:
    """Actor id -> display name, with one query."""
    ids = {r.actor_id for r in rows if r.actor_id is not None}
    if not ids:
        return {}
    return {u.id: u.display_name for u in session.scalars(select(User).where(User.id.in_(ids)))}


def _actor_name(names: Mapping[int | None, str], actor_id: int | None) -> str:
    if actor_id is None:
        return "system"
    return names.get(actor_id, f"user #{actor_id}")  # an account that no longer exists


def details(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An event's data as (key, text) pairs: changes as "old → new", lists joined."""
    pairs = []
    for key, value in sorted(data.items()):
        if isinstance(value, dict) and set(value) == {"old", "new"}:
            text = f"{_text(value['old'])} → {_text(value['new'])}"
        else:
            text = _text(value)
        pairs.append((str(key), text))
    return pairs


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_text(v)}" for k, v in sorted(value.items()))
    return str(value)


def start_export(session: Session, actor: Membership, args: Mapping[str, str]) -> AuditFilter:
    """Check the filters and record (and commit) `audit.exported` before anything is sent."""
    require_admin(actor, WHAT)
    filters = parse_filter(session, actor.org_id, args)
    used: dict[str, Any] = {k: v for k, v in filters.args.items() if k != "actor"}
    if filters.actor_id is not None:
        used["actor_id"] = filters.actor_id  # the id, not the email typed
    audit.record(session, actor.org_id, "audit.exported", actor_id=actor.user_id,
                 data={"filters": used, "format": "csv"})  # fmt: skip
    session.commit()
    return filters


def export_lines(
    sessions: sessionmaker[Session], org_id: int, filters: AuditFilter
) -> Iterator[str]:
    """The matching events as CSV lines, oldest first, read in batches (spreadsheet-safe).

    The lines are produced while the response streams, after the request's own session is
    gone, so they are read in a session of their own (closed when the stream ends).
    """
    return csv_lines(_export_rows(sessions, org_id, filters))


def _export_rows(
    sessions: sessionmaker[Session], org_id: int, filters: AuditFilter
) -> Iterable[Sequence[object]]:
    yield EXPORT_COLUMNS
    stmt = _filtered(org_id, filters).order_by(AuditEvent.seq)
    with session_scope(sessions) as session, tenant_scope(session, org_id):
        result = session.scalars(stmt.execution_options(yield_per=EXPORT_BATCH))
        with closing(result):
            yield from _export_batches(session, result.partitions())


def _export_batches(
    session: Session, batches: Iterable[Sequence[AuditEvent]]
) -> Iterable[Sequence[object]]:
    for batch in batches:
        names = _names(session, batch)
        for r in batch:
            yield (r.seq, r.created_at.isoformat(), r.actor_id, names.get(r.actor_id, ""),
                   r.action, r.target_type, r.target_id, audit.json_text(r.data), r.ip_prefix,
                   r.request_id, r.prev_hash, r.hash)  # fmt: skip


def verify_org(session: Session, actor: Membership) -> audit.Verification:
    """Verify the org's chain now (admins), and log the outcome."""
    require_admin(actor, WHAT)
    result = audit.verify(session, actor.org_id)
    audit.log_outcome(log, result)
    return result
