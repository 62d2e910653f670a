"""The audit log: append an event to its chain, and verify a chain end to end.

Why a hash chain: an audit log that anyone with database access can quietly edit proves
nothing. Each event stores `hash = SHA-256(prev_hash ‖ canonical JSON of the event)`, so
an UPDATE, DELETE or INSERT done behind the app's back breaks the chain at that seq, and
the head row (`audit_heads`) exposes a deleted tail or a forged append.

Why appends wait for the commit: `record()` only queues the event on the session; the
session's `before_commit` flushes the caller's changes, then locks each chain's head row
(`INSERT … ON CONFLICT DO UPDATE`, chains in ascending order), numbers the events and
writes them. The head lock is therefore always the *last* lock a transaction takes and is
held only for its commit: two writers can never take the same seq or fork a chain, and an
audited transaction can never deadlock against another one over the head (a writer that
locked the head first and a ticket row second, against one that did the opposite).
A transaction that rolls back takes its queued events with it.

Events carry ids, not PII: no emails, names, bodies or tokens in `data` (callers pass
hashes or ids), and the client address only as a prefix (/24 or /48).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, SessionTransaction

from helpdesk.logs import address_prefix  # the one /24-or-/48 rule, shared with the logs
from helpdesk.models import AuditEvent, AuditHead, SiteAuditEvent
from helpdesk.models.audit import GENESIS_HASH, SITE_CHAIN
from helpdesk.requestid import current_client_address, current_request_id
from helpdesk.tenancy import tenant_scope, unscoped

AuditRow = AuditEvent | SiteAuditEvent
ACTION_RE = re.compile(r"^[a-z][a-z_]*(\.[a-z][a-z_]*)+$")
PENDING_KEY = "helpdesk.audit_pending"  # session.info: events waiting for the commit
HASHED = ("seq", "actor_id", "action", "target_type", "target_id", "data", "ip_prefix",
          "request_id", "created_at")  # fmt: skip


def canonical(event_fields: Mapping[Any, Any], org_id: int | None) -> bytes:
    """Return the bytes hashed for one event: sorted-key compact JSON, UTC microseconds."""
    payload = {name: event_fields[name] for name in HASHED}
    payload["org_id"] = org_id
    created: datetime = payload["created_at"]
    payload["created_at"] = created.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def link_hash(prev_hash: str, event_fields: Mapping[Any, Any], org_id: int | None) -> str:
    """Return SHA-256(prev_hash ‖ canonical event) as hex."""
    return hashlib.sha256(prev_hash.encode() + canonical(event_fields, org_id)).hexdigest()


def json_text(data: Any) -> str:
    """Compact JSON with sorted keys (how event data is shown in exports)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def changes(changed: Mapping[str, tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    """Turn {field: (old, new)} into the audit data shape {field: {"old": …, "new": …}}."""
    return {field: {"old": old, "new": new} for field, (old, new) in changed.items()}


def record(
    session: Session,
    org_id: int | None,
    action: str,
    *,
    actor_id: int | None = None,
    target_type: str | None = None,
    target_id: int | str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditRow:
    """Queue one event for the org's chain (or the site chain when org_id is None).

    Joins the caller's transaction: the event is numbered, hashed and written when the
    session commits, and dropped if it rolls back. The returned row gets its seq and hash
    at that commit.
    """
    if not ACTION_RE.match(action):
        raise ValueError(f"audit action {action!r} is not a dotted lower-case name")
    fields: dict[str, Any] = {
        "actor_id": actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "data": _clean(json.loads(json.dumps(data or {}, sort_keys=True, default=str))),
        "ip_prefix": address_prefix(current_client_address()),
        "request_id": current_request_id(),
    }
    row: AuditRow
    row = SiteAuditEvent(**fields) if org_id is None else AuditEvent(org_id=org_id, **fields)
    if not session.in_transaction():
        session.begin()  # so that a rollback, even before any SQL, drops the event
    session.info.setdefault(PENDING_KEY, []).append(row)
    if not event.contains(session, "before_commit", _append_pending):
        event.listen(session, "before_commit", _append_pending)
        event.listen(session, "after_transaction_end", _drop_pending)
    return row


def _clean(value: Any) -> Any:
    """Make data survive jsonb unchanged, so its hash still matches when it is read back.

    jsonb refuses NUL characters (dropped here) and rewrites numbers such as 1e+20 (floats
    are kept as their text).
    """
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    return value


def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the outermost transaction ended without appending
        session.info.pop(PENDING_KEY, None)


def _append_pending(session: Session) -> None:
    """before_commit: write the queued events, one head lock per chain, chains in order."""
    pending: list[AuditRow] = session.info.pop(PENDING_KEY, [])
    if not pending:
        return
    session.flush()  # the caller's own row locks come first: the head lock is the last
    chains: dict[int, list[AuditRow]] = {}
    for row in pending:
        org_id = row.org_id if isinstance(row, AuditEvent) else None
        chains.setdefault(SITE_CHAIN if org_id is None else org_id, []).append(row)
    for chain_id in sorted(chains):
        _append(session, chain_id, chains[chain_id])


def _append(session: Session, chain_id: int, rows: list[AuditRow]) -> None:
    org_id = None if chain_id == SITE_CHAIN else chain_id
    lock = (
        insert(AuditHead)
        .values(chain_id=chain_id, seq=0, hash=GENESIS_HASH)
        .on_conflict_do_update(index_elements=["chain_id"], set_={"seq": AuditHead.seq})
        .returning(AuditHead.seq, AuditHead.hash)
    )
    with unscoped(session):
        seq, prev = session.execute(lock).one()
    now = datetime.now(UTC)
    for row in rows:
        seq += 1
        row.seq, row.prev_hash, row.created_at = seq, prev, now
        row.hash = prev = link_hash(prev, {name: getattr(row, name) for name in HASHED}, org_id)
    session.add_all(rows)
    if org_id is None:
        session.flush()
    else:
        with tenant_scope(session, org_id):
            session.flush()
    with unscoped(session):
        session.execute(
            update(AuditHead).where(AuditHead.chain_id == chain_id).values(seq=seq, hash=prev)
        )


@dataclass(frozen=True)
class Verification:
    """The outcome of checking one chain."""

    org_id: int | None
    count: int
    broken_seq: int | None = None
    reason: str = ""
    head_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(session: Session, org_id: int | None, batch: int = 5000) -> Verification:
    """Walk one chain in seq order and report the first broken link, if any.

    The events and the head are read by one statement (one snapshot), so events appended
    while the walk runs are neither missed nor mistaken for forgeries.
    """
    model: type[AuditRow] = SiteAuditEvent if org_id is None else AuditEvent
    chain_id = SITE_CHAIN if org_id is None else org_id
    head_seq = select(AuditHead.seq).where(AuditHead.chain_id == chain_id).scalar_subquery()
    head_hash = select(AuditHead.hash).where(AuditHead.chain_id == chain_id).scalar_subquery()
    columns = [getattr(model, name) for name in (*HASHED, "prev_hash", "hash")]
    query = select(*columns, head_seq.label("head_seq"), head_hash.label("head_hash"))
    if org_id is not None:
        query = query.where(AuditEvent.org_id == org_id)
    query = query.order_by(model.seq, model.id).execution_options(yield_per=batch)
    for _attempt in range(3):
        expected_seq, prev, count, last_seq = 1, GENESIS_HASH, 0, 0
        head: tuple[int | None, str | None] | None = None
        with unscoped(session), closing(session.execute(query)) as rows:
            for row in rows:
                head = (row.head_seq, row.head_hash)
                broken, problem = _check(row._mapping, org_id, expected_seq, prev)
                if broken is not None:
                    return Verification(org_id, count, broken, problem, prev)
                prev, count, last_seq, expected_seq = row.hash, count + 1, row.seq, row.seq + 1
        with unscoped(session):
            if head is None:  # no events: read the head (and re-check emptiness) in one go
                has_rows = select(model.id).where(*_chain_where(org_id)).exists()
                found = session.execute(select(has_rows, head_seq, head_hash)).one()
                if found[0]:
                    continue  # the first event was committed between the two reads
                head = (found[1], found[2])
        return _check_head(org_id, count, last_seq, prev, head)
    raise RuntimeError("the chain kept changing while it was being verified")


def _chain_where(org_id: int | None) -> list[Any]:
    return [] if org_id is None else [AuditEvent.org_id == org_id]


def _check(
    row: Mapping[Any, Any], org_id: int | None, seq: int, prev: str
) -> tuple[int | None, str]:
    if row["seq"] > seq:
        return seq, f"seq {seq} is missing (next is {row['seq']}): an event was deleted"
    if row["seq"] < seq:
        return row["seq"], f"seq {row['seq']} appears twice: an event was inserted"
    if row["prev_hash"] != prev:
        return row["seq"], "prev_hash does not match the previous event's hash"
    if row["hash"] != link_hash(prev, row, org_id):
        return row["seq"], "hash does not match the event's content: it was changed"
    return None, ""


def _check_head(
    org_id: int | None, count: int, last_seq: int, prev: str, head: tuple[int | None, str | None]
) -> Verification:
    """Compare the walked chain's end with the head row written by the last append."""
    head_seq, head_hash = head
    if head_seq is None:
        if last_seq == 0:
            return Verification(org_id, 0)
        reason = "the chain's head record is missing: it was deleted"
        return Verification(org_id, count, 1, reason, prev)
    if last_seq < head_seq:
        reason = (f"chain ends at seq {last_seq} but its head records seq {head_seq}: "
                  "events were deleted from the end")  # fmt: skip
        return Verification(org_id, count, last_seq + 1, reason, prev)
    if last_seq > head_seq:
        reason = (f"seq {head_seq + 1} comes after the head (seq {head_seq}): "
                  "an event was inserted behind the app's back")  # fmt: skip
        return Verification(org_id, count, head_seq + 1, reason, prev)
    if head_hash != prev:
        reason = "the last event's hash differs from the head's: the end was rewritten"
        return Verification(org_id, count, last_seq, reason, prev)
    return Verification(org_id, count, head_hash=prev)


def log_outcome(logger: logging.Logger, result: Verification) -> None:
    """Log one chain's outcome as a structured `audit.verify` event (ids and counts only)."""
    fields = {"event": "audit.verify", "org_id": result.org_id, "count": result.count,
              "broken_seq": result.broken_seq}  # fmt: skip
    if result.ok:
        logger.info("audit.verify", extra=fields)
    else:
        logger.error("audit.verify", extra={**fields, "reason": result.reason})
