"""attachments_upload and attachments_download: every upload and download route (agent pages,
requester pages, API) answers 503 while switched off, nothing is stored, text-only messages
still go through, and the deploy-time switches still apply on top of the flags."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from helpdesk.models import Attachment, Comment, Ticket
from helpdesk.tenancy import unscoped
from tests.attachments.disk_fixture import disk_app, disk_root
from tests.attachments.upload_helpers import attach, bearer, multipart, pdf
from tests.browser import Browser, as_user
from tests.factories import make_ticket
from tests.flags.helpers import switch

__all__ = ["disk_app", "disk_root"]  # fixtures `app` (on disk storage) and `storage_root`
UPLOAD_OFF = "File uploads are switched off for now, so nothing was saved"
DOWNLOAD_OFF = "File downloads are switched off for now"


def text(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def count(session: Session, model: type) -> int:
    session.expire_all()
    with unscoped(session):
        found = session.scalar(select(func.count()).select_from(model)) or 0
    session.rollback()
    return found


def with_file(**fields: str) -> dict[str, Any]:
    return {**fields, "files": [(io.BytesIO(pdf()), "report.pdf")]}


def assert_off(response: TestResponse, phrase: str) -> None:
    assert response.status_code == 503, text(response)
    assert response.headers["Retry-After"] == "60"
    assert phrase in text(response)


@pytest.fixture
def ticket(session: Session, world: dict[str, Any]) -> Ticket:
    alpha = world["alpha"]
    return make_ticket(session, alpha["org"], alpha["agent"], alpha["requester"].user)


@pytest.fixture
def agent(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "agent@alpha.test", password)


@pytest.fixture
def requester(app: Flask, world: dict[str, Any], password: str) -> Browser:
    return as_user(app, "requester@alpha.test", password)


def test_web_uploads_are_refused_but_text_still_goes_through(
    app: Flask, session: Session, agent: Browser, ticket: Ticket
) -> None:
    switch(app, session, "attachments_upload", False, "malware wave")
    url = f"/o/alpha/tickets/{ticket.number}/comments"
    assert_off(agent.post(url, with_file(body="See file", internal="0")), UPLOAD_OFF)
    htmx = agent.post(url, with_file(body="See file", internal="0"), htmx=True)
    assert_off(htmx, UPLOAD_OFF)
    assert htmx.headers["HX-Reswap"] == "none"  # the form keeps its text and files
    assert UPLOAD_OFF in htmx.headers["HX-Trigger"]
    new = with_file(subject="Printer", body="On fire", priority="normal",
                    requester_email="requester@alpha.test")  # fmt: skip
    assert_off(agent.post("/o/alpha/tickets", new), UPLOAD_OFF)
    assert (count(session, Ticket), count(session, Comment), count(session, Attachment)) == (
        1,
        1,
        0,
    )
    assert agent.post(url, {"body": "Just text", "internal": "0"}).status_code == 303
    assert agent.post(url, {"body": "Empty field", "internal": "0",
                            "files": [(io.BytesIO(b""), "")]}).status_code == 303  # fmt: skip
    assert count(session, Comment) == 3 and count(session, Attachment) == 0
    switch(app, session, "attachments_upload", True)
    assert agent.post(url, with_file(body="Now with file", internal="0")).status_code == 303
    assert count(session, Attachment) == 1


def test_the_requesters_reply_with_files_is_refused(
    app: Flask, session: Session, requester: Browser, ticket: Ticket
) -> None:
    switch(app, session, "attachments_upload", False)
    url = f"/r/alpha/{ticket.number}/comments"
    assert_off(requester.post(url, with_file(body="Photo")), UPLOAD_OFF)
    assert count(session, Comment) == 1
    assert requester.post(url, {"body": "No photo"}).status_code == 303
    assert count(session, Comment) == 2 and count(session, Attachment) == 0


def test_api_uploads_are_refused_with_a_problem(
    app: Flask, session: Session, client: FlaskClient, ticket: Ticket, world: dict[str, Any]
) -> None:
    headers = bearer(session, world["alpha"]["agent"])
    url = f"/api/v1/orgs/alpha/tickets/{ticket.number}/attachments"
    switch(app, session, "attachments_upload", False)
    response = client.post(url, data=multipart((pdf(), "r.pdf")), headers=headers)
    assert_off(response, UPLOAD_OFF)
    assert response.mimetype == "application/problem+json"
    assert response.json is not None and response.json["flag"] == "attachments_upload"
    assert count(session, Attachment) == 0
    switch(app, session, "attachments_upload", True)
    response = client.post(url, data=multipart((pdf(), "r.pdf")), headers=headers)
    assert response.status_code == 201, text(response)
    assert count(session, Attachment) == 1


def test_every_download_route_is_refused_while_switched_off(
    app: Flask,
    session: Session,
    agent: Browser,
    requester: Browser,
    client: FlaskClient,
    ticket: Ticket,
    world: dict[str, Any],
) -> None:
    file_id = attach(app, session, world["alpha"]["agent"], ticket.number, pdf(), "a.pdf")
    headers = bearer(session, world["alpha"]["agent"])
    agent_url = f"/o/alpha/attachments/{file_id}/download"
    requester_url = f"/r/alpha/{ticket.number}/attachments/{file_id}/download"
    api_url = f"/api/v1/orgs/alpha/attachments/{file_id}/download"
    switch(app, session, "attachments_download", False, "bad file spreading")
    assert_off(agent.get(agent_url), DOWNLOAD_OFF)
    assert_off(requester.get(requester_url), DOWNLOAD_OFF)
    api = client.get(api_url, headers=headers)
    assert_off(api, DOWNLOAD_OFF)
    assert api.mimetype == "application/problem+json"
    assert agent.get(f"/o/alpha/tickets/{ticket.number}").status_code == 200  # pages still work
    switch(app, session, "attachments_download", True)
    assert agent.get(agent_url).status_code == 200
    assert requester.get(requester_url).status_code == 200
    assert client.get(api_url, headers=headers).status_code == 200


def test_the_env_switch_still_applies_when_the_flag_is_on(
    app: Flask,
    session: Session,
    agent: Browser,
    ticket: Ticket,
    world: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    file_id = attach(app, session, world["alpha"]["agent"], ticket.number, pdf(), "a.pdf")
    monkeypatch.setitem(app.config, "DOWNLOADS_ENABLED", False)
    response = agent.get(f"/o/alpha/attachments/{file_id}/download")
    assert_off(response, "Downloads are switched off for now")


def test_strangers_get_404_before_the_gate(
    app: Flask, session: Session, ticket: Ticket, world: dict[str, Any], password: str
) -> None:
    file_id = attach(app, session, world["alpha"]["agent"], ticket.number, pdf(), "a.pdf")
    switch(app, session, "attachments_download", False)
    beta = as_user(app, "agent@beta.test", password)
    assert beta.get(f"/o/alpha/attachments/{file_id}/download").status_code == 404


def test_the_file_field_hides_while_uploads_are_switched_off(
    app: Flask, session: Session, agent: Browser, ticket: Ticket
) -> None:
    page = f"/o/alpha/tickets/{ticket.number}"
    assert 'type="file"' in text(agent.get(page))
    switch(app, session, "attachments_upload", False, "malware wave")
    assert 'type="file"' not in text(agent.get(page))
    assert 'type="file"' not in text(agent.get("/o/alpha/tickets/new"))
    switch(app, session, "attachments_upload", True)
    assert 'type="file"' in text(agent.get("/o/alpha/tickets/new"))
