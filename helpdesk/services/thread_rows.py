"""A ticket's messages as plain values: one flat SELECT with each author's name.

Why: the ticket page shows every message; loading each as a tracked ORM object with its
author was most of the cost of a long thread (docs/performance.md, F7). Messages are
read-only here, so they come back as slotted rows with the attribute names of `Comment`.
It stays an ORM-enabled statement, so the tenant gate's criteria apply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select
from sqlalchemy.orm import aliased

from helpdesk.models import Comment, User
from helpdesk.services.ticket_rows import Person, person

_author = aliased(User, name="author")
_COLUMNS: tuple[Any, ...] = (
    Comment.id, Comment.ticket_id, Comment.body_md, Comment.body_html, Comment.internal,
    Comment.channel, Comment.created_at, _author.id, _author.email, _author.name,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class CommentRow:
    """One message of a thread, as the ticket page and the API show it."""

    id: int
    ticket_id: int
    body_md: str
    body_html: str
    internal: bool
    channel: str
    created_at: datetime
    author: Person


def select_rows(stmt: Select[Any]) -> Select[Any]:
    """The same messages as `stmt` (a select of Comment), as flat columns with the author."""
    return stmt.with_only_columns(*_COLUMNS).join(_author, _author.id == Comment.author_id)


def to_rows(result: Iterable[Row[Any]]) -> list[CommentRow]:
    """Build thread rows from the tuples `select_rows` returns."""
    return [_row(values) for values in result]


def _row(v: Any) -> CommentRow:
    return CommentRow(v[0], v[1], v[2], v[3], v[4], v[5], v[6], person(v[7], v[8], v[9]))
