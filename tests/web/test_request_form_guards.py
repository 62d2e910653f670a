"""What the public request form (/o/<slug>/request) must never do.

Nothing created by a bot or a blocked account (and the same answer as a real submission), no
PII in the logs, nothing saved from bad input or without CSRF, and limits per client address
and per submitted address.
"""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.models import BODY_MAX, SUBJECT_MAX
from helpdesk.services import public_requests
from helpdesk.services.errors import ValidationError
from helpdesk.services.public_requests import PublicRequest
from tests.browser import Browser
from tests.web.request_form_helpers import (
    FORM,
    THANKS,
    everything,
    normalized,
    request_data,
    submit,
)

# --- dropped submissions -------------------------------------------------------------------------


def test_honeypot_answers_like_success_and_creates_nothing(
    app: Flask, browser: Browser, world, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    reference = submit(Browser(app.test_client()), email="real.person@example.test")
    before = everything(session)
    with caplog.at_level(logging.INFO, logger="helpdesk.services.public_requests"):
        trapped = submit(browser, email="bot@spam.test", website="http://spam.test")
    assert normalized(trapped) == normalized(reference)
    assert everything(session) == before
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "reason=honeypot" in logged
    assert "bot@spam.test" not in logged and "spam.test" not in logged
    assert "Cannot print" not in logged


def test_honeypot_wins_even_over_invalid_fields(browser: Browser, world, session: Session) -> None:
    before = everything(session)
    trapped = submit(browser, email="not an email", subject="", website="x")
    assert trapped.status_code == 303 and trapped.headers["Location"] == THANKS
    assert everything(session) == before


def test_deactivated_account_is_dropped_with_the_same_answer(
    app: Flask, browser: Browser, world, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = world["alpha"]["requester"].user
    blocked.active = False
    session.commit()
    reference = submit(Browser(app.test_client()), email="someone@example.test")
    before = everything(session)
    with caplog.at_level(logging.INFO, logger="helpdesk.services.public_requests"):
        response = submit(browser, email=blocked.email)
    assert normalized(response) == normalized(reference)
    assert everything(session) == before
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "reason=inactive_account" in logged and blocked.email not in logged


# --- validation ----------------------------------------------------------------------------------

BAD_FIELDS = [
    ({"email": ""}, "email", "enter your email address"),
    ({"email": "   "}, "email", "enter your email address"),
    ({"email": "pat@example"}, "email", "enter a valid email address, like name@example.com"),
    ({"email": "pat example.test"}, "email", "enter a valid email address"),
    ({"email": "a" * 250 + "@example.test"}, "email", "254 characters or fewer"),
    ({"name": "N" * 121}, "name", "keep your name to 120 characters or fewer"),
    ({"subject": ""}, "subject", "enter a subject"),
    ({"subject": " \u202e\x00 "}, "subject", "enter a subject"),
    ({"subject": "S" * (SUBJECT_MAX + 1)}, "subject", f"under {SUBJECT_MAX} characters"),
    ({"description": ""}, "description", "write a message"),
    ({"description": " \r\n\t "}, "description", "write a message"),
    ({"description": "d" * (BODY_MAX + 1)}, "description", f"under {BODY_MAX:,} characters"),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD_FIELDS)
def test_each_bad_field_gets_its_own_message_and_nothing_is_created(
    browser: Browser, world, session: Session, changes: dict[str, str], field: str, message: str
) -> None:
    before = everything(session)
    response = submit(browser, **changes)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    error = re.search(rf'<span class="field-error" id="{field}-error">([^<]*)</span>', html)
    assert error, html
    assert message in error.group(1)
    assert html.count('class="field-error"') == 1
    assert f'aria-describedby="{field}-error"' in html
    assert "please correct the field marked below" in html
    assert everything(session) == before


def test_every_error_at_once_keeps_what_was_typed_escaped_but_not_the_honeypot(
    browser: Browser, world, session: Session
) -> None:
    browser.get(FORM)
    typed = {
        "name": "N" * 121,
        "email": "<b>not-an-email",
        "subject": "",
        "description": "",
        "website": "",
    }
    response = browser.post(FORM, typed)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    for field in ("name", "email", "subject", "description"):
        assert f'id="{field}-error"' in html, field
    assert "please correct the fields marked below" in html
    assert 'value="' + "N" * 121 + '"' in html
    assert 'value="&lt;b&gt;not-an-email"' in html and "<b>not-an-email" not in html
    kept = submit(browser, subject="", description="<script>alert(1)</script> {{7*7}}")
    kept_html = kept.get_data(as_text=True)
    assert kept.status_code == 422
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{7*7}}</textarea>" in kept_html
    assert 'value="Pat Doe"' in kept_html and 'value="pat@example.test"' in kept_html
    assert 'name="website" value=""' in kept_html
    assert everything(session)["tickets"] == 0


def test_form_needs_csrf(app: Flask, browser: Browser, world, session: Session) -> None:
    browser.get(FORM)
    without = browser.post(FORM, request_data(), csrf=False)
    assert without.status_code == 400
    assert "nothing was saved" in without.get_data(as_text=True)
    forged = browser.post(FORM, {**request_data(), "csrf_token": "forged"}, csrf=False)
    assert forged.status_code == 400
    fresh = app.test_client().post(FORM, data=request_data())  # no session, no token
    assert fresh.status_code == 400
    assert everything(session)["tickets"] == 0


def test_clean_request_reports_every_field_together() -> None:
    with pytest.raises(ValidationError) as caught:
        public_requests.clean_request(PublicRequest(name="x" * 200))
    assert set(caught.value.errors) == {"name", "email", "subject", "description"}
    clean = public_requests.clean_request(
        PublicRequest(" Pat \u202e Doe ", " Pat@Example.TEST ", " Hi\tthere ", "Body")
    )
    assert dataclasses.astuple(clean) == ("Pat Doe", "pat@example.test", "Hi there", "Body")


# --- rate limits ---------------------------------------------------------------------------------


def test_limit_per_client_address(
    app: Flask, browser: Browser, world, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_LIMIT_IP", "3 per hour")
    for i in range(2):
        assert submit(browser, ip="10.0.0.1", email=f"p{i}@example.test").status_code == 303
    bad = submit(browser, ip="10.0.0.1", email="broken")  # invalid posts count too
    assert bad.status_code == 422
    blocked = submit(browser, ip="10.0.0.1", email="p9@example.test", subject="Kept subject")
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 3600
    html = blocked.get_data(as_text=True)
    assert "so this one was not sent" in html
    assert re.search(r"please try again in (a minute|\d+ minutes)", html), html
    assert 'value="Kept subject"' in html  # the text is not lost
    assert everything(session)["tickets"] == 2
    # Another client address is not held back by this one's limit.
    assert submit(browser, ip="10.0.0.2", email="p9@example.test").status_code == 303


def test_limit_per_submitted_address_whatever_the_client(
    app: Flask, browser: Browser, world, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_LIMIT_ADDRESS", "2 per hour")
    assert submit(browser, ip="10.0.1.1", email="target@example.test").status_code == 303
    assert submit(browser, ip="10.0.1.2", email=" Target@Example.TEST ").status_code == 303
    blocked = submit(browser, ip="10.0.1.3", email="TARGET@example.test")
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "please try again in" in blocked.get_data(as_text=True)
    assert everything(session)["tickets"] == 2
    # Other addresses, and malformed ones (they do not share one bucket), still go through.
    assert submit(browser, ip="10.0.1.3", email="other@example.test").status_code == 303
    assert submit(browser, ip="10.0.1.4", email="").status_code == 422
    assert submit(browser, ip="10.0.1.5", email="").status_code == 422
    assert submit(browser, ip="10.0.1.6", email="").status_code == 422


def test_limit_applies_to_unknown_orgs_too(
    app: Flask, browser: Browser, world, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "REQUEST_LIMIT_IP", "1 per hour")
    assert submit(browser, "/o/nope/request").status_code == 404
    blocked = submit(browser, "/o/nope/request")
    assert blocked.status_code == 429
    html = blocked.get_data(as_text=True)
    assert "<h1>429</h1>" in html and "please try again in" in html


def test_redis_down_fails_closed_but_the_form_still_shows(
    settings: Settings, app: Flask, world, session: Session
) -> None:
    values = {**settings.__dict__, "redis_url": "redis://127.0.0.1:1/0"}
    broken = create_app(Settings(**values))
    broken.config["TESTING"] = True
    try:
        browser = Browser(broken.test_client())
        assert browser.get(FORM).status_code == 200
        response = browser.post(FORM, request_data())
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "30"
        html = response.get_data(as_text=True)
        assert "cannot take requests for a moment, so this one was not sent" in html
        assert "Please try again in a minute." in html
        assert 'value="Cannot print"' in html  # the text is not lost
        assert everything(session)["tickets"] == 0
    finally:
        broken.extensions["helpdesk.engine"].dispose()
