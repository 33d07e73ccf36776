"""Raw clients for the Engine.IO server tests: HTTP with h11, in the test's
own trio loop, so ``autojump_clock`` tests see exact times.

Imported as ``eio_client`` (conftest.py puts this folder on ``sys.path``): a
module under ``tests/engineio`` cannot be imported by package name, because
``engineio`` is python-engineio.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import h11
import trio

from roomactors.engineio import EngineIOServer, EngineSocket


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


class RawHttp:
    """One keep-alive HTTP/1.1 client connection."""

    def __init__(self, stream: trio.SocketStream, port: int) -> None:
        self.stream = stream
        self.port = port
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, port: int) -> RawHttp:
        return cls(await trio.open_tcp_stream("127.0.0.1", port), port)

    async def send_request(
        self, method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        hdrs = [("Host", f"127.0.0.1:{self.port}"), *headers]
        if method in ("POST", "PUT") or body:
            hdrs.append(("Content-Length", str(len(body))))
        data = self.conn.send(h11.Request(method=method, target=target, headers=hdrs))
        if body:
            data += self.conn.send(h11.Data(data=body))
        data += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)

    async def read_response(self) -> Reply:
        response: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
                continue
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise EOFError("server closed the connection")
        assert response is not None
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        headers = {k.decode().lower(): v.decode() for k, v in response.headers}
        return Reply(response.status_code, headers, b"".join(chunks))

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> Reply:
        await self.send_request(method, target, body, headers)
        return await self.read_response()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def http(port: int, method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()) -> Reply:
    """One request on a fresh connection."""
    client = await RawHttp.connect(port)
    try:
        return await client.request(method, target, body, headers)
    finally:
        await client.aclose()


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


async def echo(sock: EngineSocket) -> None:
    async for message in sock:
        sock.send(message)


