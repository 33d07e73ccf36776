"""Raw clients for the Engine.IO server tests: HTTP with h11, in the test's
own trio loop, so ``autojump_clock`` tests see exact times.

Imported as ``eio_client`` (conftest.py puts this folder on ``sys.path``): a
module under ``tests/engineio`` cannot be imported by package name, because
``engineio`` is python-engineio.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from support.rawhttp import HttpReply, http
from support.rawhttp import RawHttp as RawHttp  # re-exported for the tests here
from support.waiting import wait_until

from roomactors.engineio import EngineIOServer, EngineSocket

Reply = HttpReply  # the name these tests use


@dataclass
class Started:
    server: EngineIOServer
    port: int
    sockets: list[EngineSocket] = field(default_factory=list)

    def url(self, query: str = "") -> str:
        return f"/socket.io/?EIO=4&{query}" if query else "/socket.io/?EIO=4"

    async def handshake(self) -> tuple[str, dict[str, Any]]:
        """Open a polling session; returns its sid and the handshake."""
        reply = await http(self.port, "GET", self.url("transport=polling"))
        assert reply.status == 200, reply
        assert reply.text[0] == "0"
        handshake = json.loads(reply.text[1:])
        return handshake["sid"], handshake

    def poll_url(self, sid: str) -> str:
        return self.url(f"transport=polling&sid={sid}")

    def ws_url(self, sid: str | None = None) -> str:
        query = "transport=websocket" + (f"&sid={sid}" if sid else "")
        return f"ws://127.0.0.1:{self.port}" + self.url(query)

    async def settled(self, *, sessions: int = 0, connections: int | None = None, timeout: float = 5.0) -> None:
        """Wait until the server's statistics count these sessions (and HTTP
        connections, if given): the end of a cleanup the server does by itself,
        which no event announces. Fails naming the statistics after ``timeout``."""

        def reached() -> bool:
            stats = self.server.statistics()
            return stats.sessions == sessions and connections in (None, stats.http_connections)

        def state() -> str:
            wanted = f"sessions={sessions}" + (f", http_connections={connections}" if connections is not None else "")
            return f"wanted {wanted}; {self.server.statistics()}"

        await wait_until(reached, timeout=timeout, state=state)


async def echo(sock: EngineSocket) -> None:
    async for message in sock:
        sock.send(message)


