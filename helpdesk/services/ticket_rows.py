"""Ticket list rows as plain values: one flat SELECT, no ORM objects to build.

Why: a list page shows ~50 tickets with two people each. Loading them as ORM entities
built ~150 tracked objects per request and was the largest single cost of serving a list
(docs/performance.md, F7). A list row is read-only, so it is plain data in one of two
shapes: `TicketRow` (every field the API shows, with both people) and `ListRow` (the ten
columns a list page row shows and sorts by; F12). Both stay ORM-enabled statements over
`Ticket`, so the tenant gate's criteria apply exactly as they do to entity queries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Row, Select
from sqlalchemy.orm import aliased

from helpdesk.models import Ticket, User

_requester = aliased(User, name="requester")
_assignee = aliased(User, name="assignee")

TICKET_FIELDS = (
    "id", "number", "subject", "status", "priority", "priority_rank", "tags", "created_at",
    "updated_at", "sla_state", "sla_due_at", "first_response_due_at", "resolution_due_at",
    "first_responded_at", "solved_at", "sla_paused_at",
)  # fmt: skip
_COLUMNS = (
    *(getattr(Ticket, name) for name in TICKET_FIELDS),
    _requester.id, _requester.email, _requester.name,
    _assignee.id, _assignee.email, _assignee.name,
)  # fmt: skip
_N = len(TICKET_FIELDS)


@dataclass(frozen=True, slots=True)
class Person:
    """The requester or assignee of a listed ticket."""

    id: int
    email: str
    name: str | None
    display_name: str  # as User.display_name: the name, else the address's local part


@dataclass(frozen=True, slots=True)
class TicketRow:
    """A listed ticket: the same attribute names as `Ticket` for what a list shows."""

    id: int
    number: int
    subject: str
    status: str
    priority: str
    priority_rank: int
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    sla_state: str | None
    sla_due_at: datetime | None
    first_response_due_at: datetime | None
    resolution_due_at: datetime | None
    first_responded_at: datetime | None
    solved_at: datetime | None
    sla_paused_at: datetime | None
    requester: Person
    assignee: Person | None


def select_rows(stmt: Select[Any]) -> Select[Any]:
    """The same tickets as `stmt` (a select of Ticket), as flat columns with both people."""
    return _with_people(stmt, _COLUMNS)


def _with_people(stmt: Select[Any], columns: Sequence[Any]) -> Select[Any]:
    """`stmt` selecting `columns`, joined to the requester and (if any) the assignee."""
    return (
        stmt.with_only_columns(*columns)
        .join(_requester, _requester.id == Ticket.requester_id)
        .outerjoin(_assignee, _assignee.id == Ticket.assignee_id)
    )


def to_rows(result: Iterable[Row[Any]]) -> list[TicketRow]:
    """Build list rows from the tuples `select_rows` returns."""
    return [_row(values) for values in result]


def _row(values: Sequence[Any]) -> TicketRow:
    requester = person(values[_N], values[_N + 1], values[_N + 2])
    assignee = person(values[_N + 3], values[_N + 4], values[_N + 5]) if values[_N + 3] else None
    return TicketRow(*values[:_N], requester, assignee)  # type: ignore[call-arg]  # TICKET_FIELDS order


def person(user_id: int, email: str, name: str | None) -> Person:
    """A Person from a user's id, address and name."""
    return Person(user_id, email, name, name or email.split("@", 1)[0])


class ListRow(NamedTuple):
    """A ticket as a list page row shows it, plus the sort keys its next-page cursor needs.

    Why a second, smaller shape: the list page reads 10 columns where the API reads 22, and
    a row is a tuple as the database sent it (no per-row object to fill, no Person
    objects: each person is one name, computed by `User.display_name` in SQL).
    """

    number: int
    subject: str
    status: str
    priority: str
    priority_rank: int
    sla_state: str | None
    sla_due_at: datetime | None
    updated_at: datetime
    requester_name: str
    assignee_name: str | None


_LIST_COLUMNS = (
    *(getattr(Ticket, name) for name in ListRow._fields[:8]),
    _requester.display_name, _assignee.display_name,
)  # fmt: skip


def select_list_rows(stmt: Select[Any]) -> Select[Any]:
    """The same tickets as `stmt` (a select of Ticket), as the columns of a `ListRow`."""
    return _with_people(stmt, _LIST_COLUMNS)


def to_list_rows(result: Iterable[Row[Any]]) -> list[ListRow]:
    """Build list rows from the tuples `select_list_rows` returns."""
    make = ListRow._make
    return [make(values) for values in result]


R = TypeVar("R", TicketRow, ListRow)


@dataclass(frozen=True)
class Shape(Generic[R]):
    """How a list query selects its rows and builds them: `FULL` for the API, `LIST` for pages."""

    name: str
    select: Callable[[Select[Any]], Select[Any]]
    build: Callable[[Iterable[Row[Any]]], list[R]]


FULL: Shape[TicketRow] = Shape("full", select_rows, to_rows)
LIST: Shape[ListRow] = Shape("list", select_list_rows, to_list_rows)
