"""Outbound webhook transport: an SSRF-guarded HTTP POST.

Why: customers choose the URL, but the worker calling it sits inside our network. Every call
therefore checks the URL's shape and resolves the host once, refusing if ANY resolved address is
special (webhook_guard); connects to that pinned address (no second lookup, so no DNS-rebinding
window) while sending the URL's Host header and verifying TLS for its host name; never follows
redirects; and holds one deadline over connect, TLS, send and read, so a slow-drip server cannot
hold a worker past ``timeout``. ``allowed`` networks are for development and tests; production
passes none. The system resolver's own timeout bounds DNS resolution.

The guard (check_url, parse_networks, UrlRefused) and the signing (new_secret,
signature_headers) live in webhook_guard and webhook_signing and are re-exported here.
"""

from __future__ import annotations

import http.client
import io
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from helpdesk.services.webhook_guard import (
    URL_MAX,
    IPAddress,
    Network,
    UrlRefused,
    check_url,
    parse_networks,
    parse_target,
    resolve_target,
)
from helpdesk.services.webhook_signing import (
    SECRET_PREFIX,
    USER_AGENT,
    new_secret,
    signature_headers,
)

__all__ = [
    "BODY_READ_MAX",
    "EXCERPT_CHARS",
    "SECRET_PREFIX",
    "URL_MAX",
    "USER_AGENT",
    "IPAddress",
    "Network",
    "UrlRefused",
    "WebhookResponse",
    "WebhookTransportError",
    "check_url",
    "new_secret",
    "parse_networks",
    "send",
    "signature_headers",
]

BODY_READ_MAX = 64 * 1024
EXCERPT_CHARS = 500
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class WebhookTransportError(Exception):
    """The call did not produce an HTTP response (DNS, connect, TLS, timeout, bad HTTP)."""


@dataclass
class WebhookResponse:
    status: int
    body_excerpt: str
    elapsed_ms: int


def send(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = 10.0,
    allowed: Sequence[Network] = (),
) -> WebhookResponse:
    """POST body to url via its pinned, checked address; never follow redirects."""
    if timeout <= 0:
        raise ValueError("timeout must be a positive number of seconds")
    clean_headers = _clean_headers(headers)
    target = parse_target(url)
    started = time.monotonic()
    deadline = started + timeout
    try:
        addresses = resolve_target(target, allowed)
    except socket.gaierror as exc:
        raise WebhookTransportError(
            f"DNS lookup for {target.host} failed: {exc.strerror}"
        ) from None
    conn_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    conn = conn_class(target.host, target.port, addresses, deadline)
    try:
        conn.request("POST", target.path, body=body, headers=clean_headers)
        response = conn.getresponse()
        data = response.read(BODY_READ_MAX)
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise _transport_error(exc, target.host, timeout, conn.phase) from None
    finally:
        conn.release()
    return WebhookResponse(
        status=status,
        body_excerpt=data.decode("utf-8", errors="replace")[:EXCERPT_CHARS],
        elapsed_ms=round((time.monotonic() - started) * 1000),
    )


def _transport_error(
    exc: OSError | http.client.HTTPException, host: str, timeout: float, phase: str
) -> WebhookTransportError:
    """Turn a low-level failure into an error that says what went wrong and where."""
    if isinstance(exc, TimeoutError):
        message = f"{host} timed out after {timeout:g} s while {phase}"
    elif isinstance(exc, ssl.SSLCertVerificationError):
        message = f"the TLS certificate of {host} was rejected: {exc.verify_message}"
    elif isinstance(exc, ssl.SSLError):
        message = f"the TLS handshake with {host} failed: {exc.reason or exc}"
    elif isinstance(exc, http.client.RemoteDisconnected):
        message = f"{host} closed the connection without sending a response"
    elif isinstance(exc, http.client.HTTPException):
        message = f"{host} sent a malformed HTTP response ({type(exc).__name__}: {exc})"
    else:
        message = f"network error while {phase} with {host}: {exc.strerror or exc}"
    return WebhookTransportError(message)


def _clean_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Copy caller headers, refusing the ones the transport must own."""
    for name in headers:
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"do not set the {name} header; the transport sets it from the URL")
    return dict(headers)


def _remaining(deadline: float) -> float:
    """Seconds left before the deadline; raise TimeoutError when none are."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the webhook deadline passed")
    return left


class _DeadlineSocket:
    """A connected socket whose every send and receive shares one overall deadline.

    A per-operation socket timeout alone lets a server that drips one byte per second hold the
    connection forever; re-arming the timeout with the time left bounds the whole exchange.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline

    def arm(self) -> None:
        self.sock.settimeout(_remaining(self.deadline))

    def sendall(self, data: bytes) -> None:
        self.arm()
        self.sock.sendall(data)

    def makefile(self, mode: str = "rb") -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        """Do nothing: http.client "closes" while its response still reads; release() closes."""


class _DeadlineReader(io.RawIOBase):
    """The raw byte stream http.client reads responses from, bounded by the deadline."""

    def __init__(self, owner: _DeadlineSocket) -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.owner.arm()
        return self.owner.sock.recv_into(buffer)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to already-checked addresses; the host name only names the site."""

    def __init__(
        self, host: str, port: int, addresses: list[tuple[int, Any]], deadline: float
    ) -> None:
        super().__init__(host, port)
        self.addresses = addresses
        self.deadline = deadline
        self.phase = "connecting"
        self.raw: socket.socket | None = None

    def connect(self) -> None:
        self.use(self.open_tcp())

    def use(self, sock: socket.socket) -> None:
        """Adopt a connected socket, wrapped so all I/O on it shares the deadline."""
        self.raw = sock
        self.sock = cast(socket.socket, _DeadlineSocket(sock, self.deadline))
        self.phase = "sending the request or waiting for the response"

    def release(self) -> None:
        """Close the connection and its socket."""
        self.close()
        if self.raw is not None:
            self.raw.close()
            self.raw = None

    def open_tcp(self) -> socket.socket:
        """Connect to the first pinned address that answers (no further DNS lookup)."""
        error: OSError | None = None
        for family, sockaddr in self.addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(_remaining(self.deadline))
                sock.connect(sockaddr)
            except BaseException as exc:
                sock.close()
                if isinstance(exc, TimeoutError) or not isinstance(exc, OSError):
                    raise
                error = exc
                continue
            return sock
        if isinstance(error, ConnectionRefusedError):
            raise WebhookTransportError(
                f"{self.host} port {self.port} refused the connection; "
                "is the receiver running and listening on that port?"
            )
        assert error is not None
        raise error


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """HTTPS to a pinned address, verifying the certificate for the URL's host name (SNI)."""

    default_port = http.client.HTTPS_PORT

    def connect(self) -> None:
        raw = self.open_tcp()
        self.phase = "doing the TLS handshake"
        try:
            raw.settimeout(_remaining(self.deadline))
            tls = ssl.create_default_context().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.use(tls)
