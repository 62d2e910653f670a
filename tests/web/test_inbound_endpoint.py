"""POST /inbound/email: bearer secret, a hard size cap read in chunks, storage, the queued job,
the per-IP limit — and the admin page that lists the org's inbound email, failed first."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.test import EnvironBuilder, run_wsgi_app

from helpdesk.models import InboundMessage
from helpdesk.services import inbound
from helpdesk.services.threading import MailIdentity
from tests.browser import as_user

SECRET = "endpoint-test-secret-0123456789abcdef"
MESSAGE = (
    b"From: Nora <nora@example.net>\r\nTo: support+alpha@example.test\r\n"
    b"Subject: =?utf-8?q?Caf=C3=A9_is_closed?=\r\nMessage-ID: <nora-1@example.net>\r\n\r\n"
    b"The cafe is closed.\r\n"
)


@pytest.fixture
def inbound_app(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    monkeypatch.setitem(app.config, "INBOUND_EMAIL_SECRET", SECRET)
    monkeypatch.setitem(app.config, "INBOUND_MAX_BYTES", 4096)
    monkeypatch.setitem(app.config, "MAIL_FROM", "support@example.test")
    monkeypatch.setitem(app.config, "REPLY_ADDRESS", "support+{token}@example.test")
    return app


def _post(client: FlaskClient, data: Any, headers: dict[str, str] | None = None, **kw: Any):
    sent = {"Authorization": f"Bearer {SECRET}", **(headers or {})}
    return client.post("/inbound/email", data=data, headers=sent, **kw)


def _stored(session: Session) -> int:
    session.expire_all()
    count = session.scalar(select(func.count()).select_from(InboundMessage)) or 0
    session.rollback()
    return count


def test_without_a_configured_secret_the_route_does_not_exist(
    client: FlaskClient, session: Session
) -> None:
    response = _post(client, MESSAGE)
    assert response.status_code == 404
    assert _stored(session) == 0


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        f"Bearer {SECRET}x",
        f"Bearer {SECRET[:-1]}",
        f"Basic {SECRET}",
        "Bearer  ",
    ],
)
def test_a_wrong_or_missing_secret_is_401(
    inbound_app: Flask, client: FlaskClient, session: Session, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.post("/inbound/email", data=MESSAGE, headers=headers)
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == (
        "Send the inbound-mail secret as 'Authorization: Bearer <INBOUND_EMAIL_SECRET>'."
    )
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _stored(session) == 0


def test_a_message_is_stored_and_its_job_queued(
    inbound_app: Flask, client: FlaskClient, session: Session
) -> None:
    # Any content type, no CSRF token, no cookie: the secret is the only credential.
    response = _post(client, MESSAGE, {"Content-Type": "text/plain"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "received"
    row = session.get(InboundMessage, body["id"])
    assert row is not None and row.status == "received" and row.org_id is None
    assert row.raw == MESSAGE and row.size == len(MESSAGE)
    assert row.message_id == "<nora-1@example.net>" and row.subject == "Café is closed"
    queue = Queue("default", connection=inbound_app.extensions["helpdesk.redis"])
    assert [(j.func_name, tuple(j.args)) for j in queue.get_jobs()] == [
        ("jobs.inbound.process", (row.id,))
    ]


def test_headers_are_read_leniently_when_storing(
    inbound_app: Flask, client: FlaskClient, session: Session
) -> None:
    raw = b"Message-ID: not-bracketed\x00\r\nSubject: \xff\xfe broken\r\n\r\nx"
    response = _post(client, raw)
    assert response.status_code == 202
    row = session.get(InboundMessage, response.get_json()["id"])
    assert row is not None and row.message_id == "not-bracketed"
    assert row.subject is not None and "broken" in row.subject


def test_a_declared_length_over_the_cap_is_refused_before_reading(
    inbound_app: Flask, client: FlaskClient, session: Session
) -> None:
    response = _post(client, b"x" * 4097)
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["limit"] == 4096
    assert problem["detail"].startswith(
        "The message is larger than the limit of 4,096 bytes (INBOUND_MAX_BYTES)"
    )
    assert _stored(session) == 0
    assert _post(client, MESSAGE + b"y" * (4096 - len(MESSAGE))).status_code == 202


class _Endless(io.RawIOBase):
    """A request body that never ends (read in chunks; counts what was read)."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = len(buffer)
        buffer[:n] = b"z" * n
        self.read_bytes += n
        return n


def _stream(app: Flask, body: io.IOBase) -> tuple[int, dict[str, Any]]:
    """Send a chunked body with no Content-Length, as gunicorn hands it to the app."""
    environ = EnvironBuilder(
        path="/inbound/email",
        method="POST",
        headers=[("Authorization", f"Bearer {SECRET}"), ("Transfer-Encoding", "chunked")],
    ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ["wsgi.input"] = body
    environ["wsgi.input_terminated"] = True
    app_iter, status, _headers = run_wsgi_app(app, environ, buffered=True)
    payload = json.loads(b"".join(app_iter))
    return int(status.split()[0]), payload


def test_a_streamed_body_is_cut_at_the_cap(
    inbound_app: Flask, client: FlaskClient, session: Session
) -> None:
    body = _Endless()
    status, problem = _stream(inbound_app, body)
    assert status == 413
    assert "4,096 bytes" in problem["detail"]
    assert body.read_bytes <= 4096 + 64 * 1024  # never more than the cap and one chunk
    assert _stored(session) == 0
    status, _ = _stream(inbound_app, io.BytesIO(MESSAGE))
    assert status == 202 and _stored(session) == 1


def test_an_empty_body_is_400(inbound_app: Flask, client: FlaskClient, session: Session) -> None:
    for data in (b"", b"  \r\n  "):
        response = _post(client, data)
        assert response.status_code == 400
        assert response.get_json()["detail"].startswith("The body is empty: post the raw RFC 822")
    assert _stored(session) == 0


def test_the_envelope_recipient_hint(
    inbound_app: Flask, client: FlaskClient, session: Session
) -> None:
    by_query = _post(client, MESSAGE, query_string={"to": "Support+Alpha@Example.test"})
    by_header = _post(client, MESSAGE, {"X-Original-To": "support+alpha@example.test"})
    both = _post(
        client,
        MESSAGE,
        {"X-Original-To": "support+alpha@example.test"},
        query_string={"to": "support+alpha@example.test"},
    )
    for response in (by_query, by_header, both):
        assert response.status_code == 202
        row = session.get(InboundMessage, response.get_json()["id"])
        assert row is not None
        assert row.raw == b"X-Original-To: support+alpha@example.test\r\n" + MESSAGE
    bad: list[tuple[dict[str, str], dict[str, str]]] = [
        ({"to": "not an address"}, {}),
        ({"to": "a@example.test"}, {"X-Original-To": "b@example.test"}),
        ({"to": "x@example.test\r\nBcc: y@example.test"}, {}),
    ]
    for query, headers in bad:
        response = _post(client, MESSAGE, headers, query_string=query)
        assert response.status_code == 400
        assert "must be one email address" in response.get_json()["detail"]
    assert _stored(session) == 3


def test_the_per_ip_limit(
    inbound_app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(inbound_app.config, "INBOUND_LIMIT_IP", "2 per minute")
    assert [_post(client, MESSAGE).status_code for _ in range(3)] == [202, 202, 429]


def test_admins_see_their_orgs_inbound_email_failed_first(
    inbound_app: Flask, session: Session, world: dict[str, Any], password: str
) -> None:
    alpha, beta = world["alpha"], world["beta"]
    identity = MailIdentity.from_config(inbound_app.config)
    msgs = {
        "ok": b"From: n@example.net\r\nSubject: Works fine\r\n\r\nhi",
        "broken": b"From: n@example.net\r\nSubject: Broken <b>one</b>\r\n"
        b"Content-Type: multipart/mixed\r\n\r\nno boundary",
        "beta": b"From: n@example.net\r\nSubject: beta-secret subject\r\n\r\nhi",
        "nowhere": b"From: n@example.net\r\nSubject: org-less subject\r\n\r\nhi",
    }
    routes = {"ok": "alpha", "broken": "alpha", "beta": "beta", "nowhere": "nowhere"}
    with inbound_app.app_context():
        for key, raw in msgs.items():
            row = inbound.store(session, raw, f"support+{routes[key]}@example.test")
            inbound.process(session, row.id, identity)
    admin = as_user(inbound_app, "admin@alpha.test", password)
    page = admin.get("/o/alpha/admin/inbound")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("Broken &lt;b&gt;one&lt;/b&gt;") < html.index("Works fine")
    assert "malformed MIME: a multipart message without a boundary" in html
    assert "beta-secret" not in html and "org-less subject" not in html
    assert 'href="/o/alpha/tickets/1"' in html
    assert "Inbound email" in html and "/o/alpha/admin/inbound" in html
    agent = as_user(inbound_app, "agent@alpha.test", password)
    assert agent.get("/o/alpha/admin/inbound").status_code == 403
    assert beta["admin"] is not None and alpha["admin"] is not None
