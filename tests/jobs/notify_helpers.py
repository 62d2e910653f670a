"""Shared fixtures for the notification job tests: a real SMTP sink, a real HTTP receiver,
an app wired to both, and helpers to run queued jobs in-process.

Import the fixtures into a test module (``from tests.jobs.notify_helpers import …  # noqa``);
the app fixture is named ``app``, so ``session``/``world`` in that module use it.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from flask import Flask
from rq import Queue, SimpleWorker
from rq.registry import FailedJobRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpdesk import create_app
from helpdesk.config import Settings
from helpdesk.models import (
    Delivery,
    NotificationPreference,
    Organization,
    OutboxEvent,
    User,
    WebhookEndpoint,
)
from helpdesk.services.webhook_http import new_secret
from helpdesk.tenancy import tenant_scope, unscoped

MAIL_DOMAIN = "helpdesk.test"
BASE_URL = "https://help.example.test"


# --- SMTP sink ---------------------------------------------------------------------------------


@dataclass
class Mail:
    rcpt: list[str]
    message: EmailMessage
    accepted: bool

    def text(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""

    def html(self) -> str:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else ""


class SmtpSink:
    """aiosmtpd handler: records every DATA (accepted or not) and answers as told."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.replies: list[str] = []  # next DATA replies, then "250 OK"
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            reply = self.replies.pop(0) if self.replies else "250 OK"
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(parsed, EmailMessage)
            self.mails.append(Mail(list(envelope.rcpt_tos), parsed, reply.startswith("250")))
        return reply

    def reset(self) -> None:
        with self.lock:
            self.mails.clear()
            self.replies.clear()

    def delivered(self, to: str | None = None) -> list[Mail]:
        """Accepted mails, optionally only those for one address."""
        return [m for m in self.mails if m.accepted and (to is None or to in m.rcpt)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module", name="smtp_server")
def _smtp_server() -> Iterator[tuple[SmtpSink, int]]:
    sink, port = SmtpSink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest.fixture(name="smtp")
def _smtp(smtp_server: tuple[SmtpSink, int]) -> SmtpSink:
    smtp_server[0].reset()
    return smtp_server[0]


# --- HTTP receiver -------------------------------------------------------------------------------


@dataclass
class Hit:
    path: str
    headers: dict[str, str]
    body: bytes


Respond = Callable[[BaseHTTPRequestHandler, "Receiver"], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver.hits.append(Hit(self.path, dict(self.headers), body))
        receiver.arrived.set()
        respond = receiver.plan.pop(0) if receiver.plan else receiver.default
        respond(self, receiver)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def reply(status: int, body: bytes = b"ok", headers: dict[str, str] | None = None) -> Respond:
    """A response: status, body and extra headers."""

    def respond(handler: BaseHTTPRequestHandler, receiver: Receiver) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        if 200 <= status < 300:
            receiver.answered_ok += 1

    return respond


def hang(handler: BaseHTTPRequestHandler, receiver: Receiver) -> None:
    """Never answer: hold the connection until the test ends (or 30 s), then hang up."""
    receiver.release.wait(30)
    handler.close_connection = True


@dataclass
class Receiver:
    """A real HTTP server: answers with `plan` in order, then `default`; records every hit."""

    server: _Server
    default: Respond = field(default_factory=lambda: reply(200))
    plan: list[Respond] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    answered_ok: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def reset(self) -> None:
        self.default, self.plan, self.hits, self.answered_ok = reply(200), [], [], 0
        self.arrived.clear()
        self.release.set()  # let a hanging handler from a previous test finish
        self.release = threading.Event()


@pytest.fixture(scope="module", name="receiver_server")
def _receiver_server() -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    receiver = Receiver(server=server)
    server.receiver = receiver
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield receiver
    receiver.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(name="receiver")
def _receiver(receiver_server: Receiver) -> Receiver:
    receiver_server.reset()
    return receiver_server


# --- the app -------------------------------------------------------------------------------------


def notify_settings(settings: Settings, smtp_port: int, **changes: Any) -> Settings:
    """The test settings plus a real SMTP sink, loopback webhooks and a short timeout."""
    return dataclasses.replace(
        settings,
        smtp_url=f"smtp://127.0.0.1:{smtp_port}?timeout=5",
        mail_from=f"support@{MAIL_DOMAIN}",
        base_url=BASE_URL,
        webhook_allowed_networks="127.0.0.0/8",
        webhook_timeout=1,
        **changes,
    )


@pytest.fixture(scope="module", name="app")
def _notify_app(settings: Settings, smtp_server: tuple[SmtpSink, int]) -> Iterator[Flask]:
    app = create_app(notify_settings(settings, smtp_server[1]))
    app.config["TESTING"] = True
    yield app
    app.extensions["helpdesk.engine"].dispose()


@pytest.fixture(autouse=True, name="_notify_app_context")
def _app_context(app: Flask) -> Iterator[None]:
    """Jobs and after-commit enqueues need the app context, as in the worker."""
    with app.app_context():
        yield


def run_jobs(app: Flask, allow_failed: bool = False) -> int:
    """Run every queued notify job in-process (burst); return how many ran."""
    redis = app.extensions["helpdesk.redis"]
    queue = Queue("notify", connection=redis)
    failed = FailedJobRegistry(queue=queue)
    before = set(failed.get_job_ids())
    worker = SimpleWorker([queue], connection=redis)
    worker.work(burst=True)
    new = [queue.fetch_job(i) for i in set(failed.get_job_ids()) - before]
    if new and not allow_failed:
        details = [(j.func_name, j.latest_result().exc_string) for j in new if j is not None]
        pytest.fail(f"jobs failed: {details}")
    return int(worker.successful_job_count + worker.failed_job_count)


def queued(app: Flask) -> list[tuple[str, tuple[Any, ...]]]:
    """(function name, args) of the jobs waiting on the notify queue."""
    queue = Queue("notify", connection=app.extensions["helpdesk.redis"])
    return [(job.func_name, tuple(job.args)) for job in queue.get_jobs()]


# --- data ----------------------------------------------------------------------------------------


def add_endpoint(
    session: Session, org: Organization, url: str, events: list[str] | None = None
) -> WebhookEndpoint:
    with tenant_scope(session, org.id):
        endpoint = WebhookEndpoint(url=url, events=events or ["*"], secret=new_secret())
        session.add(endpoint)
        session.commit()
    return endpoint


def set_preference(
    session: Session,
    org: Organization,
    user: User,
    events: list[str],
    mode: str,
    minutes: int = 60,
    watch_all: bool = True,
) -> None:
    with tenant_scope(session, org.id):
        session.add(
            NotificationPreference(
                user_id=user.id,
                events=events,
                mode=mode,
                digest_minutes=minutes,
                watch_all=watch_all,
            )
        )
        session.commit()


def all_deliveries(session: Session, **where: Any) -> list[Delivery]:
    """Deliveries of every org (fresh from the database), oldest first."""
    session.expire_all()
    with unscoped(session):
        stmt = select(Delivery).filter_by(**where).order_by(Delivery.id)
        rows = list(session.scalars(stmt))
    session.rollback()
    return rows


def events_of(session: Session, kind: str | None = None) -> list[OutboxEvent]:
    session.expire_all()
    with unscoped(session):
        stmt = select(OutboxEvent).order_by(OutboxEvent.id)
        if kind is not None:
            stmt = stmt.where(OutboxEvent.kind == kind)
        rows = list(session.scalars(stmt))
    session.rollback()
    return rows


def by_target(rows: list[Delivery]) -> dict[str, str]:
    """{"user:3": "pending", "webhook:1": "pending", …}."""
    return {d.target: d.status for d in rows}


def user_target(member: Any) -> str:
    return f"user:{member.user_id}"
