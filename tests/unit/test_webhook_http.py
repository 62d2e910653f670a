"""Webhook transport against real HTTP(S) receivers on 127.0.0.1: SSRF guard, timeouts, signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from helpdesk.services.webhook_http import (
    UrlRefused,
    WebhookTransportError,
    check_url,
    new_secret,
    parse_networks,
    send,
    signature_headers,
)

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


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket nobody accepts on: any connection attempt waits in its backlog."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.setblocking(False)
    yield sock
    sock.close()


def assert_never_connected(listener: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        conn, _ = listener.accept()
        conn.close()


# --- parse_networks ---------------------------------------------------------------------------


def test_parse_networks_reads_a_comma_or_space_separated_list() -> None:
    nets = parse_networks(" 127.0.0.0/8, ::1/128 10.0.0.1 ")
    assert [str(n) for n in nets] == ["127.0.0.0/8", "::1/128", "10.0.0.1/32"]
    assert parse_networks("") == ()
    assert parse_networks("  , ") == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("10.0.0.0/33", "is not an IP network; write it like 10.0.0.0/8"),
        ("intranet", "'intranet' is not an IP network"),
        ("10.0.0.1/8", "has host bits set; did you mean 10.0.0.0/8?"),
    ],
)
def test_parse_networks_explains_bad_input(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_networks(spec)


# --- check_url: shape -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/hook", "use an https:// .*ftp: is not allowed"),
        ("javascript:alert(1)", "javascript: is not allowed"),
        ("file:///etc/passwd", "file: is not allowed"),
        ("example.com/hook", "no scheme is not allowed"),
        ("http://user:secret@example.com/hook", "remove the user name and password"),
        ("http://token@example.com/hook", "remove the user name and password"),
        ("http:///hook", "add a host name"),
        ("https://", "add a host name"),
        ("", "enter the URL"),
        ("http://example.com/" + "a" * 2000, "keep the URL under 2,000 characters"),
        ("http://exa mple.com/", "remove spaces"),
        ("http://example.com\\@127.0.0.1/", "backslashes"),
        ("http://example.com:0/", "port must be a number from 1 to 65535"),
        ("http://example.com:70000/", "port must be a number from 1 to 65535"),
        ("http://example.com:http/", "port must be a number from 1 to 65535"),
        ("http://[fe80::1%25eth0]/", "remove the IPv6 zone"),
        ("http://[12345::1]/", "is not a valid IPv6 address"),
        ("http://exa$mple.com/", "is not a valid host name"),
        ("http://a..b/", "is not a valid host name"),
    ],
)
def test_check_url_refuses_bad_shapes(url: str, message: str) -> None:
    for resolve in (True, False):
        with pytest.raises(UrlRefused, match=message):
            check_url(url, resolve=resolve)


def test_check_url_accepts_public_urls() -> None:
    check_url("https://hooks.example.com/in?token=abc", resolve=False)
    check_url("https://bücher.example/hook", resolve=False)
    check_url("http://93.184.215.14:8080/hook")  # numeric: resolving needs no DNS server
    check_url("https://[2606:4700:4700::1111]/hook")


# --- check_url: special addresses -------------------------------------------------------------

ODD_LOOPBACK_HOSTS = ["2130706433", "0x7f.1", "0177.0.0.1", "[::ffff:7f00:1]", "127.1"]
SPECIAL_HOSTS = {
    "loopback": ["127.0.0.1", "[::1]", *ODD_LOOPBACK_HOSTS],
    "private": ["10.1.2.3", "172.16.0.1", "192.168.1.1", "[fc00::1]", "[::ffff:10.0.0.1]"],
    "cloud metadata": ["169.254.169.254"],
    "link-local": ["[fe80::1]"],
    "carrier-grade NAT": ["100.64.0.1"],
    "unspecified": ["0.0.0.0", "[::]"],  # noqa: S104 - a target here, not a bind address
    "multicast": ["224.0.0.1", "[ff02::1]"],
    "broadcast": ["255.255.255.255", "240.0.0.1"],
    "documentation": ["192.0.2.1", "198.51.100.7", "203.0.113.9", "[2001:db8::1]"],
    "benchmarking": ["198.18.0.1"],
    "IPv4-compatible": ["[::7f00:1]"],
    "6to4": ["[2002:7f00:1::1]"],
    "NAT64": ["[64:ff9b::7f00:1]"],
    "Teredo": ["[2001::1]"],
}


@pytest.mark.parametrize(
    ("host", "kind"), [(host, kind) for kind, hosts in SPECIAL_HOSTS.items() for host in hosts]
)
def test_check_url_refuses_special_addresses(host: str, kind: str) -> None:
    for resolve in (True, False):
        with pytest.raises(UrlRefused, match=f"not a public address \\(.*{kind}") as caught:
            check_url(f"http://{host}/hook", resolve=resolve)
        assert "webhooks may only call public internet addresses" in str(caught.value)


def test_check_url_resolves_names() -> None:
    with pytest.raises(UrlRefused, match=r"localhost resolves to (127\.0\.0\.1|::1)"):
        check_url("http://localhost/hook")
    check_url("http://localhost/hook", resolve=False)  # a name is only judged once resolved
    with pytest.raises(UrlRefused, match=r"could not be resolved .* check the spelling"):
        check_url("https://no-such-host.invalid/hook")


def test_allowed_networks_let_special_addresses_through() -> None:
    check_url("http://10.1.2.3/hook", allowed=parse_networks("10.0.0.0/8"))
    check_url("http://[::ffff:10.1.2.3]/hook", allowed=parse_networks("10.0.0.0/8"))
    check_url("http://2130706433/hook", allowed=LOCAL)
    with pytest.raises(UrlRefused, match="private"):
        check_url("http://10.1.2.3/hook", allowed=parse_networks("10.9.0.0/16"))


# --- send: the SSRF guard happens before any connection ---------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", *ODD_LOOPBACK_HOSTS])
def test_send_refuses_loopback_before_connecting(host: str, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(UrlRefused, match="loopback"):
        send(f"http://{host}:{port}/hook", BODY, {}, timeout=1)
    assert_never_connected(listener)


def test_send_refuses_when_any_resolved_address_is_special(
    listener: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No DNS server here can answer with a public and a private address, so fake that answer.
    port = listener.getsockname()[1]
    answer = [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
    ]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: answer)
    with pytest.raises(UrlRefused, match=r"mixed\.example resolves to 127\.0\.0\.1"):
        send(f"http://mixed.example:{port}/hook", BODY, {}, timeout=1)
    assert_never_connected(listener)


def test_send_resolves_once_and_connects_to_the_pinned_address(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding resolver: the first answer is allowed, any later one would be internal.
    real_getaddrinfo = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        lookups.append(host)
        return real_getaddrinfo("127.0.0.1" if len(lookups) == 1 else "10.0.0.1", port, *args)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    response = send(receiver.url(host="rebind.example"), BODY, {}, timeout=1, allowed=LOCAL)
    assert response.status == 200
    assert lookups == ["rebind.example"]
    assert receiver.seen[0].headers["Host"] == f"rebind.example:{receiver.server.server_port}"


# --- send: responses --------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 204, 410, 500])
def test_send_returns_the_status(receiver: Receiver, status: int) -> None:
    receiver.respond = reply(status, b"" if status == 204 else b"receiver says hi")
    response = send(receiver.url("/hook?v=1"), BODY, {"X-Trace": "abc"}, timeout=1, allowed=LOCAL)
    assert response.status == status
    assert response.body_excerpt == ("" if status == 204 else "receiver says hi")
    assert 0 <= response.elapsed_ms < 1000
    [seen] = receiver.seen
    assert (seen.path, seen.body, seen.headers["X-Trace"]) == ("/hook?v=1", BODY, "abc")
    assert seen.headers["Host"] == f"127.0.0.1:{receiver.server.server_port}"


def test_send_reports_a_redirect_without_following_it(receiver: Receiver) -> None:
    receiver.respond = reply(302, b"", {"Location": receiver.url("/target")})
    response = send(receiver.url(), BODY, {}, timeout=1, allowed=LOCAL)
    assert response.status == 302
    assert [seen.path for seen in receiver.seen] == ["/hook"]


def test_send_keeps_a_short_lenient_excerpt_of_a_large_body(receiver: Receiver) -> None:
    receiver.respond = reply(200, b"\xff\xfe" + b"a" * 5_000_000)
    started = time.monotonic()
    response = send(receiver.url(), BODY, {}, timeout=1, allowed=LOCAL)
    assert time.monotonic() - started < 1
    assert len(response.body_excerpt) == 500
    assert response.body_excerpt.startswith("\ufffd\ufffdaaa")


def test_send_refuses_headers_the_transport_owns(receiver: Receiver) -> None:
    for name in ("Host", "content-length"):
        with pytest.raises(ValueError, match=f"do not set the {name} header"):
            send(receiver.url(), BODY, {name: "x"}, timeout=1, allowed=LOCAL)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        send(receiver.url(), BODY, {}, timeout=0, allowed=LOCAL)
    assert receiver.seen == []


# --- send: transport failures -----------------------------------------------------------------


@pytest.mark.parametrize("respond", [sleep_then_reply, drip_body, drip_headers])
def test_send_gives_up_at_the_deadline(receiver: Receiver, respond: Respond) -> None:
    receiver.respond = respond
    started = time.monotonic()
    with pytest.raises(WebhookTransportError, match="timed out after 1 s while sending"):
        send(receiver.url(), BODY, {}, timeout=1, allowed=LOCAL)
    assert time.monotonic() - started < 2


def test_send_reports_a_refused_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again below, so nothing listens there
    with pytest.raises(WebhookTransportError, match=f"port {port} refused the connection"):
        send(f"http://127.0.0.1:{port}/hook", BODY, {}, timeout=1, allowed=LOCAL)


def test_send_reports_a_hang_up(receiver: Receiver) -> None:
    receiver.respond = hang_up
    with pytest.raises(WebhookTransportError, match="closed the connection without sending"):
        send(receiver.url(), BODY, {}, timeout=1, allowed=LOCAL)


def test_send_reports_a_dns_failure() -> None:
    with pytest.raises(WebhookTransportError, match=r"DNS lookup for no-such-host\.invalid"):
        send("https://no-such-host.invalid/hook", BODY, {}, timeout=1)


# --- send over TLS ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway CA and a server certificate for DNS:localhost, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n"
    )
    ca = "req -x509 -keyout ca.key -out ca.pem -days 2 -addext keyUsage=critical,keyCertSign"
    csr = "req -keyout server.key -out server.csr -subj /CN=localhost"
    sign = "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
    commands = [
        [*ca.split(), *ec, "-subj", "/CN=Helpdesk test CA"],
        [*csr.split(), *ec],
        [*sign.split(), "-extfile", "ext.cnf", "-out", "server.pem"],
    ]
    for args in commands:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)  # noqa: S603,S607
    return d


@pytest.fixture
def tls_receiver(certs: Path) -> Iterator[Receiver]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs / "server.pem", certs / "server.key")
    yield from _serve(context)


def test_send_over_https_verifies_the_url_hostname(
    tls_receiver: Receiver, certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs / "ca.pem"))  # trust the test CA
    response = send(tls_receiver.url(host="localhost", scheme="https"), BODY, {}, allowed=LOCAL)
    assert response.status == 200
    assert tls_receiver.sni == ["localhost"]
    assert tls_receiver.seen[0].headers["Host"] == f"localhost:{tls_receiver.server.server_port}"
    with pytest.raises(WebhookTransportError, match=r"certificate of 127\.0\.0\.1 was rejected"):
        send(tls_receiver.url(scheme="https"), BODY, {}, timeout=1, allowed=LOCAL)
    assert len(tls_receiver.seen) == 1


def test_send_over_https_refuses_an_untrusted_certificate(
    tls_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    url = tls_receiver.url(host="localhost", scheme="https")
    with pytest.raises(WebhookTransportError, match="certificate of localhost was rejected"):
        send(url, BODY, {}, timeout=1, allowed=LOCAL)
    assert tls_receiver.seen == []


def test_send_over_https_times_out_a_silent_handshake(listener: socket.socket) -> None:
    started = time.monotonic()
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/hook"
    with pytest.raises(WebhookTransportError, match="timed out after 1 s while doing the TLS"):
        send(url, BODY, {}, timeout=1, allowed=LOCAL)
    assert time.monotonic() - started < 2


# --- signing ----------------------------------------------------------------------------------


def verify_from_spec(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """Check a Standard Webhooks signature from the spec, without the standardwebhooks package."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(sig, f"v1,{expected}") for sig in headers["webhook-signature"].split()
    )


def test_new_secret_is_32_random_bytes_in_whsec_form() -> None:
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"), validate=True)) == 32
    assert first != second


def test_signature_headers_verify_independently_and_with_the_library() -> None:
    secret = new_secret()
    now = datetime.now(UTC)
    headers = signature_headers([secret], "msg_1", now, BODY)
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(now.timestamp()))
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "helpdesk-webhooks/1"
    assert verify_from_spec(secret, headers, BODY)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
    assert not verify_from_spec(new_secret(), headers, BODY)
    assert not verify_from_spec(secret, headers, BODY + b" ")


def test_signature_matches_the_published_example() -> None:
    headers = signature_headers(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        b'{"test": 2432232314}',
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_two_secrets_give_two_signatures_that_each_verify() -> None:
    old, new = new_secret(), new_secret()
    headers = signature_headers([old, new], "msg_2", datetime.now(UTC), BODY)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert verify_from_spec(secret, headers, BODY)
        Webhook(secret).verify(BODY, headers)


def test_a_non_utc_timestamp_signs_the_same_instant() -> None:
    secret = new_secret()
    local = datetime.now(timezone(timedelta(hours=5, minutes=30)))
    headers = signature_headers([secret], "msg_3", local, BODY)
    assert headers["webhook-timestamp"] == str(int(local.timestamp()))
    Webhook(secret).verify(BODY, headers)


def test_signed_delivery_verifies_at_the_receiver(receiver: Receiver) -> None:
    secret = new_secret()
    headers = signature_headers([secret], "msg_4", datetime.now(UTC), BODY)
    assert send(receiver.url(), BODY, headers, timeout=1, allowed=LOCAL).status == 200
    [seen] = receiver.seen
    assert Webhook(secret).verify(seen.body, seen.headers) == json.loads(BODY)


@pytest.mark.parametrize(
    ("secrets", "msg_id", "timestamp", "body", "message"),
    [
        ("whsec_abc", "m", datetime.now(UTC), BODY, "not a single string"),
        ([], "m", datetime.now(UTC), BODY, "non-empty list of signing secrets"),
        (["sk_live_abc"], "m", datetime.now(UTC), BODY, "secret #1 must start with 'whsec_'"),
        (["whsec_!!notbase64"], "m", datetime.now(UTC), BODY, "secret #1 is not valid base64"),
        (["whsec_c2hvcnQ="], "m", datetime.now(UTC), BODY, "secret #1 is too short"),
        (["whsec_" + "A" * 44], "", datetime.now(UTC), BODY, "message id must be non-empty"),
        (["whsec_" + "A" * 44], "a\nb", datetime.now(UTC), BODY, "printable ASCII"),
        (["whsec_" + "A" * 44], "m", datetime.now(), BODY, "timezone-aware"),
        (["whsec_" + "A" * 44], "m", datetime.now(UTC), b"\xff", "UTF-8 encoded JSON"),
    ],
)
def test_signature_headers_explain_bad_input(
    secrets: Any, msg_id: str, timestamp: datetime, body: bytes, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        signature_headers(secrets, msg_id, timestamp, body)
    for secret in secrets if isinstance(secrets, list) else []:
        assert secret not in str(caught.value)  # a secret never ends up in logs via the error
