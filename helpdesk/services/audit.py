"""The audit log: append an event to its chain, and verify a chain end to end.

Why a hash chain: an audit log that anyone with database access can quietly edit proves
nothing. Each event stores `hash = SHA-256(prev_hash ‖ canonical JSON of the event)`, so
an UPDATE, DELETE or INSERT done behind the app's back breaks the chain at that seq, and
the head row (`audit_heads`) exposes a deleted tail. Appends to one chain are serialized
by locking its head row (`SELECT … FOR UPDATE`) until the caller's transaction commits,
so two concurrent writers can never both take the same seq or fork the chain.

Events carry ids, not PII: no emails, names, bodies or tokens in `data` (callers pass
hashes or ids), and the client address only as a prefix (/24 or /48).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from helpdesk.models import AuditEvent, AuditHead, SiteAuditEvent
from helpdesk.models.audit import GENESIS_HASH, SITE_CHAIN
from helpdesk.requestid import current_client_address, current_request_id
from helpdesk.tenancy import unscoped

AuditRow = AuditEvent | SiteAuditEvent


def ip_prefix(address: str | None) -> str | None:
    """Return the client's network (/24 for IPv4, /48 for IPv6), never the full address."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def canonical(row: AuditRow, org_id: int | None) -> bytes:
    """Return the bytes hashed for one event: sorted-key compact JSON, UTC microseconds."""
    payload = {
        "seq": row.seq,
        "org_id": org_id,
        "actor_id": row.actor_id,
        "action": row.action,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "data": row.data,
        "ip_prefix": row.ip_prefix,
        "request_id": row.request_id,
        "created_at": row.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def link_hash(prev_hash: str, row: AuditRow, org_id: int | None) -> str:
    """Return SHA-256(prev_hash ‖ canonical event) as hex."""
    return hashlib.sha256(prev_hash.encode() + canonical(row, org_id)).hexdigest()


def _lock_head(session: Session, chain_id: int) -> AuditHead:
    session.execute(
        insert(AuditHead)
        .values(chain_id=chain_id, seq=0, hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["chain_id"])
    )
    head = session.scalar(
        select(AuditHead)
        .where(AuditHead.chain_id == chain_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert head is not None  # inserted above if it was missing
    return head


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
    """Append one event to the org's chain (or the site chain when org_id is None).

    Joins the caller's transaction: the event commits or rolls back with the change it
    records. The chain's head stays locked until then, so keep audited transactions short.
    """
    chain_id = SITE_CHAIN if org_id is None else org_id
    with unscoped(session):
        head = _lock_head(session, chain_id)
    fields: dict[str, Any] = {
        "seq": head.seq + 1,
        "actor_id": actor_id,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "data": json.loads(json.dumps(data or {}, sort_keys=True, default=str)),
        "ip_prefix": ip_prefix(current_client_address()),
        "request_id": current_request_id(),
        "created_at": datetime.now(UTC),
        "prev_hash": head.hash,
    }
    row: AuditRow
    row = SiteAuditEvent(**fields) if org_id is None else AuditEvent(org_id=org_id, **fields)
    row.hash = link_hash(head.hash, row, org_id)
    session.add(row)
    head.seq, head.hash = row.seq, row.hash
    session.flush()
    return row


@dataclass(frozen=True)
class Verification:
    """The outcome of checking one chain."""

    org_id: int | None
    count: int
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify(session: Session, org_id: int | None, batch: int = 5000) -> Verification:
    """Walk one chain in seq order and report the first broken link, if any."""
    model: type[AuditRow] = SiteAuditEvent if org_id is None else AuditEvent
    chain_id = SITE_CHAIN if org_id is None else org_id
    expected_seq, prev, count, last_seq = 1, GENESIS_HASH, 0, 0
    with unscoped(session):
        head = session.get(AuditHead, chain_id)
        query = select(model).order_by(model.seq)
        if org_id is not None:
            query = query.where(AuditEvent.org_id == org_id)
        rows: Iterator[AuditRow] = iter(session.scalars(query.execution_options(yield_per=batch)))
        for row in rows:
            broken, problem = _check(row, org_id, expected_seq, prev)
            if broken is not None:
                return Verification(org_id, count, broken, problem)
            prev, count, last_seq, expected_seq = row.hash, count + 1, row.seq, row.seq + 1
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if (head_seq, head_hash) != (last_seq, prev):
        missing = last_seq + 1
        return Verification(
            org_id,
            count,
            missing,
            f"chain ends at seq {last_seq} but its head "
            f"records seq {head_seq}: events were deleted from the end",
        )
    return Verification(org_id, count)


def _check(row: AuditRow, org_id: int | None, seq: int, prev: str) -> tuple[int | None, str]:
    if row.seq > seq:
        return seq, f"seq {seq} is missing (next is {row.seq}): an event was deleted"
    if row.seq < seq:
        return row.seq, f"seq {row.seq} appears twice: an event was inserted"
    if row.prev_hash != prev:
        return row.seq, "prev_hash does not match the previous event's hash"
    if row.hash != link_hash(prev, row, org_id):
        return row.seq, "hash does not match the event's content: it was changed"
    return None, ""
