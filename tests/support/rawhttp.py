"""A raw HTTP/1.1 client (h11) that runs in the test's own trio loop.

Why raw: the Engine.IO tests need byte-level control (exact requests, keep-alive,
overlapping polls, a connection dropped mid-request) and exact times under
``autojump_clock``, which a real client in its own thread cannot give.
"""

from __future__ import annotations

import json
import socket as stdlib_socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import h11
import trio

__all__ = ("HttpReply", "RawHttp", "ServerClosed", "abort", "http")


class ServerClosed(EOFError):
    """The server closed the connection (an EOFError, so ``except EOFError`` works)."""


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def abort(stream: trio.SocketStream) -> None:
    """Vanish: RST instead of FIN (SO_LINGER 0), like a laptop lid closing mid-send."""
    try:
        stream.socket.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    stream.socket.close()


class RawHttp:
    """One keep-alive HTTP/1.1 client connection, one request at a time."""

    def __init__(self, stream: trio.SocketStream, port: int) -> None:
        self.stream = stream
        self.port = port
        self.conn = h11.Connection(h11.CLIENT)

    @classmethod
    async def connect(cls, port: int, *, local_address: str | None = None) -> RawHttp:
        return cls(await trio.open_tcp_stream("127.0.0.1", port, local_address=local_address), port)

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

    async def read_response(self) -> HttpReply:
        """The whole response; the connection is ready for the next request if
        both sides keep it alive (else the next request fails)."""
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
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ServerClosed("server closed the HTTP connection")
        assert response is not None
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        headers = {k.decode().lower(): v.decode() for k, v in response.headers}
        return HttpReply(response.status_code, headers, b"".join(chunks))

    async def request(
        self, method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
    ) -> HttpReply:
        await self.send_request(method, target, body, headers)
        return await self.read_response()

    def vanish(self) -> None:
        abort(self.stream)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


async def http(
    port: int, method: str, target: str, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
) -> HttpReply:
    """One request on a fresh connection."""
    client = await RawHttp.connect(port)
    try:
        return await client.request(method, target, body, headers)
    finally:
        await client.aclose()
