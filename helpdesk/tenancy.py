"""The tenant gate: every org-owned row is reachable only inside its org's scope.

Why this exists: peer help desks leaked data across customers through one forgotten
filter (search by number, a merge form, a list filter). Here no query needs to remember:

* Models that belong to an org inherit `OrgScoped`.
* A `do_orm_execute` listener adds `org_id = <current org>` to every ORM statement
  (selects, updates, deletes, joins and relationship loads alike).
* A statement that touches an `OrgScoped` table while no tenant is set **raises**
  (fail closed). Deliberate cross-org code says so with `unscoped(session)`.
* Inside a tenant scope, a Core statement on an org-owned *table* (not the ORM entity)
  raises too: the criteria can only be added to ORM entities, so it is refused rather
  than run unfiltered.
* `TenantSession.get` hides rows of another org that sit in the identity map from an
  earlier scope (a job that loops over orgs with one session), since `get` can answer
  from that map without any SQL.
* A `before_flush` listener stamps new rows with the current org and refuses rows or
  changes that point at another org.

The tenant lives on the SQLAlchemy session (`session.info`), so it travels with the unit of
work: a request sets it once in the org blueprint's `before_request`; a job enters
`tenant_scope(session, org_id)`.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import ForeignKey, Table, event, inspect
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql import FromClause, visitors

ORG_KEY = "helpdesk.org_id"
UNSCOPED_KEY = "helpdesk.unscoped"


class TenancyError(RuntimeError):
    """An org-owned table was touched outside any tenant scope, or across tenants."""


class OrgScoped:
    """Mixin for models owned by one organization."""

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )


def current_org_id(session: Session) -> int | None:
    """Return the org the session is scoped to, if any."""
    value = session.info.get(ORG_KEY)
    return int(value) if value is not None else None


def set_tenant(session: Session, org_id: int) -> None:
    """Scope a fresh session (one request) to one org."""
    existing = session.info.get(ORG_KEY)
    if existing is not None and existing != org_id:
        raise TenancyError("session is already scoped to another org")
    session.info[ORG_KEY] = org_id


@contextmanager
def tenant_scope(session: Session, org_id: int) -> Iterator[Session]:
    """Run a block (a job, a command) inside one org's scope."""
    previous = session.info.get(ORG_KEY)
    session.info[ORG_KEY] = org_id
    try:
        yield session
    finally:
        if previous is None:
            session.info.pop(ORG_KEY, None)
        else:
            session.info[ORG_KEY] = previous


@contextmanager
def unscoped(session: Session) -> Iterator[Session]:
    """Deliberately look across orgs (token lookup, login, ops commands)."""
    previous = session.info.get(UNSCOPED_KEY, False)
    session.info[UNSCOPED_KEY] = True
    try:
        yield session
    finally:
        session.info[UNSCOPED_KEY] = previous


def _scoped_tables() -> set[Table]:
    tables: set[Table] = set()
    for cls in _all_subclasses(OrgScoped):
        table = getattr(cls, "__table__", None)
        if isinstance(table, Table):
            tables.add(table)
    return tables


_SCOPED: dict[Table, bool] = {}  # a table's answer never changes once it exists


def _is_scoped(table: Table) -> bool:
    """Whether an `OrgScoped` model owns the table (memoized: asked for every statement)."""
    found = _SCOPED.get(table)
    if found is None:
        found = _SCOPED[table] = table in _scoped_tables()
    return found


def _all_subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _table_of(node: Any) -> Table | None:
    """The table behind a table, an alias of it, or a column of either."""
    target = node if isinstance(node, FromClause) else getattr(node, "table", None)
    for _ in range(4):  # alias of alias …: unwrap a few levels, never loop forever
        if target is None or isinstance(target, Table):
            return target
        target = getattr(target, "element", None)
    return None


# A statement never changes once built (each method returns a new one), so the walk's
# answer is kept per statement object: statements built once and run on every request
# (the user loader's, the list's first pages) are walked once per process, not per run.
_WALKED: weakref.WeakKeyDictionary[Any, tuple[frozenset[Table], frozenset[Table]]] = (
    weakref.WeakKeyDictionary()
)


def _scoped_tables_in(statement: Any) -> tuple[frozenset[Table], frozenset[Table]]:
    """Return (org-owned tables the statement touches, those reached only through Core)."""
    found = _WALKED.get(statement)
    if found is None:
        found = _WALKED[statement] = _walk(statement)
    return found


def _walk(statement: Any) -> tuple[frozenset[Table], frozenset[Table]]:
    """Visit every node of the statement for the tables behind it.

    A table reached through an ORM entity or attribute carries a `parententity`
    annotation somewhere in the statement; those get the loader criteria.
    """
    seen: set[Table] = set()
    via_orm: set[Table] = set()
    for node in visitors.iterate(statement):
        table = _table_of(node)
        if table is not None and _is_scoped(table):
            seen.add(table)
            if "parententity" in getattr(node, "_annotations", {}):
                via_orm.add(table)
    return frozenset(seen), frozenset(seen - via_orm)


def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    if state.is_column_load or state.is_relationship_load:
        return  # the criteria added to the parent statement propagate to these loads
    if state.session.info.get(UNSCOPED_KEY):
        return
    org_id = state.session.info.get(ORG_KEY)
    touched, core_only = _scoped_tables_in(state.statement)
    if org_id is None:
        if touched:
            raise TenancyError("query on an org-owned table with no tenant set")
        return
    if core_only:
        raise TenancyError("Core statement on an org-owned table: use the ORM entity")
    state.statement = _scoped(state.statement, org_id)


# The scoped copy of a statement is kept per statement object and org, like the walk: a
# statement built once then runs as the same object every time, and SQLAlchemy keeps its
# cache key on the object instead of computing it again for a fresh copy per execution.
SCOPED_ORGS_MAX = 64  # copies kept per statement (one per org it ran for), then start over
_SCOPED_COPIES: weakref.WeakKeyDictionary[Any, dict[int, Any]] = weakref.WeakKeyDictionary()


def _scoped(statement: Any, org_id: int) -> Any:
    """The statement with the org criteria added to every org-owned entity it loads."""
    copies = _SCOPED_COPIES.get(statement)
    if copies is None or len(copies) >= SCOPED_ORGS_MAX:
        copies = _SCOPED_COPIES[statement] = {}
    found = copies.get(org_id)
    if found is None:
        found = copies[org_id] = statement.options(
            with_loader_criteria(OrgScoped, lambda cls: cls.org_id == org_id, include_aliases=True)
        )
    return found


class TenantSession(Session):
    """A Session whose `get` honours the tenant scope even for identity-map hits."""

    def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
        obj = super().get(entity, ident, **kwargs)
        if obj is None or not isinstance(obj, OrgScoped) or self.info.get(UNSCOPED_KEY):
            return obj
        org_id = self.info.get(ORG_KEY)
        if org_id is None:
            raise TenancyError("get() of an org-owned row with no tenant set")
        return obj if obj.org_id == org_id else None


def _stamp_rows(session: Session, _flush_context: Any, _instances: Any) -> None:
    unscoped_mode = session.info.get(UNSCOPED_KEY, False)
    org_id = session.info.get(ORG_KEY)
    for obj in session.new:
        if not isinstance(obj, OrgScoped):
            continue
        if obj.org_id is None:
            if org_id is None:
                raise TenancyError(f"new {type(obj).__name__} with no org and no tenant set")
            obj.org_id = org_id
        elif org_id is not None and obj.org_id != org_id:
            raise TenancyError(f"new {type(obj).__name__} belongs to another org")
        elif org_id is None and not unscoped_mode:
            raise TenancyError(f"new {type(obj).__name__} written with no tenant set")
    for obj in session.dirty:
        if isinstance(obj, OrgScoped) and inspect(obj).attrs.org_id.history.has_changes():
            raise TenancyError(f"{type(obj).__name__}.org_id cannot be changed")


def install() -> None:
    """Register the listeners once per process (called by the app factory)."""
    if not event.contains(Session, "do_orm_execute", _scope_statement):
        event.listen(Session, "do_orm_execute", _scope_statement)
    if not event.contains(Session, "before_flush", _stamp_rows):
        event.listen(Session, "before_flush", _stamp_rows)
