"""Who sent a request, over which scheme, to which host: the peer's word, or a
trusted proxy's (sans-IO).

Behind a reverse proxy (nginx, a cloud load balancer) every connection comes
from the proxy: the client's address, the scheme it used (often ``https``) and
the host it asked for travel in ``X-Forwarded-For`` / ``X-Forwarded-Proto`` /
``X-Forwarded-Host`` or RFC 7239's ``Forwarded``. Anyone can send those
headers, so they are believed only from the proxies named in
``forwarded_allow_ips``, as uvicorn's ``--forwarded-allow-ips`` does; from
anyone else they are ignored.

Which entry is the client: proxies append the address they received a request
from, so the list is read from the right, skipping trusted proxies; the first
address that is not one is the client (with every entry trusted, the leftmost).
The scheme and the host are those the nearest proxy reports (the rightmost
value), since only its word is trusted.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ("RequestSource", "TrustedProxies", "request_source")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The addresses whose forwarded headers are believed: IP addresses,
    networks (``10.0.0.0/8``), or ``*`` for any peer."""

    __slots__ = ("_any", "_networks")

    def __init__(self, entries: Iterable[str] = ()) -> None:
        networks: list[IPNetwork] = []
        self._any = False
        for entry in entries:
            entry = entry.strip()
            if entry == "*":
                self._any = True
            elif entry:
                networks.append(parse_network(entry))
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return self._any or bool(self._networks)

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` (a peer or a forwarded hop) is a trusted proxy."""
        if address is None or not (self._any or self._networks):  # no proxy named: nothing to parse
            return False
        if self._any:
            return True
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's ::ffff:10.0.0.1
        return any(ip in network for network in self._networks)


def parse_network(entry: str) -> IPNetwork:
    """An address or a network; ValueError with what to write instead."""
    try:
        return ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f"{entry!r} is not an IP address or network; give the proxy's address "
            "(e.g. 127.0.0.1, 10.0.0.0/8, ::1) or '*' to trust any peer"
        ) from None


@dataclass(frozen=True, slots=True)
class RequestSource:
    """Where a request came from, as far as the server may believe."""

    client: str | None  #: the client's address: the per-address limits count it, logs show it
    scheme: str         #: "http" or "https", as the client used it
    host: str | None    #: the Host the client asked for (``name[:port]``)
    forwarded: bool = False  #: the values come from a trusted proxy's headers
    #: ``scheme`` is known: a trusted proxy said it, or the connection is TLS of
    #: our own. Plain HTTP from an unknown peer may still be a page served over
    #: https by a proxy nobody named, so the origin check does not rely on it.
    scheme_known: bool = False


def request_source(
    peer: str | None, scheme: str, headers: Mapping[str, str], proxies: TrustedProxies
) -> RequestSource:
    """The request's source: the peer's own when it is not a trusted proxy
    (its forwarded headers ignored), else what its headers say.

    ``headers`` has lower-case names, repeated headers joined with ", ".
    """
    host = headers.get("host")
    own_tls = scheme == "https"
    if not proxies.trusts(peer):
        return RequestSource(peer, scheme, host, scheme_known=own_tls)
    forwarded = headers.get("forwarded")
    if forwarded is not None:
        hops, proto, forwarded_host = _parse_forwarded(forwarded)
    else:
        hops = _split(headers.get("x-forwarded-for", ""))
        proto = _last(headers.get("x-forwarded-proto", ""))
        forwarded_host = _last(headers.get("x-forwarded-host", ""))
    client = peer
    if hops:
        client = hops[0]
        for hop in reversed(hops):
            if not proxies.trusts(hop):
                client = hop
                break
    if proto is not None:
        proto = proto.lower()
        if proto in ("wss", "ws"):
            proto = "https" if proto == "wss" else "http"
        if proto not in ("http", "https"):
            proto = None
    return RequestSource(
        client,
        proto or scheme,
        forwarded_host or host,
        forwarded=bool(hops) or proto is not None or forwarded_host is not None,
        scheme_known=proto is not None or own_tls,
    )


def _split(value: str) -> list[str]:
    return [_node_address(part) for part in value.split(",") if part.strip()]


def _last(value: str) -> str | None:
    parts = [part.strip() for part in value.split(",") if part.strip()]
    return parts[-1] if parts else None


def _node_address(node: str) -> str:
    """An address without its port or brackets: ``[2001:db8::1]:4711`` ->
    ``2001:db8::1``, ``192.0.2.60:80`` -> ``192.0.2.60``; anything else as given
    (an obfuscated ``_hidden`` or ``unknown`` stays a name of its own)."""
    node = node.strip().strip('"')
    if node.startswith("["):
        return node[1:].split("]", 1)[0]
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


def _parse_forwarded(value: str) -> tuple[list[str], str | None, str | None]:
    """RFC 7239: the ``for`` of every element, and the ``proto`` and ``host``
    of the last element that has them."""
    hops: list[str] = []
    proto: str | None = None
    host: str | None = None
    for element in _split_quoted(value, ","):
        for pair in _split_quoted(element, ";"):
            name, sep, raw = pair.partition("=")
            if not sep:
                continue
            name = name.strip().lower()
            text = raw.strip()
            if len(text) >= 2 and text[0] == text[-1] == '"':
                text = text[1:-1].replace('\\"', '"')
            if name == "for":
                hops.append(_node_address(text))
            elif name == "proto":
                proto = text
            elif name == "host":
                host = text
    return hops, proto, host


def _split_quoted(value: str, separator: str) -> list[str]:
    """``value`` split at ``separator`` outside double quotes."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]
