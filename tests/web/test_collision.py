"""Collision warnings: who else is on a ticket, and no blind reply over someone else's."""

from __future__ import annotations

import re

from flask import Flask
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from helpdesk.models import Comment
from helpdesk.services import presence, tickets
from helpdesk.tenancy import tenant_scope, unscoped
from tests.browser import as_user
from tests.factories import make_ticket


def test_agents_see_each_other_viewing_and_replying(
    app: Flask, session: Session, world, password
) -> None:
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"])
    agent, admin = (
        as_user(app, "agent@alpha.test", password),
        as_user(app, "admin@alpha.test", password),
    )
    url = "/o/alpha/tickets/1/presence"
    assert agent.post(url, htmx=True).get_data(as_text=True).strip() == ""
    seen = admin.post(url, {"replying": "1"}, htmx=True).get_data(as_text=True)
    assert "Agent is viewing" in seen
    back = agent.post(url, htmx=True).get_data(as_text=True)
    assert "Admin is replying" in back and "Agent" not in back
    customer = as_user(app, "requester@alpha.test", password)
    make_ticket(session, world["alpha"]["org"], world["alpha"]["agent"],
                world["alpha"]["requester"].user)  # fmt: skip
    assert customer.post("/o/alpha/tickets/2/presence", htmx=True).get_data(
        as_text=True).strip() == ""  # fmt: skip
    assert customer.post(url, htmx=True).status_code == 404  # not their ticket


def test_presence_marks_expire(redis_url: str, app: Flask) -> None:
    redis = Redis.from_url(redis_url)
    presence.heartbeat(redis, 1, 7, 100, "replying", now=1000.0)
    assert presence.heartbeat(redis, 1, 7, 200, "viewing", now=1010.0) == [
        presence.Presence(100, "replying")
    ]
    later = 1000.0 + presence.PRESENCE_TTL + 1
    assert presence.heartbeat(redis, 1, 7, 200, "viewing", now=later) == []
    assert redis.hkeys("presence:1:7") == [b"200"]  # the stale mark was removed
    assert presence.heartbeat(redis, 2, 7, 300, "viewing", now=1010.0) == []  # other org


def test_reply_over_someone_elses_new_message_is_held_back(
    app: Flask, session: Session, world, password
) -> None:
    org, admin = world["alpha"]["org"], world["alpha"]["admin"]
    make_ticket(session, org, world["alpha"]["agent"])
    agent = as_user(app, "agent@alpha.test", password)
    page = agent.get("/o/alpha/tickets/1").get_data(as_text=True)
    seen = re.search(r'name="seen_up_to" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    with tenant_scope(session, org.id):
        tickets.add_comment(session, admin, 1, "I already answered this.")
    draft = {"body": "My late answer", "internal": "0", "seen_up_to": seen}
    held = agent.post("/o/alpha/tickets/1/comments", draft, htmx=True)
    assert held.status_code == 409
    html = held.get_data(as_text=True)
    assert "while you were typing" in html and "I already answered this." in html
    assert "My late answer" in html  # the draft is kept in the textarea
    with unscoped(session):
        assert session.scalar(select(func.count()).select_from(Comment)) == 2
    newer = re.search(r'name="seen_up_to" value="(\d+)"', html).group(1)  # type: ignore[union-attr]
    sent = agent.post("/o/alpha/tickets/1/comments", {**draft, "seen_up_to": newer})
    assert sent.status_code == 303
    # Your own earlier messages never count as a collision.
    again = agent.post("/o/alpha/tickets/1/comments", {**draft, "seen_up_to": newer})
    assert again.status_code == 303
