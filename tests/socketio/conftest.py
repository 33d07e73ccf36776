"""Shared fixtures of the Socket.IO tests. FakeEngineSocket: a stand-in for roomactors.engineio.EngineSocket, for driving a SocketIOServer's
session logic in the test's own trio loop (and under autojump_clock) without
sockets. It records exactly what the Socket.IO layer hands to Engine.IO,
including the SharedMessage objects themselves, so tests can check identity."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import pytest
import trio

from roomactors.engineio.errors import EngineClosed
from roomactors.engineio.packets import SharedMessage
from roomactors.engineio.protocol import DROP_REASONS


class FakeEngineSocket:
    def __init__(self, sid: str = "eio", protocol: int = 4) -> None:
        self.sid = sid
        #: Engine.IO protocol: 3 makes the session speak Socket.IO protocol 4.
        self.protocol = protocol
        self.transport = "websocket"
        self.remote_address: str | None = "127.0.0.1"
        self.query: dict[str, str] = {}
        self.headers: dict[str, str] = {}
        self.close_reason: str | None = None
        #: Everything sent, one entry per send()/send_many(): (items, replace_key).
        self.outbox: list[tuple[tuple[Any, ...], Hashable | None]] = []
        self._send, self._recv = trio.open_memory_channel[str | bytes](math.inf)
        self.receiver: Any = None

    @property
    def closed(self) -> bool:
        return self.close_reason is not None

    @property
    def dropped(self) -> bool:
        return self.close_reason in DROP_REASONS

    # -- the EngineSocket API the Socket.IO layer uses --------------------

    def send(
        self, data: str | bytes | SharedMessage, *, replace_key: Hashable | None = None, coalesce: bool = False
    ) -> None:
        if not self.closed:
            self.outbox.append(((data,), replace_key))

    def send_many(self, items: Sequence[str | bytes | SharedMessage], *, coalesce: bool = False) -> None:
        if not self.closed:
            self.outbox.append((tuple(items), None))

    def close(self) -> None:
        self.end("server close")

    def set_receiver(self, receiver: Any) -> None:
        self.receiver = receiver

    async def receive(self) -> str | bytes:
        try:
            return await self._recv.receive()
        except trio.EndOfChannel:
            raise EngineClosed(self.close_reason or "closed") from None

    async def run_transport(self) -> None:
        """What the transports and the heartbeat do for a real EngineSocket:
        hand each fed message to the receiver in order, awaited (back-pressure),
        apply its deadline, and tell it once the session ended."""
        receiver = self.receiver
        while True:
            deadline = receiver.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline) as timer:
                try:
                    message = await self.receive()
                except EngineClosed:
                    receiver.on_close(self.close_reason or "closed")
                    return
            if timer.cancelled_caught:
                receiver.on_timer(trio.current_time())
                continue
            await receiver.on_message(message)

    # -- test side ------------------------------------------------------------

    def feed(self, *messages: str | bytes) -> None:
        for message in messages:
            self._send.send_nowait(message)

    def end(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
            self._send.close()

    def texts(self) -> list[str | bytes]:
        """Every message sent, flattened, as the data it carries."""
        return [
            item.data if isinstance(item, SharedMessage) else item
            for items, _ in self.outbox
            for item in items
        ]


@pytest.fixture
def fake_engine() -> type[FakeEngineSocket]:
    """The FakeEngineSocket class (conftest modules are not importable by name)."""
    return FakeEngineSocket


# -- a served SocketIOServer with the handlers the end-to-end tests use --------


class ServerRecord:
    """What the server's handlers saw, with a way for trio tests to wait on it."""

    def __init__(self) -> None:
        self.connects: list[tuple[str, Any]] = []
        self.disconnects: list[tuple[str, str, str]] = []  # (namespace, sid, reason)
        self.sockets: dict[str, Any] = {}  # by the "name" the client put in its auth
        self._changed = trio.Event()

    def changed(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, predicate: Any, timeout: float = 10.0) -> None:
        with trio.fail_after(timeout):
            while not predicate():
                await self._changed.wait()


class Served:
    def __init__(self, server: Any, url: str, port: int, record: ServerRecord) -> None:
        self.server = server
        self.url = url
        self.port = port
        self.record = record


def build_server(record: ServerRecord, config: Any = None, engineio: Any = None) -> Any:
    from roomactors.engineio import EngineIOConfig
    from roomactors.socketio import ConnectionRefused, SocketIOConfig, SocketIOServer

    server = SocketIOServer(config or SocketIOConfig(), engineio or EngineIOConfig())
    for namespace in ("/", "/admin"):

        @server.on("connect", namespace)
        async def connect(socket: Any, auth: Any, namespace: str = namespace) -> None:
            if isinstance(auth, dict) and auth.get("token") == "bad":
                raise ConnectionRefused("bad token", {"hint": "ask again"})
            record.connects.append((namespace, auth))
            name = auth.get("name") if isinstance(auth, dict) else None
            record.sockets[f"{name}{namespace}"] = socket
            record.changed()

        @server.on("disconnect", namespace)
        async def disconnect(socket: Any, reason: str, namespace: str = namespace) -> None:
            record.disconnects.append((namespace, socket.sid, reason))
            record.changed()

        @server.on("echo", namespace)
        async def echo(socket: Any, *args: Any) -> Any:
            return tuple(args)

        @server.on("whoami", namespace)
        async def whoami(socket: Any) -> Any:
            return socket.namespace

        @server.on("reverse", namespace)
        async def reverse(socket: Any, data: bytes) -> bytes:
            return data[::-1]

        @server.on("push_binary", namespace)
        async def push_binary(socket: Any) -> None:
            socket.emit("blob", b"\x00\xff", {"nested": [b"\x01\x02"]})

        @server.on("ask", namespace)
        async def ask(socket: Any, question: Any) -> Any:
            return await socket.call("question", question, timeout=10)

        @server.on("kick", namespace)
        async def kick(socket: Any) -> None:
            socket.disconnect()

    return server


@pytest.fixture
def start_served(nursery: trio.Nursery) -> Any:
    """``await start_served(config=None, engineio=None)`` -> a Served on 127.0.0.1, port 0."""

    async def start(config: Any = None, engineio: Any = None) -> Served:
        from roomactors.engineio import EngineIOConfig

        # Short heartbeats: python-engineio's polling client can drop its last
        # packets (close included) when disconnect() races its write loop, and
        # then only the heartbeat ends the session; keep that to seconds.
        record = ServerRecord()
        server = build_server(record, config, engineio or EngineIOConfig(ping_interval=2.0, ping_timeout=5.0))
        addresses = await nursery.start(server.serve, "127.0.0.1", 0)
        host, port = addresses[0][:2]
        return Served(server, f"http://{host}:{port}", port, record)

    return start


@pytest.fixture
async def served(start_served: Any) -> Served:
    return await start_served()


# -- a raw Engine.IO WebSocket client, for packets no real client would send ---


class RawClient:
    """Speaks Engine.IO v4 over a WebSocket by hand, answering pings itself."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    async def send(self, message: str | bytes) -> None:
        """Send one Socket.IO packet as an Engine.IO message (``4`` prefix for text)."""
        await self.ws.send_message(message if isinstance(message, bytes) else "4" + message)

    async def receive(self) -> str | bytes:
        """The next Socket.IO packet (text without the ``4``, or bytes)."""
        while True:
            frame = await self.ws.get_message()
            if frame == "2":
                await self.ws.send_message("3")
                continue
            if isinstance(frame, str):
                assert frame.startswith("4"), f"unexpected Engine.IO packet {frame!r}"
                return frame[1:]
            return frame

    async def join(self, namespace: str = "/") -> str:
        await self.send("0" if namespace == "/" else f"0{namespace},")
        answer = await self.receive()
        assert isinstance(answer, str) and '{"sid":' in answer, answer
        return answer

    async def closed_by_server(self, timeout: float = 10.0) -> list[str | bytes]:
        """Wait for the server to end the session; returns what came before the end."""
        from trio_websocket import ConnectionClosed

        frames: list[str | bytes] = []
        with trio.fail_after(timeout):
            while True:
                try:
                    frames.append(await self.ws.get_message())
                except ConnectionClosed:
                    return frames


@pytest.fixture
def open_raw() -> Any:
    """``async with open_raw(port) as raw`` -> a RawClient past the Engine.IO handshake."""
    from contextlib import asynccontextmanager

    from trio_websocket import open_websocket_url

    @asynccontextmanager
    async def opener(port: int) -> Any:
        url = f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"
        async with open_websocket_url(url) as ws:
            handshake = await ws.get_message()
            assert isinstance(handshake, str) and handshake.startswith('0{"sid":'), handshake
            yield RawClient(ws)

    return opener
