"""The SLA hooks, driven through the ticket services with a frozen clock.

Due times on creation (24x7 and a business calendar), priority changes, pauses shifting due
times by the paused business time, first response, solving, reopening and closing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Organization, SlaPause, SlaPolicy, Ticket
from helpdesk.services import sla, tickets
from helpdesk.services.business_time import Calendar, add_business_seconds
from helpdesk.tenancy import tenant_scope
from tests.factories import make_ticket
from tests.jobs.conftest import T0, Clock, MakePolicy

BERLIN_OFFICE = {
    "timezone": "Europe/Berlin",
    "hours": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": [],
}
FRIDAY_4PM_BERLIN = datetime(2027, 1, 15, 15, 0, tzinfo=UTC)  # 16:00 local (UTC+1)
M = timedelta(minutes=1)


def fresh(session: Session, org: Organization, number: int) -> Ticket:
    """Reload a ticket from the database (nothing from the identity map)."""
    session.expire_all()
    with tenant_scope(session, org.id):
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        session.commit()
    return ticket


def update(session: Session, side: dict[str, Any], number: int, **changes: Any) -> None:
    with tenant_scope(session, side["org"].id):
        tickets.update_fields(session, side["agent"], number, changes)


def reply(session: Session, side: dict[str, Any], who: str, number: int, **kw: Any) -> None:
    with tenant_scope(session, side["org"].id):
        tickets.add_comment(session, side[who], number, f"{who} writes", **kw)


def pauses(
    session: Session, org: Organization, ticket: Ticket
) -> list[tuple[datetime, datetime | None]]:
    with tenant_scope(session, org.id):
        rows = session.execute(
            select(SlaPause.started_at, SlaPause.ended_at)
            .where(SlaPause.ticket_id == ticket.id)
            .order_by(SlaPause.started_at)
        )
        result = [(start, end) for start, end in rows]
        session.commit()
    return result


def test_no_policy_means_no_sla_but_facts_are_kept(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    sla_policy(beta["org"], "normal")  # the other org's policy must not apply to alpha
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    make_ticket(session, beta["org"], beta["agent"], beta["requester"].user)

    ticket = fresh(session, alpha["org"], 1)
    assert ticket.sla_state is None
    assert ticket.first_response_due_at is None
    assert ticket.resolution_due_at is None
    assert ticket.sla_due_at is None
    assert ticket.sla_next_check_at is None
    assert ticket.sla_paused_at is None
    assert fresh(session, beta["org"], 1).sla_state == "ok"

    clock.advance(minutes=5)
    reply(session, alpha, "agent", 1)
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.first_responded_at == clock.now  # a fact, kept for a later priority change
    assert ticket.sla_state is None
    assert ticket.sla_next_check_at is None


def test_due_times_on_creation_around_the_clock(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "high", 60, 480, warn_at_percent=[50], warn_before_minutes=[10])
    sla_policy(world["beta"]["org"], "high", 5, 10)
    make_ticket(session, alpha["org"], alpha["agent"], priority="high")

    ticket = fresh(session, alpha["org"], 1)
    assert ticket.created_at == T0
    assert ticket.first_response_due_at == T0 + 60 * M
    assert ticket.resolution_due_at == T0 + 480 * M
    assert ticket.sla_due_at == T0 + 60 * M
    assert ticket.sla_next_check_at == T0 + 30 * M  # 50 % of the first-response target
    assert ticket.sla_state == "ok"


def test_due_times_on_creation_in_business_hours(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    sla_policy(alpha["org"], "normal", 120, 960, [50], [30], calendar=BERLIN_OFFICE)
    holiday = {**BERLIN_OFFICE, "holidays": ["2027-01-18"]}
    sla_policy(beta["org"], "normal", 120, 960, [50], [30], calendar=holiday)
    clock.at(FRIDAY_4PM_BERLIN)
    make_ticket(session, alpha["org"], alpha["agent"])
    make_ticket(session, beta["org"], beta["agent"])

    ticket = fresh(session, alpha["org"], 1)
    # 60 min on Friday (16-17 h local), 60 on Monday: due Monday 10:00 local = 09:00 UTC.
    assert ticket.first_response_due_at == datetime(2027, 1, 18, 9, 0, tzinfo=UTC)
    # 16 h: 1 on Friday, 8 on Monday, 7 on Tuesday: Tuesday 16:00 local.
    assert ticket.resolution_due_at == datetime(2027, 1, 19, 15, 0, tzinfo=UTC)
    # 50 % (60 business minutes) ends with Friday's hours, at 17:00 local.
    assert ticket.sla_next_check_at == datetime(2027, 1, 15, 16, 0, tzinfo=UTC)

    on_holiday = fresh(session, beta["org"], 1)  # Monday is a holiday: everything a day later
    assert on_holiday.first_response_due_at == datetime(2027, 1, 19, 9, 0, tzinfo=UTC)
    assert on_holiday.resolution_due_at == datetime(2027, 1, 20, 15, 0, tzinfo=UTC)


def test_pause_and_resume_shift_due_times_by_paused_business_time(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 120, 960, [50], calendar=BERLIN_OFFICE)
    clock.at(FRIDAY_4PM_BERLIN)
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    before = fresh(session, alpha["org"], 1)
    old_first, old_resolution = before.first_response_due_at, before.resolution_due_at
    assert old_first is not None and old_resolution is not None

    paused_at = clock.advance(minutes=30)  # Friday 16:30 local
    update(session, alpha, 1, status="pending")
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.sla_paused_at == paused_at
    assert ticket.sla_next_check_at is None
    assert ticket.first_response_due_at == old_first  # moves only when the pause ends
    assert pauses(session, alpha["org"], ticket) == [(paused_at, None)]

    resumed_at = clock.at(datetime(2027, 1, 18, 9, 0, tzinfo=UTC))  # Monday 10:00 local
    reply(session, alpha, "requester", 1)  # a requester reply reopens a pending ticket
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.status == "open"
    assert ticket.sla_paused_at is None
    assert pauses(session, alpha["org"], ticket) == [(paused_at, resumed_at)]
    # Paused business time: 30 min on Friday + 60 on Monday morning = 90 min.
    cal = Calendar.from_json(**BERLIN_OFFICE)  # type: ignore[arg-type]
    assert ticket.first_response_due_at == add_business_seconds(cal, old_first, 90 * 60)
    assert ticket.first_response_due_at == datetime(2027, 1, 18, 10, 30, tzinfo=UTC)
    assert ticket.resolution_due_at == add_business_seconds(cal, old_resolution, 90 * 60)
    assert ticket.resolution_due_at == datetime(2027, 1, 20, 8, 30, tzinfo=UTC)
    # 30 min had run before the pause: the 50 % mark is 30 business minutes after resuming.
    assert ticket.sla_next_check_at == resumed_at + 30 * M


def test_pending_to_on_hold_is_one_pause(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    make_ticket(session, alpha["org"], alpha["agent"])
    started = clock.advance(minutes=10)
    update(session, alpha, 1, status="pending")
    clock.advance(minutes=10)
    update(session, alpha, 1, status="on_hold")
    ended = clock.advance(minutes=20)
    update(session, alpha, 1, status="open")

    ticket = fresh(session, alpha["org"], 1)
    assert pauses(session, alpha["org"], ticket) == [(started, ended)]
    assert ticket.first_response_due_at == T0 + (60 + 30) * M
    assert ticket.sla_next_check_at == T0 + (60 + 30) * M


def test_editing_the_policy_keeps_the_due_times_of_open_tickets(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    policy = sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50])
    make_ticket(session, alpha["org"], alpha["agent"])
    with tenant_scope(session, alpha["org"].id):
        loaded = session.get(SlaPolicy, policy.id)
        assert loaded is not None
        loaded.first_response_minutes, loaded.warn_at_percent = 30, [80]
        session.commit()
    clock.at(T0 + 10 * M)
    update(session, alpha, 1, status="pending")
    clock.at(T0 + 20 * M)
    update(session, alpha, 1, status="open")

    ticket = fresh(session, alpha["org"], 1)
    assert ticket.first_response_due_at == T0 + (60 + 10) * M  # the old promise, shifted
    # Warnings are walked back from the stored due time with the current policy:
    # 80 % of 30 min is 6 min before the due time.
    assert ticket.sla_next_check_at == T0 + (70 - 6) * M


def test_priority_change_recomputes_from_created_at_with_pauses(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    sla_policy(alpha["org"], "urgent", 15, 60)
    make_ticket(session, alpha["org"], alpha["agent"])
    clock.at(T0 + 5 * M)
    update(session, alpha, 1, status="pending")
    clock.at(T0 + 35 * M)
    update(session, alpha, 1, status="open")  # 30 min paused
    assert fresh(session, alpha["org"], 1).first_response_due_at == T0 + 90 * M

    clock.at(T0 + 40 * M)
    update(session, alpha, 1, priority="urgent")
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.first_response_due_at == T0 + (15 + 30) * M
    assert ticket.resolution_due_at == T0 + (60 + 30) * M
    assert ticket.sla_state == "ok"

    clock.at(T0 + 41 * M)
    update(session, alpha, 1, priority="low")  # no policy for low
    ticket = fresh(session, alpha["org"], 1)
    assert (ticket.first_response_due_at, ticket.resolution_due_at) == (None, None)
    assert (ticket.sla_due_at, ticket.sla_next_check_at, ticket.sla_state) == (None, None, None)

    clock.at(T0 + 43 * M)
    reply(session, alpha, "agent", 1)  # answered while no policy applied
    clock.at(T0 + 44 * M)
    update(session, alpha, 1, priority="normal")
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.first_responded_at == T0 + 43 * M
    assert ticket.first_response_due_at is None  # met stays met
    assert ticket.resolution_due_at == T0 + (240 + 30) * M
    assert ticket.sla_due_at == ticket.resolution_due_at


def test_priority_change_past_a_stricter_due_time_is_breached_at_once(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    sla_policy(alpha["org"], "urgent", 15, 60)
    make_ticket(session, alpha["org"], alpha["agent"])
    clock.at(T0 + 20 * M)
    update(session, alpha, 1, priority="urgent")

    ticket = fresh(session, alpha["org"], 1)
    assert ticket.sla_state == "breached"
    assert ticket.sla_next_check_at == T0 + 15 * M  # already due: the next sweep fires it


def test_first_response_is_the_first_public_staff_reply(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240, warn_at_percent=[50])
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)

    clock.at(T0 + 5 * M)
    reply(session, alpha, "requester", 1)
    clock.at(T0 + 6 * M)
    reply(session, alpha, "agent", 1, internal=True)
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.first_responded_at is None
    assert ticket.first_response_due_at == T0 + 60 * M

    answered = clock.at(T0 + 7 * M)
    reply(session, alpha, "admin", 1)
    clock.at(T0 + 8 * M)
    reply(session, alpha, "agent", 1)
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.first_responded_at == answered
    assert ticket.first_response_due_at is None
    assert ticket.resolution_due_at == T0 + 240 * M
    assert ticket.sla_due_at == T0 + 240 * M
    assert ticket.sla_next_check_at == T0 + 120 * M  # resolution's 50 %


def test_solving_stops_the_clock_and_reopening_resumes_it(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)
    solved = clock.at(T0 + 10 * M)
    update(session, alpha, 1, status="solved")
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.solved_at == solved
    assert (ticket.first_response_due_at, ticket.resolution_due_at) == (None, None)
    assert (ticket.sla_due_at, ticket.sla_next_check_at) == (None, None)
    assert ticket.sla_state == "ok"  # kept as history

    reopened = clock.at(T0 + 70 * M)
    reply(session, alpha, "requester", 1)  # a requester reply reopens a solved ticket
    ticket = fresh(session, alpha["org"], 1)
    assert ticket.status == "open"
    assert ticket.solved_at is None
    assert pauses(session, alpha["org"], ticket) == [(solved, reopened)]
    # The clocks resume where they stood: 60 solved minutes are added to both targets.
    assert ticket.first_response_due_at == T0 + 120 * M
    assert ticket.resolution_due_at == T0 + 300 * M
    assert ticket.sla_next_check_at == T0 + 120 * M


def test_solving_while_paused_ends_the_pause(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    make_ticket(session, alpha["org"], alpha["agent"])
    clock.at(T0 + 10 * M)
    update(session, alpha, 1, status="pending")
    clock.at(T0 + 20 * M)
    update(session, alpha, 1, status="solved")
    clock.at(T0 + 30 * M)
    update(session, alpha, 1, status="on_hold")  # reopened straight into a pause

    ticket = fresh(session, alpha["org"], 1)
    expected = [(T0 + 10 * M, T0 + 20 * M), (T0 + 20 * M, T0 + 30 * M), (T0 + 30 * M, None)]
    assert pauses(session, alpha["org"], ticket) == expected
    assert ticket.sla_paused_at == T0 + 30 * M
    assert ticket.sla_next_check_at is None
    assert ticket.first_response_due_at == T0 + (60 + 20) * M


def test_closed_is_final(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    sla_policy(alpha["org"], "normal", 60, 240)
    make_ticket(session, alpha["org"], alpha["agent"])
    closed = clock.at(T0 + 10 * M)
    update(session, alpha, 1, status="closed")
    for minutes, status in ((20, "open"), (30, "solved"), (40, "open"), (50, "pending")):
        clock.at(T0 + minutes * M)
        update(session, alpha, 1, status=status)

    ticket = fresh(session, alpha["org"], 1)
    assert ticket.solved_at == closed
    assert (ticket.first_response_due_at, ticket.resolution_due_at) == (None, None)
    assert ticket.sla_next_check_at is None
    assert ticket.sla_paused_at is None
    assert pauses(session, alpha["org"], ticket) == []


def test_invalid_stored_calendar_falls_back_to_around_the_clock(
    session: Session, world: dict[str, Any], clock: Clock, sla_policy: MakePolicy
) -> None:
    alpha = world["alpha"]
    broken = {"timezone": "Mars/Olympus", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": []}
    policy = sla_policy(alpha["org"], "normal", 60, 240, calendar=broken)
    make_ticket(session, alpha["org"], alpha["agent"])

    ticket = fresh(session, alpha["org"], 1)
    assert ticket.first_response_due_at == T0 + 60 * M
    with tenant_scope(session, alpha["org"].id):
        loaded = session.get(SlaPolicy, policy.id)
        assert loaded is not None
        assert sla.calendar_of(loaded).is_always
        session.commit()
