"""/ops/flags: operators see and flip flags (audited, 303 or HTMX toast); everyone else 404."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from helpdesk.models import FeatureFlag, User
from helpdesk.services import flags
from tests.browser import Browser, as_user
from tests.flags.helpers import site_events, switch


@pytest.fixture
def operator(app: Flask, session: Session, world, password: str) -> Browser:
    user = session.get(User, world["alpha"]["admin"].user_id)
    assert user is not None
    user.is_operator = True
    session.commit()
    return as_user(app, "admin@alpha.test", password)


@pytest.fixture
def agent(app: Flask, world, password: str) -> Browser:
    return as_user(app, "agent@alpha.test", password)


def text(response) -> str:
    return response.get_data(as_text=True)


def stored(session: Session, name: str) -> FeatureFlag | None:
    session.expire_all()
    row = session.get(FeatureFlag, name)
    session.rollback()
    return row


def test_operators_see_every_flag(app: Flask, session: Session, operator: Browser) -> None:
    switch(app, session, "public_form", False, "spam <b>wave</b>")
    response = operator.get("/ops/flags")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = text(response)
    for flag in flags.FLAGS.values():
        assert f'id="flag-{flag.name}"' in page and flag.description.split("(")[0] in page
    assert "spam &lt;b&gt;wave&lt;/b&gt;" in page  # escaped
    assert page.count("Turn off") == len(flags.FLAGS) - 1 and page.count("Turn on") == 1


@pytest.mark.parametrize("who", ["anonymous", "agent"])
def test_everyone_else_gets_404(
    who: str, client: FlaskClient, agent: Browser, session: Session
) -> None:
    browser = agent if who == "agent" else Browser(client)
    assert browser.get("/ops/flags").status_code == 404
    assert browser.get("/ops/flags/").status_code == 404
    assert browser.get("/ops/flags/webhooks").status_code == 404  # not 405: nothing to learn
    posted = browser.post("/ops/flags/webhooks", {"state": "off", "reason": "x"})
    assert posted.status_code == 404
    no_token = browser.post("/ops/flags/webhooks", {"state": "off"}, csrf=False)
    assert no_token.status_code == 404  # not a CSRF 400: the page does not exist for them
    assert stored(session, "webhooks") is None and site_events(session) == []


def test_a_flip_is_audited_with_the_operator_and_redirects(
    operator: Browser, session: Session, world
) -> None:
    response = operator.post("/ops/flags/webhooks", {"state": "off", "reason": "leak"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/ops/flags")
    row = stored(session, "webhooks")
    assert row is not None and (row.enabled, row.reason) == (False, "leak")
    assert row.updated_by_id == world["alpha"]["admin"].user_id
    (event,) = site_events(session)
    assert event.actor_id == world["alpha"]["admin"].user_id and event.data["via"] == "web"
    page = text(operator.get("/ops/flags"))
    assert "by admin@alpha.test" in page and "leak" in page


def test_htmx_gets_the_table_and_a_toast(operator: Browser, session: Session) -> None:
    response = operator.post("/ops/flags/api_writes", {"state": "off", "reason": ""}, htmx=True)
    assert response.status_code == 200
    assert '"toast": "api_writes is now off"' in response.headers["HX-Trigger"]
    body = text(response)
    assert body.lstrip().startswith('<div id="flags"') and "<html" not in body
    again = operator.post("/ops/flags/api_writes", {"state": "off"}, htmx=True)
    assert "api_writes was already off (noted)" in again.headers["HX-Trigger"]
    assert len(site_events(session)) == 2


def test_without_csrf_nothing_changes(operator: Browser, session: Session) -> None:
    response = operator.post("/ops/flags/webhooks", {"state": "off"}, csrf=False)
    assert response.status_code == 400
    assert stored(session, "webhooks") is None


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"state": "maybe"}, "use on or off"),
        ({"state": ""}, "use on or off"),
        ({"state": "off", "reason": "x" * 501}, "500 characters or fewer"),
    ],
)
def test_bad_input_is_422_with_the_reason(
    operator: Browser, session: Session, form: dict[str, str], message: str
) -> None:
    response = operator.post("/ops/flags/webhooks", form)
    assert response.status_code == 422 and message in text(response)
    assert stored(session, "webhooks") is None and site_events(session) == []


def test_an_unknown_flag_is_404(operator: Browser, session: Session) -> None:
    assert operator.post("/ops/flags/nope", {"state": "off"}).status_code == 404
    assert site_events(session) == []


def test_get_never_changes_anything(operator: Browser, session: Session) -> None:
    assert operator.get("/ops/flags/webhooks?state=off").status_code == 405
    assert stored(session, "webhooks") is None
