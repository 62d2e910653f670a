"""Writes through the ORM tenant gate: rows are stamped with, and bound to, the current org."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import (
    Session,
)

from helpdesk.models import (
    Comment,
    Ticket,
)
from helpdesk.services import orgs
from helpdesk.tenancy import (
    TenancyError,
    current_org_id,
    set_tenant,
    tenant_scope,
    unscoped,
)

# --- writes: before_flush stamps and refuses -----------------------------------------------
from tests.tenancy.gate_world import Data, counts, new_comment, new_ticket, truth


@pytest.mark.parametrize("model", ["Ticket", "Comment"])
def test_new_row_for_another_org_is_refused(fresh: Session, data: Data, model: str) -> None:
    before = counts(fresh)
    with tenant_scope(fresh, data.alpha):
        row: Any = (
            new_ticket(data.beta, 100, data.alpha_requester_user)
            if model == "Ticket"
            else new_comment(data.beta, data.beta_ticket_ids[0], data.alpha_agent_user)
        )
        fresh.add(row)
        with pytest.raises(TenancyError):
            fresh.flush()
        fresh.rollback()
    assert counts(fresh) == before


@pytest.mark.parametrize("model", ["Ticket", "Comment"])
def test_new_row_without_org_gets_the_current_org(fresh: Session, data: Data, model: str) -> None:
    with tenant_scope(fresh, data.alpha):
        row: Any = (
            new_ticket(None, 100, data.alpha_requester_user)
            if model == "Ticket"
            else new_comment(None, data.alpha_ticket_ids[0], data.alpha_agent_user)
        )
        fresh.add(row)
        fresh.commit()
    assert row.org_id == data.alpha
    assert row.id in truth(fresh, type(row))[data.alpha]


@pytest.mark.parametrize("model", ["Ticket", "Comment"])
@pytest.mark.parametrize("org", ["none", "explicit"])
def test_new_row_with_no_tenant_is_refused(
    fresh: Session, data: Data, model: str, org: str
) -> None:
    before = counts(fresh)
    org_id = None if org == "none" else data.alpha
    row: Any = (
        new_ticket(org_id, 100, data.alpha_requester_user)
        if model == "Ticket"
        else new_comment(org_id, data.alpha_ticket_ids[0], data.alpha_agent_user)
    )
    fresh.add(row)
    with pytest.raises(TenancyError):
        fresh.flush()
    fresh.rollback()
    assert counts(fresh) == before


def test_unscoped_write_needs_an_explicit_org(fresh: Session, data: Data) -> None:
    with unscoped(fresh):
        fresh.add(new_ticket(None, 100, data.alpha_requester_user))
        with pytest.raises(TenancyError):
            fresh.flush()
        fresh.rollback()
        ticket = new_ticket(data.beta, 100, data.alpha_requester_user)
        fresh.add(ticket)
        fresh.commit()
    assert ticket.id in truth(fresh, Ticket)[data.beta]


@pytest.mark.parametrize("mode", ["scoped", "unscoped"])
@pytest.mark.parametrize("model", ["Ticket", "Comment"])
def test_changing_org_id_of_an_existing_row_is_refused(
    fresh: Session, data: Data, mode: str, model: str
) -> None:
    before_tickets, before_comments = truth(fresh, Ticket), truth(fresh, Comment)
    with tenant_scope(fresh, data.alpha):
        row: Any = (
            fresh.get(Ticket, data.alpha_ticket_ids[0])
            if model == "Ticket"
            else fresh.scalars(select(Comment)).first()
        )
        assert row is not None and row.org_id == data.alpha
        row.org_id = data.beta
        with pytest.raises(TenancyError):
            if mode == "unscoped":
                with unscoped(fresh):
                    fresh.flush()
            else:
                fresh.flush()
        fresh.rollback()
    assert truth(fresh, Ticket) == before_tickets
    assert truth(fresh, Comment) == before_comments


# --- switching tenants ----------------------------------------------------------------------


def test_set_tenant_refuses_a_session_scoped_to_another_org(fresh: Session, data: Data) -> None:
    set_tenant(fresh, data.alpha)
    set_tenant(fresh, data.alpha)  # the same org again is fine
    with pytest.raises(TenancyError):
        set_tenant(fresh, data.beta)
    assert current_org_id(fresh) == data.alpha
    assert sorted(fresh.scalars(select(Ticket.number))) == [1, 2]


def test_set_tenant_refuses_inside_another_orgs_tenant_scope(fresh: Session, data: Data) -> None:
    with tenant_scope(fresh, data.alpha):
        with pytest.raises(TenancyError):
            set_tenant(fresh, data.beta)
        assert current_org_id(fresh) == data.alpha
    assert current_org_id(fresh) is None


def test_entering_a_second_org_in_one_request_session_raises(
    fresh: Session, data: Data, world: dict[str, Any]
) -> None:
    """The web/API gate (enter_org) cannot be talked into a second org on the same session."""
    agent = world["alpha"]["agent"]
    assert orgs.enter_org(fresh, "alpha", agent.user_id) is not None
    with pytest.raises(TenancyError):
        orgs.enter_org(fresh, "beta", world["beta"]["agent"].user_id)
    assert current_org_id(fresh) == data.alpha
