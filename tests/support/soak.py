"""Lean raw room-protocol clients for fuzzing and soak tests, in the test's trio loop.

Why not python-socketio or socket.io-client for everything: a soak needs hundreds
of clients on two shared cores, and a fuzzer needs to send what no real client
would. A :class:`LeanClient` is a few coroutines on one (WebSocket) or two
(long-polling) TCP connections: it answers pings, joins one namespace, sends
any Socket.IO or Engine.IO text it is given, and records what the server sent,
keeping the newest ``updaterooms`` the way protocol.md promises it arrives.

It parses the server's packets with its own small decoder (not the server's),
so a server bug in encoding cannot hide behind the same bug in the client.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import h11
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from support.rawhttp import HttpReply, RawHttp
from support.rawhttp import http as http_request

__all__ = ("LeanClient", "ServerPacket", "open_lean_client", "parse_server_packet", "HttpReply", "http_request")

RECORD_SEPARATOR = "\x1e"


@dataclass(frozen=True)
class ServerPacket:
    """One Socket.IO packet the server sent: type digit, namespace, ack id, JSON data."""

    type: int
    namespace: str
    id: int | None
    data: Any


def parse_server_packet(text: str) -> ServerPacket:
    """Decode a Socket.IO text packet (without the Engine.IO ``4``)."""
    kind = int(text[0])
    pos = 1
    namespace = "/"
    if text.startswith("/", pos):
        comma = text.find(",", pos)
        end = len(text) if comma == -1 else comma
        namespace = text[pos:end]
        pos = end + 1 if comma != -1 else end
    start = pos
    while pos < len(text) and text[pos].isdigit():
        pos += 1
    ack_id = int(text[start:pos]) if pos > start else None
    data = json.loads(text[pos:]) if pos < len(text) else None
    return ServerPacket(kind, namespace, ack_id, data)


# -- a minimal HTTP/1.1 client (h11), for long-polling and raw POSTs ------------


# -- the client ----------------------------------------------------------------


@dataclass(eq=False)
class LeanClient:
    """One raw client in one namespace; see the module docstring.

    ``events`` holds every event but ``updaterooms`` as ``(name, args)``;
    ``last_list`` the newest room list; ``lists`` how many arrived.
    """

    name: str
    transport: str
    namespace: str
    last_list_text: str | None = None
    """The newest ``updaterooms`` packet as received; parsed only on demand, since
    hundreds of clients in one process cannot afford to parse every list."""
    lists: int = 0
    events: list[tuple[str, list[Any]]] = field(default_factory=list)
    acks: dict[int, list[Any]] = field(default_factory=dict)
    joined: bool = False
    """True from the namespace's CONNECT ack until a DISCONNECT or the end."""
    connect_error: Any = None
    sid: str = ""
    """The Engine.IO session id from the handshake."""
    ended: bool = False
    """The Engine.IO session is over (close packet, connection closed)."""
    eio_frames: list[str | bytes] = field(default_factory=list)
    """Engine.IO packets other than pings, messages and noops, as received."""
    _changed: trio.Event = field(default_factory=trio.Event)
    _parsed: tuple[str | None, list[Any] | None] = (None, None)
    _next_ack: int = 0
    _sender: Any = None
    _closer: Any = None

    @property
    def last_list(self) -> list[Any] | None:
        """The newest room list (None before the first)."""
        text = self.last_list_text
        if text is None:
            return None
        if self._parsed[0] is not text:
            self._parsed = (text, parse_server_packet(text).data[1])
        return self._parsed[1]

    # -- sending ---------------------------------------------------------

    async def send_eio(self, *packets: str | bytes) -> None:
        """Send Engine.IO packets as they are (``4...`` for a message)."""
        await self._sender(list(packets))

    async def send(self, *sio_packets: str) -> None:
        """Send Socket.IO text packets (each wrapped in an Engine.IO message)."""
        await self._sender(["4" + packet for packet in sio_packets])

    def _prefix(self) -> str:
        return "" if self.namespace == "/" else f"{self.namespace},"

    def _list_prefix(self) -> str:
        return f'2{self._prefix()}["updaterooms",'

    async def emit(self, event: str, *args: Any) -> None:
        """An event without an ack (failures come back as ``rejected``)."""
        await self.send("2" + self._prefix() + json.dumps([event, *args]))

    async def emit_with_ack(self, event: str, *args: Any) -> int:
        ack_id = self._next_ack
        self._next_ack += 1
        await self.send("2" + self._prefix() + str(ack_id) + json.dumps([event, *args]))
        return ack_id

    async def call(self, event: str, *args: Any, timeout: float = 10.0) -> list[Any]:
        """Send an event with an ack and wait for the ack's arguments."""
        ack_id = await self.emit_with_ack(event, *args)
        return await self.wait_ack(ack_id, timeout=timeout)

    async def wait_ack(self, ack_id: int, *, timeout: float = 10.0) -> list[Any]:
        # A namespace that is disconnected (say, by a takeover) drops its acks.
        await self.wait_for(lambda: ack_id in self.acks or not self.joined, timeout=timeout)
        if ack_id not in self.acks:
            raise EOFError(f"{self.name}: left the namespace before ack {ack_id}")
        return self.acks.pop(ack_id)

    # -- waiting ------------------------------------------------------------

    async def wait_for(self, predicate: Any, *, timeout: float = 10.0) -> None:
        """Wait (on what the client receives, never on sleeps) until ``predicate()``."""
        with trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()

    async def wait_ended(self, timeout: float = 10.0) -> None:
        await self.wait_for(lambda: self.ended, timeout=timeout)

    def received(self, name: str) -> list[list[Any]]:
        return [args for event, args in self.events if event == name]

    async def hang_up(self) -> None:
        """Close the TCP connection(s) without a goodbye."""
        await self._closer()

    # -- receiving (called by the transports) -------------------------------

    def _changed_now(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _end(self) -> None:
        self.ended = True
        self.joined = False
        self._changed_now()

    async def _on_eio(self, frame: str | bytes, reply: Any) -> None:
        if isinstance(frame, str) and frame.startswith("4"):
            self._on_sio(frame[1:])
        elif frame == "2":
            await reply("3")
        elif frame != "6":
            self.eio_frames.append(frame)
            if frame == "1":
                self._end()
                return
        self._changed_now()

    def _on_sio(self, text: str) -> None:
        if text.startswith(self._list_prefix()):
            self.last_list_text = text
            self.lists += 1
            return
        packet = parse_server_packet(text)
        if packet.namespace != self.namespace:
            self.events.append((f"?{packet.namespace}", [text]))
            return
        if packet.type == 0:
            self.joined = True
        elif packet.type == 4:
            self.connect_error = packet.data
        elif packet.type == 1:
            self.joined = False
            self.events.append(("disconnect", []))
        elif packet.type == 3:
            assert packet.id is not None, text
            self.acks[packet.id] = packet.data
        elif packet.type == 2:
            name, *args = packet.data
            self.events.append((name, args))
        else:
            self.events.append(("?", [text]))


@asynccontextmanager
async def open_lean_client(
    port: int,
    *,
    transport: str = "websocket",
    namespace: str = "/lobby",
    name: str = "client",
    join: bool = True,
    path: str = "/socket.io/",
    timeout: float = 10.0,
) -> AsyncIterator[LeanClient]:
    """A LeanClient past the Engine.IO handshake (and, with ``join``, the
    namespace's CONNECT ack, waited for up to ``timeout`` seconds). Leaving the
    block hangs up."""
    client = LeanClient(name, transport, namespace)
    opener = _open_websocket if transport == "websocket" else _open_polling
    async with opener(client, port, path):
        if join:
            await client.send("0" + client._prefix())
            await client.wait_for(
                lambda: client.joined or client.connect_error is not None or client.ended, timeout=timeout
            )
            if not client.joined:
                raise EOFError(f"{name}: could not join {namespace}: {client.connect_error!r}")
        yield client


@asynccontextmanager
async def _open_websocket(client: LeanClient, port: int, path: str) -> AsyncIterator[None]:
    url = f"ws://127.0.0.1:{port}{path}?EIO=4&transport=websocket"
    async with open_websocket_url(url, max_message_size=2**24) as ws:
        handshake = await ws.get_message()
        assert isinstance(handshake, str) and handshake.startswith('0{"sid":'), handshake
        client.sid = json.loads(handshake[1:])["sid"]

        async def send(frames: list[str | bytes]) -> None:
            for frame in frames:
                await ws.send_message(frame)

        async def reply(frame: str) -> None:
            try:
                await ws.send_message(frame)
            except ConnectionClosed:
                pass

        async def read() -> None:
            try:
                while True:
                    await client._on_eio(await ws.get_message(), reply)
            except ConnectionClosed:
                pass
            finally:
                client._end()

        async def closer() -> None:
            await ws._stream.aclose()  # no close frame: the peer just vanishes

        client._sender = send
        client._closer = closer
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            try:
                yield
            finally:
                nursery.cancel_scope.cancel()


@asynccontextmanager
async def _open_polling(client: LeanClient, port: int, path: str) -> AsyncIterator[None]:
    base = f"{path}?EIO=4&transport=polling"
    reply = await http_request(port, "GET", base)
    assert reply.status == 200 and reply.text.startswith('0{"sid":'), reply
    sid = client.sid = json.loads(reply.text[1:])["sid"]
    target = f"{base}&sid={sid}"
    getter = await RawHttp.connect(port)
    poster = await RawHttp.connect(port)
    post_lock = trio.Lock()

    async def send(frames: list[str | bytes]) -> None:
        body = RECORD_SEPARATOR.join(f if isinstance(f, str) else "b" + _b64(f) for f in frames)
        async with post_lock:
            answer = await poster.request("POST", target, body.encode("utf-8"))
        if answer.status != 200:
            client.eio_frames.append(f"HTTP {answer.status} {answer.text}")
            client._changed_now()

    async def pong(frame: str) -> None:
        try:
            await send([frame])
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async def read() -> None:
        try:
            while not client.ended:
                answer = await getter.request("GET", target)
                if answer.status != 200:
                    client.eio_frames.append(f"HTTP {answer.status} {answer.text}")
                    return
                for frame in answer.text.split(RECORD_SEPARATOR):
                    await client._on_eio(frame, pong)
        except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            client._end()

    async def closer() -> None:
        await getter.aclose()
        await poster.aclose()

    client._sender = send
    client._closer = closer
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(read)
            try:
                yield
            finally:
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await closer()


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")

