"""SMTP settings: parse_smtp_url reads SMTP_URL, refuses bad ones and never shows the password."""

from __future__ import annotations

from dataclasses import replace

import pytest

from helpdesk.services.smtp_config import MailConfigError, SmtpConfig, parse_smtp_url


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
