"""Where a site callback may go: a public address, reached by name or number, never inside our network.

An admin's callback URL makes this server send requests, so by default a URL is refused when it
carries credentials or when its host resolves to any address that is not public: loopback, private,
link-local (cloud metadata at 169.254.169.254), unspecified, multicast, reserved or shared, and the same
addresses inside IPv6 (IPv4-mapped, 6to4, NAT64). The host is resolved, so every spelling of an address
(`2130706433`, `127.1`, `0x7f.1`, `[::1]`) and every name that points inside is judged by what it reaches.
The check runs when the URL is saved and again at each delivery; a delivery then connects to the
address it checked (`pin`), so a name that changes its answer in between (DNS rebinding) gains nothing.
`allow_private` (MODERATION_CALLBACK_ALLOW_PRIVATE) lifts the address rule for local development.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from moderation.errors import DestinationRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list[tuple[Any, ...]]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
ALLOW_HINT = "set MODERATION_CALLBACK_ALLOW_PRIVATE=true to allow it for local development"


@dataclass(frozen=True, slots=True)
class Pinned:
    """A callback URL bound to the address it was checked at: request `url`, send `headers`, pass `extensions`."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, Any] = field(default_factory=dict)


def why_not_public(address: Address) -> str | None:
    """What kind of non-public address `address` is ("loopback", "private" ...), or None when it is public."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return why_not_public(embedded)
    for kind in ("unspecified", "loopback", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local"
    if not address.is_global:
        return "non-public"
    return None


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check(url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> list[Address]:
    """The addresses `url`'s host resolves to, all acceptable; DestinationRefused saying why otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationRefused(f"expected an http:// or https:// URL with a host, found {url!r}")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("the URL carries a user name or password; put secrets in the callback secret")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DestinationRefused(f"the URL's port is not a port number: {exc}") from exc
    host = parts.hostname
    try:
        found = resolve(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise DestinationRefused(f"cannot resolve {host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in found))
    if not addresses:
        raise DestinationRefused(f"{host!r} resolves to no address")
    if not allow_private:
        for address in addresses:
            kind = why_not_public(address)
            if kind is not None:
                shown = host if host == str(address) else f"{host!r} ({address})"
                raise DestinationRefused(f"{shown} is a {kind} address, not a public one; {ALLOW_HINT}")
    return addresses


def pin(url: str, *, allow_private: bool, resolve: Resolver = socket.getaddrinfo) -> Pinned:
    """`url` checked, rewritten to connect to the first address it resolved to (Host header and TLS name kept)."""
    address = check(url, allow_private=allow_private, resolve=resolve)[0]
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{address}]" if address.version == 6 else str(address)
    if parts.port is not None:
        netloc += f":{parts.port}"
    pinned = parts._replace(netloc=netloc).geturl()
    host_header = parts.netloc.rsplit("@", 1)[-1]
    # TLS must still verify the certificate for the name, not the address we connect to.
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return Pinned(pinned, {"Host": host_header}, extensions)
