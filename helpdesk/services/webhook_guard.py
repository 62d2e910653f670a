"""SSRF guard for outbound webhooks: which URLs and addresses the sender may call.

Why: customers choose the URL, but the worker calling it sits inside our network, so a URL that
names or resolves to a loopback, private, link-local or metadata address would let a customer
drive internal services. check_url refuses a bad shape; with resolve it resolves the host once
and refuses if ANY resolved address is special (checking resolved addresses, not text, catches
spellings like ``2130706433`` or ``0x7f.1``). webhook_http.send runs the same checks
(parse_target, resolve_target) and connects to the address they returned. ``allowed`` networks
are for development and tests; production passes none.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any
from urllib.parse import SplitResult, urlsplit

Network = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address

URL_MAX = 2000

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


class UrlRefused(ValueError):
    """The URL may not be called; str(exc) is a message a person can act on."""


@dataclass(frozen=True)
class Target:
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
    target = parse_target(url)
    if resolve:
        try:
            resolve_target(target, allowed)
        except socket.gaierror as exc:
            raise UrlRefused(
                f"the host {target.host} could not be resolved ({exc.strerror}); "
                "check the spelling and that its DNS records exist"
            ) from None
        return
    literal = _literal_ip(target.host)
    if literal is not None:
        _refuse_if_special(target.host, [literal], allowed)


def parse_target(url: str) -> Target:
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
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


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


def resolve_target(target: Target, allowed: Sequence[Network]) -> list[tuple[int, Any]]:
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
