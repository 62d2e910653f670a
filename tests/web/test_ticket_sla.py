"""The SLA panel on the ticket page: state, pauses, warnings and breach in time order."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from helpdesk.db import utcnow
from helpdesk.models import SlaEvent, SlaPause, Ticket
from helpdesk.tenancy import tenant_scope
from tests.browser import Browser
from tests.factories import make_ticket


def test_timeline_lists_pauses_warnings_and_breach_in_order(
    agent: Browser, session: Session, world, app, password
) -> None:
    from tests.browser import as_user

    org, member = world["alpha"]["org"], world["alpha"]["agent"]
    ticket = make_ticket(session, org, member, world["alpha"]["requester"].user.email)
    t0 = utcnow() - timedelta(hours=5)
    with tenant_scope(session, org.id):
        session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id)
            .values(
                sla_state="breached",
                first_responded_at=t0 + timedelta(minutes=20),
                resolution_due_at=t0 + timedelta(hours=4),
            )
        )
        session.add(SlaPause(ticket_id=ticket.id, started_at=t0 + timedelta(hours=1),
                             ended_at=t0 + timedelta(hours=2)))  # fmt: skip
        session.add_all(
            SlaEvent(ticket_id=ticket.id, target="resolution", level=level,
                     due_at=t0 + timedelta(hours=4), threshold_at=t0 + timedelta(hours=h))
            for level, h in (("75%", 3), ("breach", 4))
        )  # fmt: skip
        session.commit()
    html = agent.get(f"/o/alpha/tickets/{ticket.number}").get_data(as_text=True)
    panel = html.split('aria-label="SLA timeline"', 1)[1].split("</ol>", 1)[0]
    labels = [" ".join(x.split()) for x in re.findall(r"</time>([^<]+)</li>", panel)]
    assert labels == [
        "first response sent",
        "clock paused",
        "clock resumed",
        "resolution warning (75% of target)",
        "resolution target breached",
    ]
    assert 'class="badge sla-breached"' in html
    requester = as_user(app, "requester@alpha.test", password)
    own = requester.get(f"/o/alpha/tickets/{ticket.number}").get_data(as_text=True)
    assert "SLA timeline" not in own and "sla-breached" not in own


def test_ticket_without_policy_says_so(agent: Browser, session: Session, world) -> None:
    ticket = make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"], priority="low")
    html = agent.get(f"/o/alpha/tickets/{ticket.number}").get_data(as_text=True)
    assert "No SLA policy applies to low tickets." in html
