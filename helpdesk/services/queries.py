"""Read side of tickets: the filtered, keyset-paginated list and a ticket's thread."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Generic

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from helpdesk.models import (
    Comment,
    Membership,
    Priority,
    SlaState,
    Status,
    Ticket,
    TicketEvent,
    User,
)
from helpdesk.services import ordering, orgs, search, thread_rows, ticket_rows
from helpdesk.services.errors import ValidationError
from helpdesk.services.permissions import can_see_internal
from helpdesk.services.thread_rows import CommentRow
from helpdesk.services.ticket_rows import ListRow, R, Shape, TicketRow
from helpdesk.services.validation import (
    TAG_RE,
    choice,
    choices_text,
    normalize_email,
    one_line,
    positive_int,
)

ALL_OPEN = "all_open"  # a status filter: every status still needing work
OPEN_STATUSES = (Status.NEW.value, Status.OPEN.value, Status.PENDING.value, Status.ON_HOLD.value)
DATE_FILTERS = ("created_after", "created_before", "updated_after", "updated_before")
FILTER_KEYS = (
    "q", "status", "priority", "assignee", "tag", "requester", "sla", "sort", *DATE_FILTERS,
)  # fmt: skip
SLA_NONE = "none"  # an SLA-state filter: tickets no SLA policy applies to
SLA_CHOICES = (*(s.value for s in SlaState), SLA_NONE)
SEARCH_DEPTH_MAX = 1000  # search ranks the most recently active 1,000 matches


@dataclass
class TicketFilter:
    """Allow-listed list filters (never raw request args)."""

    status: str | None = None
    priority: str | None = None
    assignee: str | None = None  # "me", "unassigned", or an agent's email / user id
    q: str | None = None  # full-text search, or "#123" for a ticket number
    tag: str | None = None
    requester: str | None = None  # the requester's email
    sla: str | None = None  # ok / warning / breached / none
    sort: str | None = None  # a key of ordering.SORTS
    dates: dict[str, date] = field(default_factory=dict)  # e.g. {"created_after": …}


@dataclass
class Page(Generic[R]):
    items: list[R]
    next_cursor: str | None
    filters: TicketFilter = field(default_factory=TicketFilter)


def parse_filter(args: dict[str, str]) -> TicketFilter:
    """Build a TicketFilter from query args, rejecting unknown values with field messages."""
    errors: dict[str, str] = {}
    result = TicketFilter()
    if args.get("status"):
        status = args["status"]
        result.status = ALL_OPEN if status == ALL_OPEN else choice(status, Status)
        if result.status is None:
            errors["status"] = f"choose one of: {ALL_OPEN}, {choices_text(Status)}"
    if args.get("priority"):
        result.priority = choice(args["priority"], Priority)
        if result.priority is None:
            errors["priority"] = f"choose one of: {choices_text(Priority)}"
    if args.get("assignee"):
        result.assignee = args["assignee"].strip().lower()
    if args.get("tag"):
        result.tag = args["tag"].strip().lower()
        if not TAG_RE.match(result.tag):
            errors["tag"] = "a tag is a-z, 0-9, - and _ (max 40 characters)"
    if args.get("requester"):
        result.requester = normalize_email(args["requester"])
        if result.requester is None:
            errors["requester"] = "enter the requester's email address"
    if args.get("sla"):
        result.sla = args["sla"] if args["sla"] in SLA_CHOICES else None
        if result.sla is None:
            errors["sla"] = f"choose one of: {', '.join(SLA_CHOICES)}"
    for key in DATE_FILTERS:
        if args.get(key):
            try:
                result.dates[key] = date.fromisoformat(args[key])
            except ValueError:
                errors[key] = "use a date like 2026-01-31"
    if args.get("sort"):
        result.sort = args["sort"] if args["sort"] in ordering.SORTS else None
        if result.sort is None:
            errors["sort"] = f"choose one of: {', '.join(ordering.SORTS)}"
    query = one_line(args.get("q", ""))
    if len(query) > search.QUERY_MAX:
        errors["q"] = f"keep the search under {search.QUERY_MAX} characters"
    result.q = query or None
    if errors:
        raise ValidationError(errors)
    return result


def decode_search_cursor(cursor: str) -> int:
    """Parse a search-results cursor (an offset into the ranked results)."""
    payload = ordering.decode(cursor)
    kind, offset = payload if len(payload) == 2 else (None, None)
    if kind != "rank" or not isinstance(offset, int) or not 0 < offset < SEARCH_DEPTH_MAX:
        raise ordering.bad_cursor()
    return offset


def _assignee_clause(session: Session, actor: Membership, value: str) -> object:
    if value == "me":
        return Ticket.assignee_id == actor.user_id
    if value == "unassigned":
        return Ticket.assignee_id.is_(None)
    user_id = positive_int(value)
    if user_id is not None:
        return Ticket.assignee_id == user_id
    member = orgs.staff_member_by_email(session, value)
    if member is None:
        raise ValidationError({"assignee": "no agent with that email in this organization"})
    return Ticket.assignee_id == member.user_id


def list_tickets(
    session: Session,
    actor: Membership,
    filters: TicketFilter,
    cursor: str | None,
    limit: int,
    shape: Shape[R],
) -> Page[R]:
    """Return one page of tickets the actor may see: newest activity first, or by rank.

    `shape` says which columns each row carries: every field (the API) or what a list page
    row shows (`ticket_rows.LIST`).
    """
    number = _number_query(filters.q)
    if filters.q and number is None:
        stmt = filtered(session, actor, filters)
        return _search_page(session, actor, stmt, filters, cursor, limit, shape)
    sort = ordering.SORTS[filters.sort or ordering.DEFAULT_SORT]
    first = cursor is None and number is None
    key = _first_page_key(actor, filters, limit, shape) if first else None
    page = _FIRST_PAGES.get(key) if key is not None else None
    if page is None:
        stmt = filtered(session, actor, filters)
        if number is not None:
            stmt = stmt.where(Ticket.number == number)
        page = shape.select(ordering.ordered(stmt, sort, cursor).limit(limit + 1))
        if key is not None:
            if len(_FIRST_PAGES) >= FIRST_PAGES_MAX:
                _FIRST_PAGES.clear()
            _FIRST_PAGES[key] = page
    rows = shape.build(session.execute(page))
    items = rows[:limit]
    more = len(rows) > limit and bool(items)
    return Page(items, ordering.cursor_after(sort, items[-1]) if more else None, filters)


# First pages of the views agents keep open ("My open", "All open", the default list) are
# built once per shape: building the statement cost about as much as sending it. A built
# statement holds no session, org or row data; the tenant gate adds its criteria when it
# is executed, as for any other statement. Filters with open-ended values (search, dates,
# requester, an assignee by email) and later pages (cursor values) are built every time.
FIRST_PAGES_MAX = 512
_FIRST_PAGES: dict[tuple[object, ...], Select[Any]] = {}


def list_rows(session: Session, actor: Membership, numbers: list[int]) -> list[ListRow]:
    """These tickets as list rows, by number: the rows a page re-renders after a change."""
    stmt = filtered(session, actor, TicketFilter()).where(Ticket.number.in_(numbers))
    rows = session.execute(ticket_rows.select_list_rows(stmt.order_by(Ticket.number)))
    return ticket_rows.to_list_rows(rows)


def _first_page_key(
    actor: Membership, f: TicketFilter, limit: int, shape: Shape[R]
) -> tuple[object, ...] | None:
    """What `filtered` reads to build a first page, or None when it is not worth keeping."""
    if f.q or f.requester or f.dates or f.assignee not in (None, "me", "unassigned"):
        return None
    return (actor.is_staff, actor.user_id, f.status, f.priority, f.assignee, f.tag, f.sla,
            f.sort, limit, shape.name)  # fmt: skip


def _number_query(q: str | None) -> int | None:
    """ "#123" (or a bare number) looks a ticket up by its number."""
    if q is None:
        return None
    return positive_int(q[1:] if q.startswith("#") else q)


def _search_page(
    session: Session,
    actor: Membership,
    stmt: Select[Ticket],
    filters: TicketFilter,
    cursor: str | None,
    limit: int,
    shape: Shape[R],
) -> Page[R]:
    text = filters.q or ""
    if not search.is_searchable(session, text):
        message = "search for at least one word that is not a very common one (like 'the')"
        raise ValidationError({"q": message})
    offset = decode_search_cursor(cursor) if cursor else 0
    query = search.ticket_query(text)
    vector = Ticket.search_all if can_see_internal(actor) else Ticket.search_public
    # Rank only the most recently active matches: ranking every match of a common word
    # reads and scores them all (O(matches)); this stays O(SEARCH_DEPTH_MAX). The
    # candidates carry the subject's vector out of the one scan, and the rank is computed
    # above its LIMIT (at most SEARCH_DEPTH_MAX times), not by looking each one up again.
    # The rank reads the subject alone: the whole vector is mostly stored out of line, and
    # reading it was half of a search's time (decision 0013). Ties, body matches among
    # them, go to the most recently active.
    candidates = (
        stmt.where(vector.op("@@")(query))
        .with_only_columns(Ticket.id, Ticket.search_subject, Ticket.updated_at, Ticket.number)
        .order_by(Ticket.updated_at.desc(), Ticket.number.desc())
        .limit(SEARCH_DEPTH_MAX)
        .subquery()
    )
    # Rank ids only, then load the one page of tickets (with their people) by id: joining
    # requester and assignee before the top-N sort would look users up for every candidate.
    found = candidates.c
    rank = func.ts_rank_cd(found.search_subject, query).label("rank")
    top = (
        select(found.id, rank, found.updated_at, found.number)
        .order_by(rank.desc(), found.updated_at.desc(), found.number.desc())
        .offset(offset)
        .limit(limit + 1)
        .subquery()
    )
    ranked = shape.select(select(Ticket).join(top, top.c.id == Ticket.id)).order_by(
        top.c.rank.desc(), top.c.updated_at.desc(), top.c.number.desc()
    )
    rows = shape.build(session.execute(ranked))
    end = offset + limit
    more = len(rows) > limit and end < SEARCH_DEPTH_MAX
    return Page(rows[:limit], ordering.encode(["rank", end]) if more else None, filters)


def filtered(session: Session, actor: Membership, filters: TicketFilter) -> Select[Ticket]:
    """The list's WHERE clauses for these filters (no order, no search ranking)."""
    stmt: Select[Ticket] = select(Ticket)
    if not actor.is_staff:
        stmt = stmt.where(Ticket.requester_id == actor.user_id)
    if filters.status == ALL_OPEN:
        stmt = stmt.where(Ticket.status.in_(OPEN_STATUSES))
    elif filters.status:
        stmt = stmt.where(Ticket.status == filters.status)
    if filters.priority:
        stmt = stmt.where(Ticket.priority == filters.priority)
    if filters.assignee:
        stmt = stmt.where(_assignee_clause(session, actor, filters.assignee))  # type: ignore[arg-type]
    if filters.tag:
        stmt = stmt.where(Ticket.tags.contains([filters.tag]))  # GIN: tags @> ARRAY[tag]
    if filters.sla == SLA_NONE:
        stmt = stmt.where(Ticket.sla_state.is_(None))
    elif filters.sla:
        stmt = stmt.where(Ticket.sla_state == filters.sla)
    if filters.sort == "due":  # only tickets with an unmet SLA target have a due time
        stmt = stmt.where(Ticket.sla_due_at.is_not(None))
    for key, day in filters.dates.items():
        column = Ticket.created_at if key.startswith("created") else Ticket.updated_at
        start = datetime.combine(day, time.min, tzinfo=UTC)  # whole days, UTC, inclusive
        if key.endswith("_after"):
            stmt = stmt.where(column >= start)
        else:
            stmt = stmt.where(column < start + timedelta(days=1))
    if filters.requester:
        requester_id = select(User.id).where(User.email == filters.requester).scalar_subquery()
        stmt = stmt.where(Ticket.requester_id == requester_id)
    return stmt


def conversation(session: Session, actor: Membership, ticket: Ticket) -> list[CommentRow]:
    """The ticket's comments in order; internal notes only for staff."""
    stmt = select(Comment).where(Comment.ticket_id == ticket.id)
    if not can_see_internal(actor):
        stmt = stmt.where(Comment.internal.is_(False))
    stmt = thread_rows.select_rows(stmt).order_by(Comment.created_at, Comment.id)
    return thread_rows.to_rows(session.execute(stmt))


def history(session: Session, ticket: Ticket) -> list[TicketEvent]:
    """Field changes on the ticket, oldest first."""
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id)
    return list(session.scalars(stmt.order_by(TicketEvent.created_at, TicketEvent.id)).unique())


def requester_tickets(session: Session, ticket: Ticket, limit: int = 5) -> list[TicketRow]:
    """The requester's other tickets in this org, most recently active first (staff view)."""
    stmt = (
        select(Ticket)
        .where(Ticket.requester_id == ticket.requester_id, Ticket.id != ticket.id)
        .order_by(Ticket.updated_at.desc(), Ticket.number.desc())
        .limit(limit)
    )
    return ticket_rows.to_rows(session.execute(ticket_rows.select_rows(stmt)))
