"""Transport-level limits: connections per server and per address.

A handshake beyond a limit is answered HTTP 503 with a JSON body
``{"code": ..., "message": ...}`` and ``Retry-After`` (docs/limits.md), on both
transports, before any session exists; a refused client costs nothing, and a
place freed by a leaving client is open again at once.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from robustness.rawclients import HandshakeRefused, RawHttp, RawPolling, RawWebSocket, open_stream
from robustness.serving import running_server
from support.waiting import wait_until

from roomactors.config import RoomServerConfig


async def refused(open_client: object) -> HandshakeRefused:
    with pytest.raises(HandshakeRefused) as caught:
        await open_client  # type: ignore[misc]
    return caught.value


async def test_a_handshake_beyond_max_connections_gets_503_on_both_transports() -> None:
    config = RoomServerConfig(port=0, max_connections=2, max_sessions_per_address=0, shutdown_timeout=1)
    async with running_server(config) as running:
        port = running.port
        polling = await RawPolling.open(port)
        websocket = await RawWebSocket.open(port)
        assert running.statistics().connections == 2

        for attempt in (RawPolling.open(port), RawWebSocket.open(port)):
            refusal = await refused(attempt)
            assert refusal.status == 503
            assert refusal.headers["content-type"] == "application/json"
            assert refusal.headers["retry-after"] == "5"
            assert refusal.json() == {
                "code": "too_many_connections",
                "message": "the server holds its limit of 2 connections; try again later",
            }
        engine = running.server.sio.engineio.statistics()
        assert engine.sessions == 2 and engine.sessions_refused == 2

        # The clients that got in are untouched ...
        await websocket.connect_namespace("/lobby")
        assert (await websocket.call("join_lobby", {"id": 1}))["ok"] is True
        # ... and a place freed is open again at once.
        await polling.post("1")  # the Engine.IO close packet
        await wait_until(lambda: running.statistics().connections == 1, timeout=5, state=running.statistics)
        again = await RawPolling.open(port)
        assert again.sid not in (polling.sid, websocket.sid)
        for client in (polling, again):
            await client.aclose()
        await websocket.aclose()


async def test_sessions_per_address_count_each_address_on_its_own() -> None:
    config = RoomServerConfig(port=0, max_connections=10, max_sessions_per_address=2, shutdown_timeout=1)
    async with running_server(config) as running:
        port = running.port
        first = await RawPolling.open(port)
        second = await RawWebSocket.open(port)

        for attempt in (RawPolling.open(port), RawWebSocket.open(port)):
            refusal = await refused(attempt)
            assert refusal.status == 503
            assert refusal.json()["code"] == "too_many_sessions_per_address"
            assert "2 connections from your address" in refusal.json()["message"]

        # Another (loopback) address has its own count.
        other = await RawPolling.open(port, local_address="127.0.0.2")
        assert running.statistics().connections == 3

        second.vanish()
        await wait_until(lambda: running.statistics().connections == 2, timeout=5, state=running.statistics)
        third = await RawWebSocket.open(port)
        assert third.sid is not None
        for client in (first, other):
            await client.aclose()
        await third.aclose()


async def test_a_handshake_during_shutdown_is_refused_with_503_shutting_down() -> None:
    config = RoomServerConfig(port=0, shutdown_timeout=1)
    async with running_server(config) as running:
        keep_alive = await RawHttp.connect(running.port)  # accepted before the shutdown
        await running.server.sio.engineio.shutdown()  # stops accepting; no session to wait for
        reply = await keep_alive.request("GET", "/socket.io/?EIO=4&transport=polling")
        assert reply.status == 503
        assert reply.json() == {
            "code": "shutting_down",
            "message": "the server is shutting down; connect again in a moment",
        }
        await keep_alive.aclose()


async def eof(stream: trio.SocketStream) -> bool:
    """True when the server closed the connection (FIN or RST)."""
    try:
        return await stream.receive_some(100) == b""
    except trio.BrokenResourceError:
        return True


async def test_tcp_connections_that_never_speak_make_room_and_are_closed_soon(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """At the address's TCP share, a newcomer gets the place of the oldest
    connection that never sent a request (issue 10, finding 6): idle sockets
    cannot lock out the other clients of their address."""
    config = RoomServerConfig(port=0, max_connections=10, max_sessions_per_address=2, shutdown_timeout=1)
    async with running_server(config) as running:
        engine = running.server.sio.engineio
        opened_at = trio.current_time()
        silent = [await open_stream(running.port) for _ in range(3 * 2)]  # the address's TCP share
        with trio.fail_after(1):
            await wait_until(lambda: engine.statistics().http_connections == 6, state=engine.statistics)
            # its two connections (GET and POST) take the places of the two oldest
            newcomer = await RawPolling.open(running.port)
            assert await eof(silent[0]) and await eof(silent[1])
        stats = engine.statistics()
        assert (stats.connections_refused, stats.half_open_evicted) == (0, 2)
        other = await RawPolling.open(running.port, local_address="127.0.0.2")  # its own share

        # Connections that never send a request are closed after 10 s, not 120 s.
        for stream in silent[2:]:
            assert await eof(stream)
        assert trio.current_time() - opened_at == pytest.approx(10.0, abs=0.1)
        assert running.statistics().connections == 2
        for client in (other, newcomer):
            await client.aclose()


async def test_tcp_connections_beyond_the_share_are_closed_when_none_is_half_open() -> None:
    config = RoomServerConfig(port=0, max_connections=10, max_sessions_per_address=1, shutdown_timeout=1)
    async with running_server(config) as running:
        engine = running.server.sio.engineio
        clients = [await RawHttp.connect(running.port) for _ in range(3)]  # the address's TCP share
        for client in clients:  # each sent a request: none is half-open
            assert (await client.request("GET", "/healthz")).status == 200
        with trio.fail_after(5):
            extra = await open_stream(running.port)
            assert await eof(extra)  # closed before a byte was read
        assert engine.statistics().connections_refused == 1
        for client in clients:
            await client.aclose()
