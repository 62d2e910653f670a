"""Error reports reach a Sentry-protocol server (a real local HTTP receiver), tagged with
release and environment, and carry no token, password, cookie, email or client address."""

from __future__ import annotations

import dataclasses
import gzip
import json
import secrets
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import sentry_sdk
from flask import Flask
from rq import Queue

from helpdesk import create_app, sentry
from helpdesk.config import Settings
from helpdesk.extensions import csrf
from jobs.worker import build_worker

LINK_TOKEN = secrets.token_urlsafe(24)
API_TOKEN = "hdk_" + secrets.token_urlsafe(32)
COOKIE = secrets.token_urlsafe(20)
CSRF = secrets.token_urlsafe(20)
EMAIL = "pat.secret@example.test"
CLIENT_IP = "203.0.113.77"


class Receiver(HTTPServer):
    """Stores every envelope POSTed to it (decompressed)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.bodies: list[bytes] = []

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.server_address[1]}/1"

    def text(self) -> str:
        return b"\n".join(self.bodies).decode("utf-8", "replace")

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [payload for body in self.bodies for t, payload in _items(body) if t == kind]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def _items(body: bytes) -> Iterator[tuple[str, dict[str, Any]]]:
    """(type, payload) of each item of a Sentry envelope."""
    _header, _, rest = body.partition(b"\n")
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        item = json.loads(item_line)
        length = item.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].lstrip(b"\n")
        if payload.strip().startswith(b"{"):
            yield item.get("type", ""), json.loads(payload)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        client = sentry_sdk.get_client()
        client.close(timeout=2)  # flushes, stops the transport thread
        sentry_sdk.get_global_scope().set_client(None)  # later tests send nothing
        server.shutdown()
        server.server_close()


def _settings(settings: Settings, receiver: Receiver) -> Settings:
    return dataclasses.replace(settings, sentry_dsn=receiver.dsn, release="helpdesk@9.9.9+test")


def _assert_clean(text: str) -> None:
    for secret in (LINK_TOKEN, API_TOKEN, COOKIE, CSRF, EMAIL, CLIENT_IP, "hunter2-pass"):
        assert secret not in text, secret


def test_a_failing_request_is_reported_once_without_secrets(
    settings: Settings, receiver: Receiver
) -> None:
    app: Flask = create_app(_settings(settings, receiver))

    @app.post("/t/<path:token>/boom")
    def boom(token: str) -> str:
        raise RuntimeError(f"exploded for {EMAIL} holding {token}")

    csrf.exempt(boom)  # the form carries a (fake) token; the view itself must raise

    query = f"token={LINK_TOKEN}&key=k1&signature=s1&password=hunter2-pass&page=2"
    response = app.test_client().post(
        f"/t/{LINK_TOKEN}/boom?{query}",
        data={"password": "hunter2-pass", "email": EMAIL, "csrf_token": CSRF},
        headers={"Authorization": f"Bearer {API_TOKEN}", "Cookie": f"session={COOKIE}",
                 "X-CSRFToken": CSRF, "X-Forwarded-For": CLIENT_IP},
        environ_base={"REMOTE_ADDR": CLIENT_IP},
    )  # fmt: skip
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)

    events = receiver.items("event")
    assert len(events) == 1, [e.get("message") for e in events]
    (event,) = events
    assert event["release"] == "helpdesk@9.9.9+test" and event["environment"] == "test"
    assert event["exception"]["values"][-1]["type"] == "RuntimeError"
    request = event["request"]
    assert request["url"].endswith("/t/<path:token>/boom")
    assert "data" not in request and "cookies" not in request
    assert not {"authorization", "cookie", "x-csrftoken", "x-forwarded-for"} & {
        name.lower() for name in request.get("headers", {})
    }
    assert "page=" in request["query_string"]
    assert set(event.get("user", {})) <= {"id"}
    _assert_clean(receiver.text())


def test_a_failing_job_is_reported_without_its_arguments_leaking(
    app: Flask, settings: Settings, receiver: Receiver
) -> None:
    assert sentry.init(_settings(settings, receiver))
    queue = Queue("default", connection=app.extensions["helpdesk.redis"])
    queue.enqueue("builtins.int", args=(EMAIL,))  # ValueError: invalid literal … 'pat…'
    with app.app_context():
        build_worker(["default"]).work(burst=True)
    sentry_sdk.flush(timeout=5)
    events = receiver.items("event")
    assert len(events) == 1
    (event,) = events
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    assert event["release"] == "helpdesk@9.9.9+test"
    assert "[email]" in json.dumps(event)
    _assert_clean(receiver.text())


def test_scrub_event_without_a_request_context() -> None:
    event = {
        "request": {
            "url": f"https://help.example.com/t/{LINK_TOKEN}",
            "query_string": f"token={LINK_TOKEN}&q={EMAIL}",
            "headers": {"Authorization": f"Bearer {API_TOKEN}", "Accept": "text/html"},
            "cookies": {"session": COOKIE},
            "data": {"password": "hunter2-pass"},
            "env": {"REMOTE_ADDR": CLIENT_IP},
        },
        "user": {"id": "7", "email": EMAIL, "ip_address": CLIENT_IP},
        "breadcrumbs": {"values": [{"message": f"login for {EMAIL} from {CLIENT_IP}"}]},
        "extra": {"password": "hunter2-pass", "note": f"csrf_token={CSRF}"},
    }
    scrubbed = sentry.scrub_event(event)
    assert scrubbed["request"]["url"] == "https://help.example.com/t/[redacted]"
    assert scrubbed["request"]["headers"] == {"Accept": "text/html"}
    assert scrubbed["user"] == {"id": "7"}
    _assert_clean(json.dumps(scrubbed))


def test_off_without_a_dsn_and_release_defaults(settings: Settings) -> None:
    assert sentry.init(settings) is False
    assert sentry.release(settings).startswith("helpdesk@0.1.0")
    assert sentry.release(dataclasses.replace(settings, release="r42")) == "r42"
