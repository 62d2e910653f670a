"""Reads through the ORM tenant gate (helpdesk/tenancy.py) against real PostgreSQL.

Two orgs hold rows with the same ticket numbers (alpha #1-#2, beta #1-#3), with comments,
field-change events, memberships and API tokens on both sides. Every check compares what a
scoped session sees with the truth read through `unscoped`, so a leak of a single beta row
shows up, and so does a gate that hides too much.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete, exists, func, select, text, update
from sqlalchemy.orm import (
    Session,
    aliased,
    joinedload,
    registry,
    relationship,
    selectinload,
)

from helpdesk.db import Base
from helpdesk.models import (
    ApiToken,
    Comment,
    Membership,
    Organization,
    Ticket,
    TicketEvent,
    User,
)
from helpdesk.tenancy import (
    OrgScoped,
    TenancyError,
    current_org_id,
    tenant_scope,
    unscoped,
)

# --- the scoped set is complete --------------------------------------------------------
from tests.tenancy.gate_world import SCOPED_MODELS, Data, counts, ticket_fields, truth

# Tables that carry an org_id but cannot be OrgScoped, each with the reason. Code reading
# them filters by org explicitly; a new entry needs the same justification.
NOT_SCOPED_WITH_ORG = {
    # Inbound mail is stored before its org is known (threading decides it), so org_id
    # is NULL for mail that matched nothing; only admin pages read it, by org.
    "inbound_messages",
}


def test_every_table_with_an_org_id_is_org_scoped() -> None:
    mapped = {m.local_table.name: m.class_ for m in Base.registry.mappers}
    with_org = {t.name for t in Base.metadata.sorted_tables if "org_id" in t.c}
    assert {m.__tablename__ for m in SCOPED_MODELS} <= with_org
    unguarded = sorted(
        n for n in with_org if not issubclass(mapped[n], OrgScoped) and n not in NOT_SCOPED_WITH_ORG
    )
    assert unguarded == [], f"tables with org_id whose model is not OrgScoped: {unguarded}"
    assert all(not issubclass(mapped[n], OrgScoped) for n in NOT_SCOPED_WITH_ORG)


# --- no tenant: fail closed --------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m.__name__)
def test_select_without_tenant_raises(fresh: Session, data: Data, model: type[Any]) -> None:
    with pytest.raises(TenancyError):
        fresh.scalars(select(model)).all()


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(lambda: select(func.count()).select_from(Ticket), id="count-select-from"),
        pytest.param(lambda: select(func.count(Comment.id)), id="count-column"),
        pytest.param(lambda: select(Ticket.subject), id="column-only"),
        pytest.param(
            lambda: select(User).join(Membership, Membership.user_id == User.id), id="join"
        ),
        pytest.param(
            lambda: select(User).where(exists().where(Ticket.requester_id == User.id)),
            id="exists-subquery",
        ),
        pytest.param(lambda: select(Ticket.__table__), id="core-table"),
    ],
)
def test_statements_touching_org_tables_without_tenant_raise(
    fresh: Session, data: Data, statement: Callable[[], Any]
) -> None:
    with pytest.raises(TenancyError):
        fresh.execute(statement()).all()


def test_session_get_without_tenant_raises(fresh: Session, data: Data) -> None:
    with pytest.raises(TenancyError):
        fresh.get(Ticket, data.alpha_ticket_ids[0])


def test_bulk_update_and_delete_without_tenant_raise_and_change_nothing(
    fresh: Session, data: Data
) -> None:
    before_fields, before_counts = ticket_fields(fresh), counts(fresh)
    with pytest.raises(TenancyError):
        fresh.execute(update(Ticket).values(priority="urgent"))
    fresh.rollback()
    with pytest.raises(TenancyError):
        fresh.execute(delete(Comment))
    fresh.rollback()
    with pytest.raises(TenancyError):
        fresh.execute(update(Ticket.__table__).values(priority="urgent"))
    fresh.rollback()
    assert ticket_fields(fresh) == before_fields
    assert counts(fresh) == before_counts


def test_models_that_are_not_org_data_need_no_tenant(fresh: Session, data: Data) -> None:
    assert len(fresh.scalars(select(Organization)).all()) == 2
    assert "agent@beta.test" in fresh.scalars(select(User.email)).all()


# --- inside one org's scope ----------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m.__name__)
def test_scoped_select_sees_exactly_the_current_org(
    fresh: Session, data: Data, model: type[Any]
) -> None:
    expected = truth(fresh, model)
    assert expected.get(data.alpha) and expected.get(data.beta), "both orgs need rows"
    with tenant_scope(fresh, data.alpha):
        seen = {row.id for row in fresh.scalars(select(model)).unique()}
        ids_only = set(fresh.scalars(select(model.id)))
        counted = fresh.scalar(select(func.count()).select_from(model))
    assert seen == ids_only == expected[data.alpha]
    assert counted == len(expected[data.alpha])


def test_same_ticket_numbers_resolve_to_the_current_org(fresh: Session, data: Data) -> None:
    with tenant_scope(fresh, data.beta):
        beta_three = fresh.scalar(select(Ticket).where(Ticket.number == 3))
        assert beta_three is not None and beta_three.subject == "beta ticket 3"
    fresh.expunge_all()
    with tenant_scope(fresh, data.alpha):
        for number in (1, 2):
            found = fresh.scalars(select(Ticket).where(Ticket.number == number)).all()
            assert [(t.org_id, t.subject) for t in found] == [
                (data.alpha, f"alpha ticket {number}")
            ]
        assert fresh.scalar(select(Ticket).where(Ticket.number == 3)) is None
        subjects = sorted(fresh.scalars(select(Ticket.subject)))
        assert subjects == ["alpha ticket 1", "alpha ticket 2"]
        assert fresh.scalar(select(func.count(Ticket.id))) == 2
        assert fresh.scalar(select(func.max(Ticket.number))) == 2
        by_id = fresh.scalars(select(Ticket).where(Ticket.id.in_(data.beta_ticket_ids))).all()
        assert by_id == []


def test_scoped_joins_and_subqueries_see_only_the_current_org(fresh: Session, data: Data) -> None:
    alpha_emails = {"admin@alpha.test", "agent@alpha.test", "requester@alpha.test"}
    with tenant_scope(fresh, data.alpha):
        users = fresh.scalars(
            select(User.email).join(Membership, Membership.user_id == User.id)
        ).all()
        assert sorted(users) == sorted(alpha_emails)

        pairs = fresh.execute(
            select(Ticket.org_id, Comment.org_id).join(Comment, Comment.ticket_id == Ticket.id)
        ).all()
        assert pairs and set(pairs) == {(data.alpha, data.alpha)}

        # Beta's comments would join to beta's tickets: an unscoped side would show them.
        from_comments = fresh.execute(
            select(Comment.id, Ticket.number).join(Ticket, Ticket.id == Comment.ticket_id)
        ).all()
        assert {cid for cid, _ in from_comments} == truth(fresh, Comment)[data.alpha]

        outer = fresh.execute(
            select(User.email, Ticket.number)
            .outerjoin(Ticket, Ticket.requester_id == User.id)
            .where(User.email == "requester@beta.test")
        ).all()
        assert outer == [("requester@beta.test", None)]

        other = aliased(Ticket)
        assert sorted(fresh.scalars(select(other.subject))) == ["alpha ticket 1", "alpha ticket 2"]

        with_tickets = fresh.scalars(
            select(User.email).where(exists().where(Ticket.requester_id == User.id))
        ).all()
        assert with_tickets == ["requester@alpha.test"]
        in_subquery = fresh.scalars(
            select(User.email).where(User.id.in_(select(Ticket.requester_id)))
        ).all()
        assert in_subquery == ["requester@alpha.test"]

        cte = select(Ticket.subject).cte()
        assert sorted(fresh.scalars(select(cte.c.subject))) == ["alpha ticket 1", "alpha ticket 2"]
        event_fields = fresh.execute(
            select(TicketEvent.org_id, Ticket.number).join(
                Ticket, Ticket.id == TicketEvent.ticket_id
            )
        ).all()
        assert event_fields == [(data.alpha, 1)]


def test_scoped_session_get_returns_only_current_org_rows(fresh: Session, data: Data) -> None:
    beta_comments = truth(fresh, Comment)[data.beta]
    beta_tokens = truth(fresh, ApiToken)[data.beta]
    beta_members = truth(fresh, Membership)[data.beta]
    beta_events = truth(fresh, TicketEvent)[data.beta]
    fresh.expunge_all()
    with tenant_scope(fresh, data.alpha):
        own = fresh.get(Ticket, data.alpha_ticket_ids[0])
        assert own is not None and own.org_id == data.alpha
        for ticket_id in data.beta_ticket_ids:
            assert fresh.get(Ticket, ticket_id) is None
        for model, ids in (
            (Comment, beta_comments),
            (ApiToken, beta_tokens),
            (Membership, beta_members),
            (TicketEvent, beta_events),
        ):
            for row_id in ids:
                assert fresh.get(model, row_id) is None, f"{model.__name__} {row_id} leaked"


def test_scoped_session_get_ignores_other_org_rows_already_in_the_session(
    fresh: Session, data: Data
) -> None:
    """A job looping over orgs reuses one session: beta's rows stay in its identity map."""
    with tenant_scope(fresh, data.beta):
        beta_tickets = fresh.scalars(select(Ticket)).all()  # noqa: F841 - kept alive on purpose
    with tenant_scope(fresh, data.alpha):
        leaked = [fresh.get(Ticket, ticket_id) for ticket_id in data.beta_ticket_ids]
    assert leaked == [None, None, None], "session.get returned beta rows inside alpha's scope"


@pytest.fixture
def relationship_models() -> Iterator[tuple[Any, Any]]:
    """Ticket -> comments as a relationship (the app maps none between org tables yet).

    Mapped on the same tables in a throwaway registry so relationship loads go through the
    gate exactly as they would for an app model.
    """
    reg = registry()

    class TicketRow(OrgScoped):
        pass

    class CommentRow(OrgScoped):
        pass

    comments = Base.metadata.tables["comments"]
    reg.map_imperatively(CommentRow, comments)
    reg.map_imperatively(
        TicketRow,
        Base.metadata.tables["tickets"],
        properties={"comments": relationship(CommentRow, viewonly=True, order_by=comments.c.id)},
    )
    yield TicketRow, CommentRow
    reg.dispose()


@pytest.mark.parametrize("loader", ["lazy", "selectin", "joined"])
def test_scoped_relationship_loads_see_only_the_current_org(
    app: Flask,
    session: Session,
    data: Data,
    world: dict[str, Any],
    relationship_models: tuple[Any, Any],
    loader: str,
) -> None:
    ticket_row, _comment_row = relationship_models
    alpha_ticket = data.alpha_ticket_ids[0]
    # A row stamped with beta but pointing at alpha's ticket: only the org filter hides it.
    with unscoped(session):
        session.execute(
            text(
                "INSERT INTO comments (org_id, ticket_id, author_id, body_md, body_html,"
                " internal, channel, created_at)"
                " VALUES (:org, :ticket, :author, 'stray', 'stray', false, 'web', now())"
            ),
            {"org": data.beta, "ticket": alpha_ticket, "author": world["beta"]["agent"].user_id},
        )
        session.commit()
    s = app.extensions["helpdesk.sessionmaker"]()
    try:
        stmt = select(ticket_row).where(ticket_row.id == alpha_ticket)
        if loader == "selectin":
            stmt = stmt.options(selectinload(ticket_row.comments))
        elif loader == "joined":
            stmt = stmt.options(joinedload(ticket_row.comments))
        with tenant_scope(s, data.alpha):
            ticket = s.scalars(stmt).unique().one()
            loaded = [(c.org_id, c.body_md) for c in ticket.comments]
        assert loaded, "alpha's own comment must load"
        assert {org for org, _ in loaded} == {data.alpha}, loaded
        with unscoped(s):
            s.expunge_all()
            everything = s.scalars(select(ticket_row).where(ticket_row.id == alpha_ticket)).one()
            assert "stray" in [c.body_md for c in everything.comments]
    finally:
        s.close()


def test_scoped_bulk_update_and_delete_touch_only_the_current_org(
    fresh: Session, data: Data
) -> None:
    before = ticket_fields(fresh)
    before_counts = {m: truth(fresh, m) for m in (Comment, TicketEvent)}
    with tenant_scope(fresh, data.alpha):
        result = fresh.execute(update(Ticket).values(priority="urgent"))
        assert result.rowcount == 2  # type: ignore[attr-defined]
        beta_id = data.beta_ticket_ids[0]
        aimed = fresh.execute(update(Ticket).where(Ticket.id == beta_id).values(subject="owned"))
        assert aimed.rowcount == 0  # type: ignore[attr-defined]
        fresh.execute(delete(TicketEvent))
        beta_comment = min(before_counts[Comment][data.beta])
        gone = fresh.execute(delete(Comment).where(Comment.id == beta_comment))
        assert gone.rowcount == 0  # type: ignore[attr-defined]
        fresh.commit()
    after = ticket_fields(fresh)
    for ticket_id, (org_id, number, subject, priority) in before.items():
        if org_id == data.alpha:
            assert after[ticket_id] == (org_id, number, subject, "urgent")
        else:
            assert after[ticket_id] == (org_id, number, subject, priority), ticket_id
    assert data.alpha not in truth(fresh, TicketEvent)
    assert truth(fresh, TicketEvent)[data.beta] == before_counts[TicketEvent][data.beta]
    assert truth(fresh, Comment) == before_counts[Comment]


@pytest.mark.parametrize("kind", ["select", "update", "delete"])
def test_core_statements_on_org_tables_in_scope_never_reach_another_org(
    fresh: Session, data: Data, kind: str
) -> None:
    """Filtered or refused, never silently across orgs: the gate fails closed."""
    tickets_table = Ticket.__table__
    events_table = TicketEvent.__table__
    before_fields, before_events = ticket_fields(fresh), truth(fresh, TicketEvent)
    seen_orgs: set[int] = set()
    with tenant_scope(fresh, data.alpha):
        try:
            if kind == "select":
                seen_orgs = {row.org_id for row in fresh.execute(select(tickets_table))}
            elif kind == "update":
                fresh.execute(update(tickets_table).values(priority="urgent"))
                fresh.commit()
            else:
                fresh.execute(delete(events_table))
                fresh.commit()
        except TenancyError:
            fresh.rollback()
    assert data.beta not in seen_orgs, "a Core select in alpha's scope returned beta's tickets"
    after_fields = ticket_fields(fresh)
    beta_before = {k: v for k, v in before_fields.items() if v[0] == data.beta}
    beta_after = {k: v for k, v in after_fields.items() if v[0] == data.beta}
    assert beta_after == beta_before, "a Core update in alpha's scope changed beta's tickets"
    assert truth(fresh, TicketEvent).get(data.beta) == before_events[data.beta], (
        "a Core delete in alpha's scope removed beta's events"
    )


# --- unscoped ------------------------------------------------------------------------------


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda m: m.__name__)
def test_unscoped_sees_both_orgs(fresh: Session, data: Data, model: type[Any]) -> None:
    with unscoped(fresh):
        orgs_seen = set(fresh.scalars(select(model.org_id)))
    assert orgs_seen == {data.alpha, data.beta}


def test_unscoped_inside_a_scope_then_back(fresh: Session, data: Data) -> None:
    with tenant_scope(fresh, data.alpha):
        with unscoped(fresh):
            assert fresh.scalar(select(func.count()).select_from(Ticket)) == 5
        assert fresh.scalar(select(func.count()).select_from(Ticket)) == 2
        assert current_org_id(fresh) == data.alpha
    assert current_org_id(fresh) is None
    with pytest.raises(TenancyError):
        fresh.scalar(select(func.count()).select_from(Ticket))
