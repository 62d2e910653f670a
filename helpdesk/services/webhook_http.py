"""Outbound webhook transport: an SSRF-guarded HTTP POST and Standard Webhooks signing.

Why: customers choose the URL, but the worker calling it sits inside our network, so a URL that
names or resolves to a loopback, private, link-local or metadata address would let a customer
drive internal services. Every call therefore checks the URL's shape; resolves the host once and
refuses if ANY resolved address is special (checking resolved addresses, not text, catches
spellings like ``2130706433`` or ``0x7f.1``); connects to that pinned address (no second lookup,
so no DNS-rebinding window) while sending the URL's Host header and verifying TLS for its host
name; never follows redirects; and holds one deadline over connect, TLS, send and read, so a
slow-drip server cannot hold a worker past ``timeout``. ``allowed`` networks are for development
and tests; production passes none. The system resolver's own timeout bounds DNS resolution.
"""

from __future__ import annotations

import base64
import http.client
import io
import ipaddress
import math
import re
import socket
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from secrets import token_bytes
from typing import Any, cast
from urllib.parse import SplitResult, urlsplit

from standardwebhooks.webhooks import Webhook

Network = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

URL_MAX = 2000
BODY_READ_MAX = 64 * 1024
EXCERPT_CHARS = 500
USER_AGENT = "helpdesk-webhooks/1"
SECRET_PREFIX = "whsec_"  # noqa: S105 - a format prefix, not a secret

# Non-public ranges by kind (IANA special-purpose registries). The most specific match names
# the kind; the stdlib ipaddress properties back this table up in _special_kind().
_SPECIAL_RANGES = {
    "unspecified": "0.0.0.0/8 ::/128",
    "loopback": "127.0.0.0/8 ::1/128",
    "private": "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7",
    "carrier-grade NAT": "100.64.0.0/10",
    "link-local, incl. cloud metadata": "169.254.0.0/16",
    "link-local": "fe80::/10 fec0::/10",
    "IETF protocol": "192.0.0.0/24 100::/64 5f00::/16",
    "documentation": "192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 2001:db8::/32 3fff::/20",
    "benchmarking": "198.18.0.0/15",
    "multicast": "224.0.0.0/4 ff00::/8",
    "reserved or broadcast": "240.0.0.0/4",
    "IPv4-compatible": "::/96 ::ffff:0:0:0/96",
    "6to4, NAT64 or Teredo": "192.88.99.0/24 2002::/16 64:ff9b::/96 64:ff9b:1::/48 2001::/23",
}
_SPECIAL_NETWORKS = tuple(
    (ipaddress.ip_network(net), kind)
    for kind, nets in _SPECIAL_RANGES.items()
    for net in nets.split()
)
_HOST_RE = re.compile(r"^[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?$")
_NUMERIC_V4_RE = re.compile(r"^[0-9a-fx.]+$")
_BAD_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class UrlRefused(ValueError):
    """The URL may not be called; str(exc) is a message a person can act on."""


class WebhookTransportError(Exception):
    """The call did not produce an HTTP response (DNS, connect, TLS, timeout, bad HTTP)."""


@dataclass
class WebhookResponse:
    status: int
    body_excerpt: str
    elapsed_ms: int


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str


def parse_networks(spec: str) -> tuple[Network, ...]:
    """Parse "127.0.0.0/8, ::1/128" (commas or spaces) into networks; "" gives ()."""
    networks: list[Network] = []
    for item in re.split(r"[,\s]+", spec.strip()):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError:
            try:
                loose = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"{item!r} is not an IP network; write it like 10.0.0.0/8 or ::1/128"
                ) from None
            raise ValueError(f"{item!r} has host bits set; did you mean {loose}?") from None
    return tuple(networks)


def check_url(url: str, allowed: Sequence[Network] = (), resolve: bool = True) -> None:
    """Refuse a URL the webhook sender must not call (shape, and with resolve its addresses)."""
    target = _parse_url(url)
    if resolve:
        try:
            _resolve_allowed(target, allowed)
        except socket.gaierror as exc:
            raise UrlRefused(
                f"the host {target.host} could not be resolved ({exc.strerror}); "
                "check the spelling and that its DNS records exist"
            ) from None
        return
    literal = _literal_ip(target.host)
    if literal is not None:
        _refuse_if_special(target.host, [literal], allowed)


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
    target = _parse_url(url)
    started = time.monotonic()
    deadline = started + timeout
    try:
        addresses = _resolve_allowed(target, allowed)
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


def new_secret() -> str:
    """Return a fresh signing secret in Standard Webhooks form ("whsec_" + base64 of 32 bytes)."""
    return SECRET_PREFIX + base64.b64encode(token_bytes(32)).decode("ascii")


def signature_headers(
    secrets: Sequence[str], msg_id: str, timestamp: datetime, body: bytes
) -> dict[str, str]:
    """Return the Standard Webhooks headers, one v1 signature per secret (two during rotation)."""
    if isinstance(secrets, str) or not secrets:
        raise ValueError("pass a non-empty list of signing secrets (not a single string)")
    if not msg_id or not msg_id.isascii() or not msg_id.isprintable() or " " in msg_id:
        raise ValueError("the message id must be non-empty printable ASCII without spaces")
    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError("the timestamp must be timezone-aware (use datetime.now(UTC))")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the webhook body must be UTF-8 encoded JSON") from None
    # Webhook.sign() stamps the datetime as UTC without converting it, so convert first.
    when = timestamp.astimezone(UTC)
    signatures = [
        _webhook(secret, n).sign(msg_id, when, payload) for n, secret in enumerate(secrets)
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(math.floor(when.timestamp())),
        "webhook-signature": " ".join(signatures),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }


def _webhook(secret: str, index: int) -> Webhook:
    """Build a signer, refusing a secret that is not "whsec_" + base64 (never echoing it)."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"signing secret #{index + 1} must start with {SECRET_PREFIX!r}")
    try:
        raw = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError(f"signing secret #{index + 1} is not valid base64") from None
    if len(raw) < 16:
        raise ValueError(
            f"signing secret #{index + 1} is too short; generate one with new_secret()"
        )
    return Webhook(raw)


def _parse_url(url: str) -> _Target:
    """Check the URL's shape and return where to connect; raise UrlRefused otherwise."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("enter the URL to send webhooks to, like https://example.com/hooks")
    if len(url) > URL_MAX:
        raise UrlRefused(f"keep the URL under {URL_MAX:,} characters (it has {len(url):,})")
    if _BAD_URL_CHARS.search(url):
        raise UrlRefused("remove spaces, backslashes and control characters from the URL")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise UrlRefused("the host in [brackets] is not a valid IPv6 address") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = f"{scheme}:" if scheme else "no scheme"
        raise UrlRefused(f"use an https:// (or http://) URL; {shown} is not allowed")
    if "@" in parts.netloc:
        raise UrlRefused(
            "remove the user name and password from the URL; receivers authenticate "
            "webhooks by their signature"
        )
    host = _clean_host(parts)
    try:
        port = parts.port
    except ValueError:
        raise UrlRefused("the port must be a number from 1 to 65535") from None
    if port == 0:
        raise UrlRefused("the port must be a number from 1 to 65535")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _clean_host(parts: SplitResult) -> str:
    """Return the ASCII host name or IP literal of the URL, or raise UrlRefused."""
    host = parts.hostname or ""
    if not host:
        raise UrlRefused("add a host name to the URL, like https://example.com/hooks")
    if "%" in host:
        raise UrlRefused("remove the IPv6 zone (%...) from the host; use a public address")
    if ":" in host:
        try:
            return str(IPv6Address(host))
        except ValueError:
            raise UrlRefused(f"[{host}] is not a valid IPv6 address") from None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise UrlRefused(f"{host!r} is not a valid host name") from None
    if not _HOST_RE.match(ascii_host):
        raise UrlRefused(f"{host!r} is not a valid host name")
    return ascii_host


def _literal_ip(host: str) -> IPAddress | None:
    """Return the address a numeric host spells (in any inet_aton spelling), else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_V4_RE.match(host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _resolve_allowed(target: _Target, allowed: Sequence[Network]) -> list[tuple[int, Any]]:
    """Resolve the host once; return (family, sockaddr) pairs, refusing any special address."""
    infos = socket.getaddrinfo(
        target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    addresses: list[tuple[int, Any]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if (family, sockaddr) not in addresses:
            addresses.append((family, sockaddr))
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    _refuse_if_special(target.host, [ipaddress.ip_address(a[1][0]) for a in addresses], allowed)
    return addresses


def _refuse_if_special(host: str, ips: list[IPAddress], allowed: Sequence[Network]) -> None:
    """Raise UrlRefused naming the first address that is special and not inside `allowed`."""
    for ip in ips:
        plain = ip.ipv4_mapped if isinstance(ip, IPv6Address) and ip.ipv4_mapped else ip
        if any(plain in net or ip in net for net in allowed):
            continue
        kind = _special_kind(plain)
        if kind is not None:
            where = host if host == str(ip) else f"{host} resolves to {ip}, which"
            raise UrlRefused(
                f"{where} is not a public address ({kind}); "
                "webhooks may only call public internet addresses"
            )


def _special_kind(ip: IPAddress) -> str | None:
    """Name the kind of non-public address ip is, or None when it is publicly routable."""
    matches = [(net.prefixlen, kind) for net, kind in _SPECIAL_NETWORKS if ip in net]
    if matches:
        return max(matches)[1]
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified or ip.is_loopback:
        return "reserved"
    if ip.is_link_local or ip.is_private or not ip.is_global:
        return "not globally routable"
    return None


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
