"""Fixtures for the ORM gate tests (see gate_world.py for the shared helpers)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk.services import api_tokens, tickets
from helpdesk.tenancy import tenant_scope
from tests.factories import make_ticket
from tests.tenancy.gate_world import Data
from tests.tenancy.matrix_world import matrix  # noqa: F401 (the route matrix fixture)


@pytest.fixture
def data(session: Session, world: dict[str, Any]) -> Data:
    """Alpha tickets #1-#2 and beta tickets #1-#3, each with a comment and an event."""
    made: dict[str, list[int]] = {}
    for slug, count in (("alpha", 2), ("beta", 3)):
        side = world[slug]
        org = side["org"]
        made[slug] = []
        for n in range(1, count + 1):
            ticket = make_ticket(
                session, org, side["agent"], side["requester"].user, subject=f"{slug} ticket {n}"
            )
            assert ticket.number == n
            made[slug].append(ticket.id)
        with tenant_scope(session, org.id):
            tickets.update_fields(session, side["agent"], 1, {"priority": "high"})
            tickets.add_comment(session, side["agent"], 2, f"{slug} note", internal=True)
            api_tokens.create_token(session, side["agent"], f"{slug} token")
    alpha, beta = world["alpha"], world["beta"]
    return Data(
        alpha=alpha["org"].id,
        beta=beta["org"].id,
        alpha_agent_user=alpha["agent"].user_id,
        alpha_requester_user=alpha["requester"].user_id,
        alpha_ticket_ids=made["alpha"],
        beta_ticket_ids=made["beta"],
    )


@pytest.fixture
def fresh(app: Flask) -> Iterator[Session]:
    """A new session with an empty identity map, like a request or a job gets."""
    s = app.extensions["helpdesk.sessionmaker"]()
    yield s
    s.close()
