"""Fixtures for the Engine.IO server tests: a server on 127.0.0.1 port 0 in
the test's nursery, and WebSocket clients (trio-websocket)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket

sys.path.insert(0, str(Path(__file__).parent))

from eio_client import Started, echo  # noqa: E402

from roomactors.engineio import EngineIOConfig, EngineIOServer, EngineSocket, HttpRoute  # noqa: E402

StartServer = Callable[..., Awaitable[Started]]


@pytest.fixture
def start_server(nursery: trio.Nursery) -> StartServer:
    async def start(
        handler: Callable[[EngineSocket], Awaitable[None]] | None = None,
        config: EngineIOConfig = EngineIOConfig(),
        *,
        http_fallback: HttpRoute | None = None,
    ) -> Started:
        started: list[EngineSocket] = []

        async def record(sock: EngineSocket) -> None:
            started.append(sock)
            await (handler or echo)(sock)

        server = EngineIOServer(record, config, http_fallback=http_fallback)
        addresses = await nursery.start(server.serve, "127.0.0.1", 0)
        return Started(server, addresses[0][1], started)

    return start


@pytest.fixture
def open_ws(nursery: trio.Nursery) -> Callable[..., Awaitable[trio_websocket.WebSocketConnection]]:
    async def connect(url: str, **kwargs: Any) -> trio_websocket.WebSocketConnection:
        return await trio_websocket.connect_websocket_url(nursery, url, **kwargs)

    return connect
