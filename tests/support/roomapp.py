"""The room protocol served on 127.0.0.1 (port 0) in the test's own trio loop.

Why one place: the end-to-end tests of tests/app start the same server (a
SocketIOServer with the room app, no command rate unless a test wants one) and
differ only in its limits and heartbeat; each kept its own copy before.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio

from roomactors.actors import RoomLimits
from roomactors.app import RoomApp, open_room_app
from roomactors.engineio import EngineIOConfig
from roomactors.socketio import SocketIOServer

__all__ = ("NO_RATE_LIMIT", "Served", "ack_of", "serve_room_app")

NO_RATE_LIMIT = RoomLimits(command_rate=None)
"""Tests send commands as fast as they can; the rate limit has tests of its own."""


@dataclass
class Served:
    """Where clients connect, and the running app (its lobby, statistics)."""

    url: str
    port: int
    app: RoomApp


@asynccontextmanager
async def serve_room_app(
    limits: RoomLimits = NO_RATE_LIMIT, engineio: EngineIOConfig | None = None
) -> AsyncIterator[Served]:
    """Serve the room protocol for the block; leaving it stops the server."""
    sio = SocketIOServer() if engineio is None else SocketIOServer(engineio=engineio)
    async with open_room_app(sio, limits) as app, trio.open_nursery() as server_nursery:
        addresses = await server_nursery.start(sio.serve, "127.0.0.1", 0)
        host, port = addresses[0][:2]
        yield Served(f"http://{host}:{port}", port, app)
        server_nursery.cancel_scope.cancel()


async def ack_of(sock: Any, event: str, payload: Any) -> dict[str, Any]:
    """The ack of one command (a client socket of support.clients)."""
    (ack,) = await sock.call(event, payload)
    assert isinstance(ack, dict)
    return ack
