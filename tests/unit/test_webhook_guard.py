"""The webhook SSRF guard: parse_networks, check_url, and send refusing before it connects."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from helpdesk.services.webhook_guard import UrlRefused, check_url, parse_networks
from helpdesk.services.webhook_http import send
from tests.unit.webhook_helpers import (  # noqa: F401 - fixtures
    BODY,
    LOCAL,
    Receiver,
    _listener,
    _receiver,
    assert_never_connected,
)

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
