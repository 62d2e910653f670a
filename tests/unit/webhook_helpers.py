"""Shared pieces of the webhook tests: a real HTTP receiver on 127.0.0.1 and a silent listener.

Import the fixtures into a test module (``from tests.unit.webhook_helpers import …  # noqa``);
they are named ``receiver`` and ``listener``.
"""

from __future__ import annotations

import socket
import ssl
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from helpdesk.services.webhook_guard import parse_networks

LOCAL = parse_networks("127.0.0.0/8, ::1/128")
BODY = b'{"event": "ticket.created", "ticket": 7}'

Respond = Callable[["_Handler", "Receiver"], None]


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: nothing outlives a test
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # the client gave up: expected
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        receiver.seen.append(Seen(self.path, dict(self.headers), body))
        receiver.respond(self, receiver)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Receiver:
    """A real HTTP server whose reply each test chooses; it records every request."""

    server: _Server
    respond: Respond
    seen: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hook", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.server.server_address[1]}{path}"


def reply(status: int, body: bytes = b"ok", headers: dict[str, str] | None = None) -> Respond:
    def respond(handler: _Handler, receiver: Receiver) -> None:
        handler.send_response(status)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    return respond


def sleep_then_reply(handler: _Handler, receiver: Receiver) -> None:
    receiver.stop.wait(5)
    reply(200)(handler, receiver)


def drip_body(handler: _Handler, receiver: Receiver) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "100")
    handler.end_headers()
    for _ in range(100):
        handler.wfile.write(b"x")
        handler.wfile.flush()
        if receiver.stop.wait(0.2):
            return


def drip_headers(handler: _Handler, receiver: Receiver) -> None:
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 100:
        handler.wfile.write(bytes([byte]))
        handler.wfile.flush()
        if receiver.stop.wait(0.2):
            return


def hang_up(handler: _Handler, receiver: Receiver) -> None:
    handler.close_connection = True


def serve(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    server = _Server(("127.0.0.1", 0), _Handler)
    receiver = Receiver(server=server, respond=reply(200))
    server.receiver = receiver
    if tls is not None:
        tls.sni_callback = lambda sock, name, ctx: receiver.sni.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield receiver
    receiver.stop.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(name="receiver")
def _receiver() -> Iterator[Receiver]:
    yield from serve()


@pytest.fixture(name="listener")
def _listener() -> Iterator[socket.socket]:
    """A listening socket nobody accepts on: any connection attempt waits in its backlog."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def assert_never_connected(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        conn, _ = listener.accept()
        conn.close()
