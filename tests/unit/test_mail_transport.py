"""SMTP transport against a real aiosmtpd server on loopback (plain, STARTTLS, implicit TLS)."""

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
    MailConfigError,
    OutgoingMail,
    PermanentMailError,
    SmtpConfig,
    TransientMailError,
    build_message,
    make_message_id,
    parse_smtp_url,
    send_mail,
    ticket_thread_id,
)

PASSWORD = "Pw-s3cret/with:odd@chars"
THREAD = "<helpdesk.ticket.alpha.42@support.example.com>"


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


def make_mail(**changes: Any) -> OutgoingMail:
    mail = OutgoingMail(
        to=["dana@example.com"],
        subject="[#42] Printer on fire — ça brûle",
        text="Plain text body\nsecond line",
        html="<p>HTML body</p>",
        from_addr="support@example.com",
        from_name='Société Générale, "Support"',
        message_id=make_message_id("comment", 7, "support.example.com"),
        in_reply_to=THREAD,
        references=[THREAD, "<helpdesk.comment.6@support.example.com>"],
    )
    return replace(mail, **changes)


# --- parse_smtp_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, None, None, "none", 10.0)),
        ("smtps://mail.example.com", ("mail.example.com", 465, None, None, "ssl", 10.0)),
        (
            "smtp://me%40example.com:p%2Fw%3A%40@Mail.Example.com:587?security=StartTLS&timeout=2.5",
            ("mail.example.com", 587, "me@example.com", "p/w:@", "starttls", 2.5),
        ),
        ("smtps://u:p@mail.example.com:2465/", ("mail.example.com", 2465, "u", "p", "ssl", 10.0)),
        ("  SMTP://[::1]:1025?security=none \n", ("::1", 1025, None, None, "none", 10.0)),
    ],
)
def test_parse_smtp_url(url: str, expected: tuple[object, ...]) -> None:
    config = parse_smtp_url(url)
    got = (config.host, config.port, config.username, config.password, config.security)
    assert (*got, config.timeout) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "SMTP_URL is empty"),
        ("http://mail.example.com", "must start with smtp:// or smtps://"),
        ("mail.example.com:25", "must start with smtp:// or smtps://"),
        ("smtp:mail.example.com", "must start with smtp:// or smtps://"),
        ("smtp://", "has no host"),
        ("smtp://:25", "has no host"),
        ("smtp://mail.example.com:99999", "port must be a number from 1 to 65535"),
        ("smtp://mail.example.com:0", "port must be a number from 1 to 65535"),
        ("smtp://mail.example.com:2x5", "port must be a number"),
        ("smtp://mail.example.com/inbox", "must not have a path"),
        ("smtp://mail.example.com?security=tls", "security must be none or starttls"),
        ("smtps://mail.example.com?security=starttls", "smtps:// always uses implicit TLS"),
        ("smtp://mail.example.com?timeout=0", "timeout must be a number of seconds"),
        ("smtp://mail.example.com?timeout=soon", "timeout must be a number of seconds"),
        ("smtp://mail.example.com?timeout=nan", "timeout must be a number of seconds"),
        ("smtp://mail.example.com?tls=1", "unknown option 'tls'"),
        ("smtp://mail.example.com?timeout=1&timeout=2", "sets timeout twice"),
        ("smtp://bob@mail.example.com", "user name 'bob' but no password"),
        ("smtp://bob:@mail.example.com", "is a variable in it unset?"),
        ("smtp://:pw@mail.example.com", "has a password but no user name"),
        ("smtp://mail example.com", "contains spaces or control characters"),
        ("smtp://mail_server!:25", "not a valid host name"),
        ("smtp://bob:p%C3%A4ss@mail.example.com", "must be ASCII"),
    ],
)
def test_parse_smtp_url_refuses_bad_urls(url: str, message: str) -> None:
    with pytest.raises(MailConfigError, match=message.replace("?", r"\?")):
        parse_smtp_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "smtp://bob:Zq7/Xw9@mail.example.com",  # '/' in the password cuts the URL
        "smtp://bob:Zq7#Xw9@mail.example.com",
        "smtp://bob:12?Zq7Xw9@mail.example.com",
        "smtp://bob:Zq7 Xw9@mail.example.com",
    ],
)
def test_parse_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(MailConfigError) as caught:
        parse_smtp_url(url)
    assert "Zq7" not in str(caught.value)
    assert "Xw9" not in str(caught.value)
    assert "percent-encode" in str(caught.value)


def test_redacted_hides_the_password_and_parses_back() -> None:
    config = parse_smtp_url(
        "smtp://me%40example.com:hunter2@mail.example.com:587?security=starttls"
    )
    assert config.redacted() == (
        "smtp://me%40example.com:***@mail.example.com:587?security=starttls&timeout=10"
    )
    assert "hunter2" not in repr(config)
    assert parse_smtp_url(config.redacted()) == replace(config, password="***")
    assert parse_smtp_url("smtps://[::1]").redacted() == "smtps://[::1]:465?timeout=10"


def test_config_refuses_bad_values_when_built_directly() -> None:
    with pytest.raises(MailConfigError, match="security must be one of: none, starttls, ssl"):
        SmtpConfig(host="h", port=25, username=None, password=None, security="tls")
    with pytest.raises(MailConfigError, match="needs both a user name and a password"):
        SmtpConfig(host="h", port=25, username="bob", password=None, security="none")


# --- ids and message building ---------------------------------------------------------------


def test_message_ids_are_stable() -> None:
    first = make_message_id("comment", 7, "Support.Example.com")
    assert first == "<helpdesk.comment.7@support.example.com>"
    assert make_message_id("comment", "7", "support.example.com") == first
    assert ticket_thread_id("alpha", 42, "support.example.com") == THREAD


@pytest.mark.parametrize(
    "call",
    [
        lambda: make_message_id("com.ment", 7, "example.com"),
        lambda: make_message_id("comment", "7 8", "example.com"),
        lambda: make_message_id("comment", True, "example.com"),
        lambda: make_message_id("comment", 7, "ex@mple.com"),
        lambda: make_message_id("comment", 7, "example.com>\r\nBcc: x@evil.test"),
        lambda: ticket_thread_id("al.pha", 1, "example.com"),
        lambda: ticket_thread_id("alpha", 0, "example.com"),
    ],
)
def test_message_id_parts_are_checked(call: Callable[[], str]) -> None:
    with pytest.raises(ValueError, match="must be"):
        call()


def test_build_message_with_both_parts_and_thread_headers() -> None:
    message = build_message(make_mail())
    raw = message.as_bytes()
    assert message.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in message.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    headers = raw.split(b"\r\n\r\n")[0]
    assert headers.isascii()
    unfolded = headers.replace(b"\r\n ", b" ").split(b"\r\n")
    assert any(line.startswith(b"From: =?utf-8?") for line in unfolded)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["From"].addresses[0].display_name == 'Société Générale, "Support"'
    assert parsed["From"].addresses[0].addr_spec == "support@example.com"
    assert parsed["Subject"] == "[#42] Printer on fire — ça brûle"
    assert parsed["Message-ID"] == "<helpdesk.comment.7@support.example.com>"
    assert parsed["In-Reply-To"] == THREAD
    assert parsed["References"].split() == [THREAD, "<helpdesk.comment.6@support.example.com>"]
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["Date"].datetime.utcoffset().total_seconds() == 0


def test_text_only_message_and_extra_headers() -> None:
    message = build_message(
        make_mail(html=None, reply_to="reply+42@example.com", extra_headers={"X-Ticket": "42"})
    )
    assert message.get_content_type() == "text/plain"
    assert message.get_content().rstrip("\n") == "Plain text body\nsecond line"
    assert message["Reply-To"] == "reply+42@example.com"
    assert message["X-Ticket"] == "42"


def test_long_thread_ids_are_never_encoded() -> None:
    long_id = f"<helpdesk.ticket.{'a' * 60}.1@{'sub.' * 10}example.com>"
    raw = build_message(make_mail(in_reply_to=long_id, references=[long_id] * 3)).as_bytes()
    assert f"In-Reply-To: {long_id}\r\n".encode() in raw
    assert f"References: {long_id}\r\n {long_id}\r\n {long_id}\r\n".encode() in raw


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hello\r\nBcc: victim@example.org"},
        {"subject": "Hello\nX-Injected: 1"},
        {"subject": "Hello\u2028X-Injected: 1"},
        {"from_name": "Support\r\nBcc: victim@example.org"},
        {"from_addr": "support@example.com\r\nBcc: victim@example.org"},
        {"to": ["dana@example.com\nBcc: victim@example.org"]},
        {"reply_to": "x@example.com\r\nBcc: victim@example.org"},
        {"message_id": "<a@example.com>\r\nBcc: victim@example.org"},
        {"in_reply_to": "<a@example.com>\nBcc: victim@example.org"},
        {"references": ["<a@example.com>\r\nBcc: victim@example.org"]},
        {"extra_headers": {"X-Ticket": "42\r\nBcc: victim@example.org"}},
        {"extra_headers": {"X-Ticket\r\nBcc": "victim@example.org"}},
    ],
)
def test_header_injection_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"line break|not a valid|letters, digits"):
        build_message(make_mail(**changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"to": []}, "no recipients"),
        ({"to": ["not-an-address"]}, "'not-an-address' is not a valid email address"),
        ({"message_id": "helpdesk.1@example.com"}, "is not a message id"),
        ({"extra_headers": {"Bcc": "x@example.com"}}, "set Bcc through the OutgoingMail fields"),
        ({"text": "  "}, "needs a plain-text body"),
    ],
)
def test_build_message_explains_bad_input(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_message(make_mail(**changes))


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
