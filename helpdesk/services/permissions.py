"""Who may see and do what with a ticket — the one place that decides.

Pages, fragments, the API, exports and downloads all load tickets through
`load_ticket`, so a requester can never reach another requester's ticket by number and
nobody reaches another org's (the tenancy gate already hides those rows; this adds the
per-object rule inside an org). Invisible means 404, never 403: no existence oracle.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk.models import Membership, Ticket
from helpdesk.services.errors import Forbidden, NotFound

NUMBER_MAX = 2**31 - 1  # tickets.number is a PostgreSQL integer


def can_view_ticket(actor: Membership, ticket: Ticket) -> bool:
    """Staff see every ticket of their org; requesters only their own."""
    if ticket.org_id != actor.org_id:
        return False
    return actor.is_staff or ticket.requester_id == actor.user_id


def can_see_internal(actor: Membership) -> bool:
    """Only staff see internal notes."""
    return actor.is_staff


def require_staff(actor: Membership, what: str = "do this") -> None:
    """Raise Forbidden unless the actor is an agent or admin."""
    if not actor.is_staff:
        raise Forbidden(f"only agents and admins may {what}")


def load_ticket(session: Session, actor: Membership, number: int) -> Ticket:
    """Return the ticket with this number if the actor may see it; NotFound otherwise."""
    if not 0 < number <= NUMBER_MAX:  # beyond the column's range: no such ticket, not a 500
        raise NotFound(f"ticket #{number} not found")
    ticket = session.scalar(select(Ticket).where(Ticket.number == number))
    if ticket is None or not can_view_ticket(actor, ticket):
        raise NotFound(f"ticket #{number} not found")
    return ticket
