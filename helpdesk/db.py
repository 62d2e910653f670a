"""Engine, sessions and the declarative base.

One engine per app (built in the factory, never at import). A request gets one session,
opened lazily by `get_session()` and closed at teardown; jobs and commands use
`session_scope()`.
"""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from flask import current_app, g, request
from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from helpdesk.tenancy import TenantSession

F = TypeVar("F")
READ_ONLY = "helpdesk.read_only"

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time, timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """`timestamptz` that refuses naive datetimes and always returns UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


def make_engine(url: str) -> Engine:
    """Create the engine for a database URL."""
    engine = create_engine(url, pool_size=5, max_overflow=10)
    event.listen(engine, "connect", _plan_every_execution)
    event.listen(engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no pooled connection the server has closed, without asking the server.

    Why not `pool_pre_ping`: it sends `SELECT 1` at every checkout, one more round trip on
    every request (docs/performance.md, F12). A server that ends a connection — a restart,
    `pg_terminate_backend`, an idle timeout, a pooler recycling it — sends an error and
    closes the socket, and an idle connection gets nothing else unasked (we never LISTEN).
    So a closed connection, or an idle one with anything to read, is dropped:
    `DisconnectionError` makes the pool discard it and check out (or open) another one.
    A statement that still meets a dead connection fails once; the pool then replaces
    every connection opened before it (SQLAlchemy invalidates on disconnect errors).
    """
    if dbapi_connection.closed:
        raise DisconnectionError("the connection was closed")
    readable, _w, _x = select.select([dbapi_connection.fileno()], [], [], 0)
    if readable:
        raise DisconnectionError("the server ended this connection while it was idle")


def _plan_every_execution(dbapi_connection: Any, _record: Any) -> None:
    """Plan each execution for its own values, even of a prepared statement.

    psycopg prepares a statement after its fifth execution, and Postgres may then switch to
    a generic plan that ignores the values. For a search that is a disaster: the generic
    plan cannot tell a rare word from one in a quarter of the tickets, and a search that
    took 30 ms took 3.5 s from its tenth run on a connection (docs/performance.md, F8).
    """
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True  # a SET inside a transaction is undone by its rollback
    try:
        dbapi_connection.execute("SET plan_cache_mode TO force_custom_plan")
    finally:
        dbapi_connection.autocommit = autocommit


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, class_=TenantSession, expire_on_commit=False)


def read_only(view: F) -> F:
    """Mark a GET view that only reads: its session runs without a transaction.

    Postgres then sees no BEGIN and no ROLLBACK: two round trips fewer per page view (the
    hottest pages: ticket list, ticket page). Each statement reads its own snapshot, which
    a page of independent reads does not mind. The session refuses to write (flush, or
    an UPDATE/DELETE/INSERT statement): a write there would commit statement by statement.
    """
    setattr(view, READ_ONLY, True)
    return view


def get_session() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        session = current_app.extensions["helpdesk.sessionmaker"]()
        if _read_only_request():
            session.info[READ_ONLY] = True
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        g.db_session = session
    found: Session = g.db_session
    return found


def _read_only_request() -> bool:
    if request.method not in ("GET", "HEAD") or request.endpoint is None:
        return False
    return getattr(current_app.view_functions.get(request.endpoint), READ_ONLY, False)


class ReadOnlyError(RuntimeError):
    """A view marked read-only tried to write."""


def _refuse_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise ReadOnlyError("a read-only request tried to write (see helpdesk.db.read_only)")


def _refuse_writes(state: ORMExecuteState) -> None:
    if state.session.info.get(READ_ONLY) and (
        state.is_update or state.is_delete or state.is_insert
    ):
        raise ReadOnlyError("a read-only request tried to write (see helpdesk.db.read_only)")


def install_guards() -> None:
    """Register the read-only guards once per process (called by the app factory)."""
    if not event.contains(Session, "before_flush", _refuse_flush):
        event.listen(Session, "before_flush", _refuse_flush)
    if not event.contains(Session, "do_orm_execute", _refuse_writes):
        event.listen(Session, "do_orm_execute", _refuse_writes)


def close_session(_exc: BaseException | None = None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Open a session for a job or command; roll back on error, always close."""
    session = factory()
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
