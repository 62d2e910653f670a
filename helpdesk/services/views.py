"""Saved views: built-in queues plus named filter sets, personal or shared by admins."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from helpdesk.models import Membership, Role, SavedView, Ticket
from helpdesk.services import audit
from helpdesk.services.errors import Forbidden, NotFound, ValidationError
from helpdesk.services.permissions import require_staff
from helpdesk.services.queries import ALL_OPEN, FILTER_KEYS, filtered, parse_filter
from helpdesk.services.validation import one_line

NAME_MAX = 60
COUNT_CAP = 1000  # counters read at most this many index entries per view: "1,000+"
BUILT_IN: tuple[tuple[str, dict[str, str]], ...] = (
    ("My open", {"status": ALL_OPEN, "assignee": "me"}),
    ("Unassigned", {"status": ALL_OPEN, "assignee": "unassigned"}),
    ("All open", {"status": ALL_OPEN}),
    ("Breaching soon", {"status": ALL_OPEN, "sla": "warning", "sort": "due"}),
)


@dataclass
class View:
    """A view as the list shows it; `id` is None for built-in views."""

    id: int | None
    name: str
    filters: dict[str, str]
    shared: bool
    deletable: bool


def list_views(session: Session, actor: Membership) -> list[View]:
    """Built-in views, the org's shared views, then the actor's own (staff only)."""
    if not actor.is_staff:
        return []
    views = [View(None, name, dict(f), True, False) for name, f in BUILT_IN]
    stmt = select(SavedView).where(
        or_(SavedView.owner_id.is_(None), SavedView.owner_id == actor.user_id)
    )
    rows = session.scalars(stmt.order_by(SavedView.owner_id.desc().nulls_first(),
                                         SavedView.name_key))  # fmt: skip
    for row in rows:
        shared = row.owner_id is None
        deletable = not shared or actor.role == Role.ADMIN
        views.append(View(row.id, row.name, dict(row.filters), shared, deletable))
    return views


def view_counts(session: Session, actor: Membership, views: list[View]) -> list[int | None]:
    """Capped ticket counts per view in one statement; None for search views.

    Each count stops after COUNT_CAP + 1 rows, so a view over a million tickets costs
    what a view over a thousand does; the list shows "1,000+".
    """
    columns: list[Any] = []
    slots: list[int | None] = []
    for view in views:
        try:
            filters = parse_filter(view.filters)
            stmt = None if filters.q else filtered(session, actor, filters)
        except ValidationError:  # e.g. a view naming an agent who has left
            stmt = None
        if stmt is None:
            slots.append(None)
            continue
        capped = stmt.with_only_columns(Ticket.id).limit(COUNT_CAP + 1).subquery()
        slots.append(len(columns))
        columns.append(select(func.count()).select_from(capped).scalar_subquery())
    if not columns:
        return [None for _ in views]
    row = session.execute(select(*columns)).one()
    return [None if slot is None else int(row[slot]) for slot in slots]


def clean_filters(filters: dict[str, Any]) -> dict[str, str]:
    """Keep the allow-listed, non-empty filters after validating them."""
    raw = {k: v for k, v in filters.items() if k in FILTER_KEYS and isinstance(v, str) and v}
    unknown = sorted(k for k in filters if k not in FILTER_KEYS)
    if unknown:
        raise ValidationError({k: "not a list filter" for k in unknown})
    parse_filter(raw)  # raises with a message per bad value
    if not raw:
        raise ValidationError({"filters": "set at least one filter before saving a view"})
    return raw


def save_view(
    session: Session, actor: Membership, name: object, filters: dict[str, Any], shared: bool
) -> SavedView:
    """Save the filters under a name, for the actor or (admins) for the whole org."""
    require_staff(actor, "save views")
    if shared and actor.role != Role.ADMIN:
        raise Forbidden("share views with the organization (admins only)")
    label = one_line(name)
    if not label or len(label) > NAME_MAX:
        raise ValidationError({"name": f"name the view (1-{NAME_MAX} characters)"})
    cleaned = clean_filters(filters)
    owner = None if shared else actor.user_id
    key = label.lower()
    clash = select(SavedView.id).where(SavedView.name_key == key)
    clash = clash.where(SavedView.owner_id.is_(None) if owner is None else
                        SavedView.owner_id == owner)  # fmt: skip
    if session.scalar(clash) is not None:
        raise ValidationError({"name": f"there is already a view called {label!r}"})
    view = SavedView(owner_id=owner, name=label, name_key=key, filters=cleaned)
    session.add(view)
    session.commit()
    return view


def delete_view(session: Session, actor: Membership, view_id: int) -> None:
    """Delete one of the actor's views, or (admins) a shared one."""
    view = session.get(SavedView, view_id)
    visible = actor.is_staff and view is not None and view.owner_id in (None, actor.user_id)
    if view is None or not visible:
        raise NotFound("view not found")
    if view.owner_id is None and actor.role != Role.ADMIN:
        raise Forbidden("delete shared views (admins only)")
    audit.record(session, view.org_id, "view.deleted", actor_id=actor.user_id,
                 target_type="view", target_id=view.id,
                 data={"shared": view.owner_id is None, "owner_id": view.owner_id})  # fmt: skip
    session.delete(view)
    session.commit()
