"""Finding 4 of issue 10: handshakes that race each other must not get past
the connection limits.

A WebSocket handshake used to be checked against the limits and counted only
once its ``101`` had been sent; between the two, every other handshake of the
same moment passed the check too (1,400 racing handshakes opened 1,376
sessions against a per-address limit of 500). A place is now reserved when the
check passes and given back if the handshake fails, so however the handshakes
interleave, the sessions opened never exceed the limit.
"""

from __future__ import annotations

import trio
from robustness.rawclients import open_stream
from robustness.serving import running_server
from support.waiting import wait_until

from roomactors.config import RoomServerConfig

_KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def _websocket_request(port: int) -> bytes:
    return (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {_KEY}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _status(stream: trio.SocketStream) -> int:
    """The status code of the server's answer to a handshake (0: closed without one)."""
    data = b""
    while b"\r\n" not in data:
        try:
            chunk = await stream.receive_some(4096)
        except trio.BrokenResourceError:
            chunk = b""
        if not chunk:
            return 0
        data += chunk
    return int(data.split(b" ", 2)[1])


async def race_handshakes(port: int, count: int) -> list[int]:
    """``count`` WebSocket handshakes, all sent before any answer is read; their statuses."""
    streams = [await open_stream(port) for _ in range(count)]
    request = _websocket_request(port)
    async with trio.open_nursery() as nursery:
        for stream in streams:
            nursery.start_soon(stream.send_all, request)
    statuses = [await _status(stream) for stream in streams]
    for stream in streams:
        await trio.aclose_forcefully(stream)
    return statuses


async def test_racing_handshakes_from_one_address_never_exceed_its_limit() -> None:
    limit = 20
    config = RoomServerConfig(port=0, max_connections=1000, max_sessions_per_address=limit, shutdown_timeout=1)
    async with running_server(config) as running:
        with trio.fail_after(20):
            statuses = await race_handshakes(running.port, 3 * limit)  # the address's whole TCP share
            assert statuses.count(101) == limit, statuses
            assert statuses.count(503) == 2 * limit, statuses
            engine = running.server.sio.engineio
            assert engine.statistics().sessions_refused == 2 * limit
            # every place is given back once the clients are gone
            await wait_until(lambda: running.statistics().connections == 0, state=running.statistics)


async def test_racing_handshakes_never_exceed_max_connections() -> None:
    limit = 20
    config = RoomServerConfig(port=0, max_connections=limit, max_sessions_per_address=0, shutdown_timeout=1)
    async with running_server(config) as running:
        with trio.fail_after(20):
            statuses = await race_handshakes(running.port, 3 * limit)
            assert statuses.count(101) == limit, statuses
            assert statuses.count(503) == 2 * limit, statuses
            await wait_until(lambda: running.statistics().connections == 0, state=running.statistics)
