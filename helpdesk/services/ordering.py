"""How ticket lists are ordered and paged: keyset cursors per sort, never row ids.

Each sort is a tuple of columns read in one direction; the cursor carries the sort's name
and the last row's values for those columns, so the next page is
`WHERE (cols) < (values) ORDER BY cols DESC` — as fast at page 500 as at page 1, and
served by an index that starts with (org_id, …) for each sort.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, tuple_

from helpdesk.models import Ticket
from helpdesk.services.errors import ValidationError


@dataclass(frozen=True)
class Sort:
    name: str
    label: str
    columns: tuple[Any, ...]
    descending: bool = True

    def values(self, ticket: Any) -> list[Any]:  # a Ticket or a list row
        return [getattr(ticket, c.key) for c in self.columns]


SORTS = {
    s.name: s
    for s in (
        Sort("updated", "recently updated", (Ticket.updated_at, Ticket.number)),
        Sort("created", "newest", (Ticket.number,)),  # numbers follow creation order
        Sort("oldest", "oldest", (Ticket.number,), descending=False),
        Sort("priority", "priority", (Ticket.priority_rank, Ticket.updated_at, Ticket.number)),
        # Soonest SLA due time first; lists only tickets with an unmet target (queries.py).
        Sort("due", "SLA due soonest", (Ticket.sla_due_at, Ticket.number), descending=False),
    )
}
DEFAULT_SORT = "updated"


def encode(payload: list[Any]) -> str:
    """An opaque, URL-safe cursor for a JSON list."""
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def bad_cursor() -> ValidationError:
    return ValidationError({"cursor": "this page link is invalid; start from the first page"})


def decode(cursor: str) -> list[Any]:
    """The JSON list inside a cursor; anything else is a 422, not a 500."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_cursor() from None
    if not isinstance(payload, list) or len(payload) < 2:
        raise bad_cursor()
    return payload


def cursor_after(sort: Sort, ticket: Any) -> str:
    values = [v.isoformat() if isinstance(v, datetime) else v for v in sort.values(ticket)]
    return encode([sort.name, *values])


def _parse_values(sort: Sort, raw: list[Any]) -> list[Any]:
    if len(raw) != len(sort.columns):
        raise bad_cursor()
    values: list[Any] = []
    for column, value in zip(sort.columns, raw, strict=True):
        if column.key.endswith("_at"):
            try:
                when = datetime.fromisoformat(value) if isinstance(value, str) else None
            except ValueError:
                when = None
            if when is None or when.tzinfo is None:
                raise bad_cursor()
            values.append(when)
        elif isinstance(value, int) and not isinstance(value, bool):
            values.append(value)
        else:
            raise bad_cursor()
    return values


def ordered(stmt: Select[Ticket], sort: Sort, cursor: str | None) -> Select[Ticket]:
    """Order the statement by the sort and start after the cursor's row."""
    if cursor:
        name, *raw = decode(cursor)
        if name != sort.name:
            raise bad_cursor()
        key, values = tuple_(*sort.columns), tuple_(*_parse_values(sort, raw))
        stmt = stmt.where(key < values if sort.descending else key > values)
    return stmt.order_by(*(c.desc() if sort.descending else c.asc() for c in sort.columns))
