"""Full-text search over tickets: PostgreSQL tsvector, weighted, GIN-indexed.

Each ticket keeps two vectors, maintained here when tickets and comments are written:
`search_all` (subject + every message, for agents) and `search_public` (subject + public
messages only, for requesters, so a search can never reveal an internal note). The subject
is weighted A and messages B. A search matches on one of them and ranks by a third,
`search_subject` (the subject alone, kept by PostgreSQL as a generated column): subject
matches first, then the most recently active (decision 0013). Queries use
`websearch_to_tsquery` ("quoted phrase", -exclusion, or), which never fails on odd input.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, select
from sqlalchemy.orm import Session

from helpdesk.models import Ticket

CONFIG: ColumnElement[Any] = literal_column("'english'::regconfig")
BODY_CHARS = 10_000  # of each message, indexed
VECTOR_BYTES_MAX = 500_000  # stop appending beyond this (PostgreSQL caps a tsvector at 1 MB)
QUERY_MAX = 200


WEIGHTS: dict[str, ColumnElement[Any]] = {
    "A": literal_column("'A'"),
    "B": literal_column("'B'"),
}  # setweight wants "char"


def _vector(text: Any, weight: str) -> ColumnElement[Any]:
    return func.setweight(func.to_tsvector(CONFIG, func.left(text, BODY_CHARS)), WEIGHTS[weight])


def index_new_ticket(ticket: Ticket, subject: str, body: str) -> None:
    """Set both vectors of a new ticket from its subject and first (public) message."""
    vector = _vector(subject, "A").op("||")(_vector(body, "B"))
    ticket.search_all = vector  # SQL, evaluated at flush
    ticket.search_public = vector


def _appended(column: Any, body: str) -> ColumnElement[Any]:
    grown = column.op("||")(_vector(body, "B"))
    return case((func.pg_column_size(column) < VECTOR_BYTES_MAX, grown), else_=column)


def index_comment(ticket: Ticket, body: str, internal: bool) -> None:
    """Add a new message to the ticket's vectors (internal notes only to search_all)."""
    ticket.search_all = _appended(Ticket.search_all, body)
    if not internal:
        ticket.search_public = _appended(Ticket.search_public, body)


def ticket_query(text: str) -> ColumnElement[Any]:
    """The tsquery for what a person typed."""
    return func.websearch_to_tsquery(CONFIG, text)


def is_searchable(session: Session, text: str) -> bool:
    """False when the text has no searchable words (only stop words or punctuation)."""
    return bool(session.scalar(select(func.numnode(ticket_query(text)))))
