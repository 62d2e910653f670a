"""Webhook transport against real HTTP(S) receivers on 127.0.0.1: responses, timeouts, TLS.

The SSRF guard is tested in test_webhook_guard, signing in test_webhook_signing.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpdesk.services.webhook_http import WebhookTransportError, send
from tests.unit.webhook_helpers import (  # noqa: F401 - fixtures
    BODY,
    LOCAL,
    Receiver,
    Respond,
    _listener,
    _receiver,
    drip_body,
    drip_headers,
    hang_up,
    reply,
    serve,
    sleep_then_reply,
)

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
    yield from serve(context)


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
