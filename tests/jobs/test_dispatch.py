"""Dispatch: who gets a delivery for each event kind, preferences, webhooks, idempotency."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import update
from sqlalchemy.orm import Session

from helpdesk.models import EventKind, OutboxEvent, Role, Ticket
from helpdesk.services import dispatch as dispatching
from helpdesk.services import outbox, tickets
from helpdesk.tenancy import tenant_scope
from jobs import notify
from tests.factories import make_member, make_ticket
from tests.jobs.notify_helpers import (  # noqa: F401 - fixtures
    _app_context,
    _notify_app,
    _receiver,
    _receiver_server,
    _smtp,
    _smtp_server,
    add_endpoint,
    all_deliveries,
    by_target,
    events_of,
    queued,
    set_preference,
    user_target,
)


def _dispatch_last(session: Session, org_id: int, kind: str | None = None) -> dict[str, str]:
    """Dispatch the newest event (of this kind); return its deliveries by target."""
    event = events_of(session, kind)[-1]
    assert event.org_id == org_id
    with tenant_scope(session, org_id):
        dispatching.dispatch_event(session, session.get(OutboxEvent, event.id))
    return by_target(all_deliveries(session, event_id=event.id))


def _assigned_ticket(session: Session, side: dict[str, Any]) -> Ticket:
    """A ticket opened by the agent for the requester and assigned to the agent."""
    ticket = make_ticket(session, side["org"], side["agent"], side["requester"].user)
    with tenant_scope(session, side["org"].id):
        tickets.update_fields(
            session, side["admin"], ticket.number, {"assignee_email": side["agent"].user.email}
        )
    return ticket


def _emit(session: Session, side: dict[str, Any], ticket: Ticket, kind: EventKind, **payload: Any):
    with tenant_scope(session, side["org"].id):
        outbox.emit(session, side["org"].id, kind, ticket=ticket, payload=payload)
        session.commit()


def test_new_ticket_goes_to_the_requester_not_the_acting_agent(session: Session, world) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    assert _dispatch_last(session, alpha["org"].id) == {user_target(alpha["requester"]): "pending"}


def test_requester_gets_the_acknowledgement_of_their_own_ticket(session: Session, world) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["requester"])
    assert _dispatch_last(session, alpha["org"].id) == {user_target(alpha["requester"]): "pending"}


def test_assignment_and_status_change_notify_the_assignee(session: Session, world) -> None:
    alpha = world["alpha"]
    ticket = _assigned_ticket(session, alpha)
    assert _dispatch_last(session, alpha["org"].id) == {user_target(alpha["agent"]): "pending"}
    with tenant_scope(session, alpha["org"].id):
        tickets.update_fields(session, alpha["admin"], ticket.number, {"status": "pending"})
    assert _dispatch_last(session, alpha["org"].id) == {user_target(alpha["agent"]): "pending"}
    with tenant_scope(session, alpha["org"].id):  # the assignee's own change: nobody to tell
        tickets.update_fields(session, alpha["agent"], ticket.number, {"status": "open"})
    assert _dispatch_last(session, alpha["org"].id) == {}


def test_comments_public_and_internal(session: Session, world) -> None:
    alpha = world["alpha"]
    ticket = _assigned_ticket(session, alpha)
    requester, agent = user_target(alpha["requester"]), user_target(alpha["agent"])
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["admin"], ticket.number, "Public", internal=False)
    assert _dispatch_last(session, alpha["org"].id, "comment.created") == {
        requester: "pending",
        agent: "pending",
    }
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["admin"], ticket.number, "Secret", internal=True)
    assert _dispatch_last(session, alpha["org"].id) == {agent: "pending"}
    with tenant_scope(session, alpha["org"].id):
        tickets.add_comment(session, alpha["requester"], ticket.number, "Thanks")
    assert _dispatch_last(session, alpha["org"].id) == {agent: "pending"}


def test_sla_alerts_go_to_the_assignee_or_else_the_admins(session: Session, world) -> None:
    alpha, beta = world["alpha"], world["beta"]
    second_admin = make_member(session, alpha["org"], Role.ADMIN)
    unassigned = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    make_ticket(session, beta["org"], beta["agent"], beta["requester"].user)
    _emit(session, alpha, unassigned, EventKind.SLA_WARNING, target="first_response", level="75")
    admins = {user_target(alpha["admin"]): "pending", user_target(second_admin): "pending"}
    assert _dispatch_last(session, alpha["org"].id) == admins  # beta's admin is not told
    assigned = _assigned_ticket(session, alpha)
    _emit(session, alpha, assigned, EventKind.SLA_BREACHED, target="resolution", level="breach")
    assert _dispatch_last(session, alpha["org"].id) == {user_target(alpha["agent"]): "pending"}
    _emit(session, alpha, assigned, EventKind.ATTACHMENT_INFECTED, attachment_id=1)
    assert _dispatch_last(session, alpha["org"].id) == admins


def test_preferences_subscribe_digest_or_silence(session: Session, world) -> None:
    alpha = world["alpha"]
    watcher = make_member(session, alpha["org"])
    set_preference(session, alpha["org"], watcher.user, ["ticket.created"], "digest")
    set_preference(session, alpha["org"], alpha["admin"].user, ["ticket.created"], "off")
    set_preference(session, alpha["org"], alpha["agent"].user, ["sla.breached"], "immediate")
    ticket = _assigned_ticket(session, alpha)  # the assignee's row does not list ticket.updated
    assert _dispatch_last(session, alpha["org"].id) == {}
    first_event = events_of(session, "ticket.created")[0]
    with tenant_scope(session, alpha["org"].id):
        dispatching.dispatch_event(session, session.get(OutboxEvent, first_event.id))
    assert by_target(all_deliveries(session, event_id=first_event.id)) == {
        user_target(alpha["requester"]): "pending",
        user_target(watcher): "digest",
    }
    _emit(session, alpha, ticket, EventKind.SLA_BREACHED, target="resolution", level="breach")
    assert _dispatch_last(session, alpha["org"].id) == {user_target(alpha["agent"]): "pending"}


def test_webhooks_by_subscription_and_org(session: Session, world, receiver) -> None:
    alpha, beta = world["alpha"], world["beta"]
    everything = add_endpoint(session, alpha["org"], receiver.url("/all"), ["*"])
    sla_only = add_endpoint(session, alpha["org"], receiver.url("/sla"), ["sla.warning"])
    add_endpoint(session, beta["org"], receiver.url("/beta"), ["*"])
    off = add_endpoint(session, alpha["org"], receiver.url("/off"), ["*"])
    with tenant_scope(session, alpha["org"].id):
        session.execute(update(type(off)).where(type(off).id == off.id).values(active=False))
        session.commit()
    ticket = make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    hooks = {t: s for t, s in _dispatch_last(session, alpha["org"].id).items() if "webhook" in t}
    assert hooks == {f"webhook:{everything.id}": "pending"}
    _emit(session, alpha, ticket, EventKind.SLA_WARNING, target="first_response", level="75")
    hooks = {t: s for t, s in _dispatch_last(session, alpha["org"].id).items() if "webhook" in t}
    assert hooks == {f"webhook:{everything.id}": "pending", f"webhook:{sla_only.id}": "pending"}


def test_dispatch_is_idempotent(app: Flask, session: Session, world) -> None:
    alpha = world["alpha"]
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    event = events_of(session)[-1]
    app.extensions["helpdesk.redis"].flushdb()
    notify.dispatch(alpha["org"].id, event.id)
    notify.dispatch(alpha["org"].id, event.id)  # already dispatched: nothing happens
    first = all_deliveries(session, event_id=event.id)
    assert len(first) == 1 and first[0].target == user_target(alpha["requester"])
    assert queued(app) == [("jobs.notify.deliver", (alpha["org"].id, first[0].id))]
    with tenant_scope(session, alpha["org"].id):  # even if dispatched_at were lost
        session.execute(
            update(OutboxEvent).where(OutboxEvent.id == event.id).values(dispatched_at=None)
        )
        session.commit()
        again = dispatching.dispatch_event(session, session.get(OutboxEvent, event.id))
    assert again == []  # the unique (event, channel, target) kept it to one row
    assert [d.id for d in all_deliveries(session, event_id=event.id)] == [first[0].id]
    assert events_of(session)[-1].dispatched_at is not None


def test_dispatch_of_an_unknown_event_id_does_nothing(session: Session, world) -> None:
    alpha, beta = world["alpha"], world["beta"]
    make_ticket(session, beta["org"], beta["agent"], beta["requester"].user)
    beta_event = events_of(session)[-1]
    notify.dispatch(alpha["org"].id, beta_event.id)  # another org's event is invisible here
    assert all_deliveries(session) == []
    assert events_of(session)[-1].dispatched_at is None


def test_preferences_without_watch_all_only_filter_what_concerns_the_member(
    session: Session, world
) -> None:
    """A saved row that does not watch the org keeps the defaults' reach, filtered by kind."""
    alpha = world["alpha"]
    bystander = make_member(session, alpha["org"])
    set_preference(session, alpha["org"], bystander.user, ["ticket.created"], "immediate",
                   watch_all=False)  # fmt: skip
    set_preference(session, alpha["org"], alpha["agent"].user, ["ticket.updated"], "digest",
                   watch_all=False)  # fmt: skip
    make_ticket(session, alpha["org"], alpha["admin"], alpha["requester"].user)
    created = events_of(session, "ticket.created")[-1]
    with tenant_scope(session, alpha["org"].id):
        dispatching.dispatch_event(session, session.get(OutboxEvent, created.id))
    targets = by_target(all_deliveries(session, event_id=created.id))
    assert user_target(bystander) not in targets  # not assigned: not their business
    _assigned_ticket(session, alpha)
    assert _dispatch_last(session, alpha["org"].id) == {user_target(alpha["agent"]): "digest"}
