"""Shared helpers for the request form tests: submit the form, and see what it created."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk.models import Comment, Membership, OutboxEvent, Ticket, User
from helpdesk.tenancy import unscoped
from tests.browser import Browser

FORM = "/o/alpha/request"
THANKS = "/o/alpha/request/thanks"
THANKS_TEXT = "We've emailed you a link to follow your request"
_CSRF = re.compile(r'(name="csrf[-_]token" (?:content|value)=")[^"]*(")')


def request_data(**changes: str) -> dict[str, str]:
    data = {
        "name": "Pat Doe",
        "email": "pat@example.test",
        "subject": "Cannot print",
        "description": "The printer says *PC LOAD LETTER*.",
        "website": "",
    }
    return {**data, **changes}


def submit(
    browser: Browser, url: str = FORM, ip: str = "127.0.0.1", **changes: str
) -> TestResponse:
    browser.get(url)  # the page's CSRF token, as a person would have it
    return browser.post(url, request_data(**changes), environ_base={"REMOTE_ADDR": ip})


def everything(session: Session) -> dict[str, Any]:
    """What a submission may create, across orgs."""
    member = (Membership.org_id, Membership.user_id, Membership.role)
    session.expire_all()
    with unscoped(session):
        found = {
            "users": session.scalars(select(User.email).order_by(User.id)).all(),
            "members": session.execute(select(*member).order_by(Membership.id)).all(),
            "tickets": session.scalar(select(func.count()).select_from(Ticket)),
            "comments": session.scalar(select(func.count()).select_from(Comment)),
            "events": session.scalar(select(func.count()).select_from(OutboxEvent)),
        }
    session.rollback()
    return found


def only_ticket(session: Session) -> Ticket:
    session.expire_all()
    with unscoped(session):
        ticket = session.scalars(select(Ticket)).one()
    return ticket


def normalized(response: TestResponse) -> tuple[int, str | None, str]:
    return (
        response.status_code,
        response.headers.get("Location"),
        _CSRF.sub(r"\1\2", response.get_data(as_text=True)),
    )
