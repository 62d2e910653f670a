"""SMTP sending against a real aiosmtpd server on loopback (plain, STARTTLS, implicit TLS).

The settings are tested in test_smtp_config, message building in test_mail_messages.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from helpdesk.services.mail_transport import (
    PermanentMailError,
    TransientMailError,
    parse_smtp_url,
    send_mail,
)
from tests.unit.mail_helpers import THREAD, make_mail

PASSWORD = "Pw-s3cret/with:odd@chars"


class Recorder:
    """aiosmtpd handler that keeps what it accepted and answers as the test tells it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], bytes]] = []
        self.data_reply = "250 OK"
        self.rcpt_replies: dict[str, str] = {}

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply.startswith("250"):
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return self.data_reply

    def message(self, index: int = -1) -> EmailMessage:
        parsed = email.message_from_bytes(self.received[index][2], policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Server:
    handler: Recorder
    port: int

    def url(self, tail: str = "") -> str:
        return f"smtp://127.0.0.1:{self.port}{tail}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def check_login(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"helpdesk@example.com"
    ok = ok and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    controllers: list[Controller] = []

    def start(**kwargs: Any) -> Server:
        handler, port = Recorder(), free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
        controller.start()
        controllers.append(controller)
        return Server(handler, port)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def server_tls(tls_files: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_files)
    return context


# --- sending --------------------------------------------------------------------------------


def test_send_delivers_both_parts(server: Server) -> None:
    send_mail(parse_smtp_url(server.url()), make_mail(to=["dana@example.com", "eli@example.com"]))
    mail_from, rcpt_tos, _ = server.handler.received[0]
    assert (mail_from, rcpt_tos) == ("support@example.com", ["dana@example.com", "eli@example.com"])
    message = server.handler.message()
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    assert html is not None and "<p>HTML body</p>" in html.get_content()
    assert text is not None and "Plain text body" in text.get_content()
    assert message["From"].addresses[0].display_name == 'Société Générale, "Support"'
    assert message["Message-ID"] == "<helpdesk.comment.7@support.example.com>"
    assert message["In-Reply-To"] == THREAD
    assert message["References"].split()[0] == THREAD
    assert message["Auto-Submitted"] == "auto-generated"


def test_plain_smtp_builds_no_tls_context(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading every system CA certificate cost ~30 ms of worker CPU per email, TLS or not."""

    def refuse(*_args: Any, **_kwargs: Any) -> ssl.SSLContext:
        raise AssertionError("a TLS context was built for a plain SMTP connection")

    monkeypatch.setattr(ssl, "create_default_context", refuse)
    send_mail(parse_smtp_url(server.url()), make_mail())
    assert len(server.handler.received) == 1


def test_4xx_is_transient_and_the_next_call_recovers(server: Server) -> None:
    config = parse_smtp_url(server.url())
    server.handler.data_reply = "451 try again"
    with pytest.raises(TransientMailError, match="451 try again"):
        send_mail(config, make_mail())
    assert server.handler.received == []
    server.handler.data_reply = "250 OK"
    send_mail(config, make_mail())
    assert len(server.handler.received) == 1


def test_5xx_for_the_recipient_is_permanent(server: Server) -> None:
    server.handler.rcpt_replies["dana@example.com"] = "550 no such user"
    with pytest.raises(PermanentMailError, match=r"dana@example\.com \(550 no such user\)"):
        send_mail(parse_smtp_url(server.url()), make_mail())
    assert server.handler.received == []


@pytest.mark.parametrize(
    ("reply", "error"), [("550 gone", PermanentMailError), ("450 busy", TransientMailError)]
)
def test_one_refused_recipient_among_several(
    server: Server, reply: str, error: type[Exception]
) -> None:
    server.handler.rcpt_replies["eli@example.com"] = reply
    with pytest.raises(
        error, match=f"delivered to the others but refused: eli@example.com .{reply}"
    ):
        send_mail(
            parse_smtp_url(server.url()), make_mail(to=["dana@example.com", "eli@example.com"])
        )
    assert [rcpt for _, rcpt, _ in server.handler.received] == [["dana@example.com"]]


def test_nothing_listening_is_transient() -> None:
    with pytest.raises(TransientMailError, match="connection refused"):
        send_mail(parse_smtp_url(f"smtp://127.0.0.1:{free_port()}?timeout=2"), make_mail())


def test_silent_server_times_out_as_transient() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()  # accepts the TCP connection but never greets
        url = f"smtp://127.0.0.1:{listener.getsockname()[1]}?timeout=0.3"
        with pytest.raises(TransientMailError, match=r"no answer within 0\.3 seconds"):
            send_mail(parse_smtp_url(url), make_mail())


def test_malformed_mail_is_permanent_before_connecting() -> None:
    config = parse_smtp_url(f"smtp://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(PermanentMailError, match=r"malformed: .*Subject contains a line break"):
        send_mail(config, make_mail(subject="a\r\nBcc: victim@example.org"))


def test_login(start_server: Callable[..., Server]) -> None:
    server = start_server(authenticator=check_login, auth_require_tls=False)
    user = "helpdesk%40example.com"
    password = PASSWORD.replace("/", "%2F").replace(":", "%3A").replace("@", "%40")
    send_mail(parse_smtp_url(server.url().replace("//", f"//{user}:{password}@")), make_mail())
    assert len(server.handler.received) == 1
    wrong = server.url().replace("//", f"//{user}:{password}-wrong@")
    with pytest.raises(PermanentMailError) as caught:
        send_mail(parse_smtp_url(wrong), make_mail())
    text = f"{caught.value} {caught.value!r} {caught.value.__cause__}"
    assert "login refused (535" in text
    assert "check the user name and password" in text
    assert "Pw-s3cret" not in text
    assert len(server.handler.received) == 1


def test_starttls_required_but_not_offered_never_sends_in_clear(server: Server) -> None:
    with pytest.raises(PermanentMailError, match="STARTTLS extension not supported"):
        send_mail(parse_smtp_url(server.url("?security=starttls")), make_mail())
    assert server.handler.received == []


def test_untrusted_certificate_is_refused(
    start_server: Callable[..., Server], server_tls: ssl.SSLContext
) -> None:
    server = start_server(tls_context=server_tls, require_starttls=True)
    with pytest.raises(PermanentMailError, match="TLS certificate is not trusted"):
        send_mail(parse_smtp_url(server.url("?security=starttls")), make_mail())
    assert server.handler.received == []


def test_starttls_with_login_and_implicit_tls(
    start_server: Callable[..., Server],
    server_tls: ssl.SSLContext,
    tls_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))  # trust the test certificate
    starttls = start_server(
        tls_context=server_tls, require_starttls=True, authenticator=check_login
    )
    config = replace(
        parse_smtp_url(starttls.url("?security=starttls")),
        username="helpdesk@example.com",
        password=PASSWORD,
    )
    send_mail(config, make_mail())
    assert len(starttls.handler.received) == 1
    implicit = start_server(ssl_context=server_tls)
    send_mail(parse_smtp_url(f"smtps://127.0.0.1:{implicit.port}"), make_mail())
    assert implicit.handler.message()["Message-ID"] == make_mail().message_id
