"""Who may ask, and who asked: the Host check (issue 10, finding 8), the
server's own origin (finding 7) and trusted proxies' forwarded headers
(issue 15), through raw HTTP requests on a real socket; and the sans-IO
rules of :mod:`roomactors.engineio.hosts` and :mod:`~.forwarded` on their own.
"""

from __future__ import annotations

import socket

import pytest
import trio
from eio_client import http
from support.waiting import wait_until

from roomactors.engineio import EngineIOConfig, EngineSocket, HttpRequest, HttpResponse
from roomactors.engineio.forwarded import RequestSource, TrustedProxies, request_source
from roomactors.engineio.hosts import HostPolicy, host_name

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"
_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


async def raw_exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection; everything until the server closes it."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    await stream.send_all(request)
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(4096):
            data += chunk
    await stream.aclose()
    return data


async def http_to(port: int, host: str, target: str = HANDSHAKE) -> tuple[int, bytes]:
    """One GET with this ``Host`` header (support.rawhttp always sends its own); status and body."""
    answer = await raw_exchange(port, f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


# -- Host (DNS rebinding) -----------------------------------------------------


async def test_a_dns_rebinding_shaped_websocket_request_gets_400_and_nothing_else(start_server) -> None:
    started = await start_server()
    answer = await raw_exchange(
        started.port,
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: evil.example\r\n"
            "Origin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"connection: close" in head.lower()
    assert b"does not answer to the host 'evil.example'" in body and b"--allowed-host" in body
    stats = started.server.statistics()
    assert (stats.sessions_opened, stats.sessions_refused) == (0, 0)


async def test_other_hosts_get_400_on_every_path(start_server) -> None:
    async def route(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, (), b"page")

    started = await start_server(http_fallback=route)
    for target in (HANDSHAKE, "/", "/healthz"):
        assert (await http_to(started.port, "evil.example:8000", target))[0] == 400, target
    assert (await http_to(started.port, "127.0.0.1", "/"))[0] == 200
    assert started.server.statistics().sessions_opened == 0


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.0.1:1234", "localhost:8000", "LOCALHOST", "app.localhost", "[::1]:8000",
     "192.168.1.20", socket.gethostname(), f"{socket.gethostname().split('.')[0]}.local:80"],
)
async def test_the_machines_own_names_and_any_address_are_answered(start_server, host: str) -> None:
    started = await start_server()
    status, body = await http_to(started.port, host)
    assert status == 200 and body.startswith(b"0{")


async def test_allowed_hosts_add_names_and_star_answers_all(start_server) -> None:
    started = await start_server(config=EngineIOConfig(allowed_hosts=("school.example", ".games.example")))
    for host, status in [("school.example", 200), ("SCHOOL.example.:443", 200), ("a.games.example", 200),
                         ("games.example", 200), ("evil.example", 400), ("school.example.evil", 400)]:
        assert (await http_to(started.port, host))[0] == status, host
    anyhost = await start_server(config=EngineIOConfig(allowed_hosts=("*",)))
    assert (await http_to(anyhost.port, "evil.example"))[0] == 200


def test_host_policy_describes_what_it_answers() -> None:
    label = socket.gethostname().split(".")[0].lower()
    text = HostPolicy(("school.example", ".games.example")).describe()
    assert text.startswith("any IP address, ")
    for name in ("localhost", "school.example", f"{label}.local", "*.localhost", "*.games.example"):
        assert f" {name}," in text + ","
    assert HostPolicy(("*",)).describe() == "any host"


def test_host_policy_rules() -> None:
    policy = HostPolicy((), bound_host="myserver.lan")
    assert policy.allows("myserver.lan:8000") and policy.allows(None)
    assert policy.allows("10.1.2.3:80") and policy.allows("[2001:db8::1]")
    assert not policy.allows("evil.example") and not policy.allows("a b") and not policy.allows("[::1")
    assert [host_name(h) for h in ("A.Example.:80", "[::1]:1", "::1", "x:y")] == ["a.example", "::1", None, None]


# -- the server's own origin ------------------------------------------------------


async def test_cors_origins_never_refuse_the_servers_own_origin(start_server) -> None:
    started = await start_server(config=EngineIOConfig(cors_origins=("http://game.example",)))
    own = f"http://127.0.0.1:{started.port}"
    # plain HTTP from no named proxy: the scheme is not known (a TLS proxy may be in
    # front), so the host and port decide
    for origin, ok in [(own, True), ("http://game.example", True), ("http://other.example", False),
                       (f"https://127.0.0.1:{started.port}", True), ("http://127.0.0.1:1", False),
                       (f"http://localhost:{started.port}", False)]:
        reply = await http(started.port, "GET", HANDSHAKE, headers=[("Origin", origin)])
        assert (reply.status == 200) is ok, origin
        if ok:
            assert reply.headers["access-control-allow-origin"] == origin


# -- behind a proxy --------------------------------------------------------------


async def stay(sock: EngineSocket) -> None:
    """A handler that keeps its session open."""
    await trio.sleep_forever()


def trusting(*entries: str, **fields: object) -> EngineIOConfig:
    return EngineIOConfig(forwarded_allow_ips=entries, **fields)  # type: ignore[arg-type]


async def test_a_trusted_proxys_x_forwarded_for_is_the_client_the_limits_count(start_server) -> None:
    started = await start_server(stay, trusting("127.0.0.1", max_sessions_per_address=1))
    first = await http(started.port, "GET", HANDSHAKE, headers=[("X-Forwarded-For", "203.0.113.5")])
    assert first.status == 200
    again = await http(started.port, "GET", HANDSHAKE, headers=[("X-Forwarded-For", "203.0.113.5")])
    assert (again.status, again.json()["code"]) == (503, "too_many_sessions_per_address")
    # a chain: the rightmost address that is not a trusted proxy is the client
    other = await http(started.port, "GET", HANDSHAKE, headers=[("X-Forwarded-For", "198.51.100.7, 203.0.113.9, 127.0.0.1")])
    assert other.status == 200
    assert [sock.remote_address for sock in started.sockets] == ["203.0.113.5", "203.0.113.9"]


async def test_forwarded_headers_from_anyone_else_are_ignored(start_server) -> None:
    started = await start_server(stay, trusting("127.0.0.2", max_sessions_per_address=1))
    reply = await http(started.port, "GET", HANDSHAKE, headers=[("X-Forwarded-For", "203.0.113.5")])
    assert reply.status == 200
    assert started.sockets[0].remote_address == "127.0.0.1"  # the peer's own, not the header's
    # the header cannot buy a second place either
    refused = await http(started.port, "GET", HANDSHAKE, headers=[("X-Forwarded-For", "203.0.113.6")])
    assert refused.status == 503
    # nor pass the origin check with a forwarded scheme and host
    reply = await http(
        started.port, "GET", HANDSHAKE,
        headers=[("Origin", "https://school.example"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "school.example")],
    )
    assert (reply.status, reply.json()["code"]) == (400, 4)


async def test_a_trusted_proxys_scheme_and_host_are_what_the_origin_and_host_checks_compare(start_server) -> None:
    started = await start_server(config=trusting("127.0.0.1", allowed_hosts=("school.example",)))
    good = [("Origin", "https://school.example"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "school.example")]
    reply = await http(started.port, "GET", HANDSHAKE, headers=good)
    assert reply.status == 200 and reply.headers["access-control-allow-origin"] == "https://school.example"
    # the page is https, the proxy says http: not the same origin
    reply = await http(
        started.port, "GET", HANDSHAKE,
        headers=[good[0], ("X-Forwarded-Proto", "http"), ("X-Forwarded-Host", "school.example")],
    )
    assert (reply.status, reply.json()["code"]) == (400, 4)
    # the proxy does not say: host and port decide (443, https's default, both sides)
    reply = await http(started.port, "GET", HANDSHAKE, headers=[good[0], ("X-Forwarded-Host", "school.example")])
    assert reply.status == 200
    # RFC 7239 Forwarded says the same
    reply = await http(
        started.port, "GET", HANDSHAKE,
        headers=[good[0], ("Forwarded", 'for="[2001:db8::1]:4711";proto=https;host=school.example')],
    )
    assert reply.status == 200
    # a forwarded host the server does not answer to is refused like a Host
    reply = await http(started.port, "GET", HANDSHAKE, headers=[("X-Forwarded-Host", "evil.example")])
    assert reply.status == 400 and b"evil.example" in reply.body


async def test_a_websocket_through_a_trusted_proxy_counts_its_client(start_server) -> None:
    started = await start_server(stay, trusting("127.0.0.0/8", max_sessions_per_address=1))
    request = (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{started.port}\r\n"
        "X-Forwarded-For: 203.0.113.5\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stream.send_all(request)
    with trio.fail_after(5):
        assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 101 ")
        await wait_until(lambda: started.sockets)
    assert started.sockets[0].remote_address == "203.0.113.5"
    refused = await raw_exchange(started.port, request)
    assert refused.startswith(b"HTTP/1.1 503 ")
    await stream.aclose()


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("10.0.0.1", {"x-forwarded-for": "1.2.3.4"}, RequestSource("1.2.3.4", "http", None, True)),
        ("10.0.0.1", {"x-forwarded-for": "1.2.3.4, 10.0.0.2"}, RequestSource("1.2.3.4", "http", None, True)),
        ("10.0.0.1", {"x-forwarded-for": "10.0.0.3, 10.0.0.2"}, RequestSource("10.0.0.3", "http", None, True)),
        ("10.0.0.1", {"x-forwarded-proto": "http, HTTPS", "host": "h"}, RequestSource("10.0.0.1", "https", "h", True, True)),
        ("10.0.0.1", {"x-forwarded-proto": "gopher"}, RequestSource("10.0.0.1", "http", None)),
        ("10.0.0.1", {"forwarded": 'for=1.2.3.4:80;proto=https, for="_hidden";host="a.example"',
                      "x-forwarded-for": "9.9.9.9"}, RequestSource("_hidden", "https", "a.example", True, True)),
        ("192.0.2.1", {"x-forwarded-for": "1.2.3.4", "host": "h"}, RequestSource("192.0.2.1", "http", "h")),
        ("::ffff:10.0.0.1", {"x-forwarded-for": "1.2.3.4"}, RequestSource("1.2.3.4", "http", None, True)),
        (None, {"x-forwarded-for": "1.2.3.4"}, RequestSource(None, "http", None)),
    ],
)
def test_request_source_rules(peer: str | None, headers: dict[str, str], expected: RequestSource) -> None:
    assert request_source(peer, "http", headers, TrustedProxies(["10.0.0.0/8"])) == expected


def test_tls_of_our_own_makes_the_scheme_known() -> None:
    assert request_source("192.0.2.1", "https", {"host": "h"}, TrustedProxies()) == RequestSource(
        "192.0.2.1", "https", "h", scheme_known=True
    )


def test_trusted_proxies_parse_addresses_networks_and_star() -> None:
    assert TrustedProxies(["*"]).trusts("203.0.113.1") and not TrustedProxies().trusts("127.0.0.1")
    assert not TrustedProxies(["::1"]).trusts("not an address")
    with pytest.raises(ValueError, match="not an IP address or network"):
        TrustedProxies(["proxy.lan"])
