"""Raw clients for the robustness tests: every byte under the test's control.

Why not trio-websocket or python-socketio here: a library client reads in a
background task (or thread) and buffers, so it cannot "stop reading" or "vanish
between two frames" on cue. These clients do I/O only when a test awaits them,
in the test's own trio loop (so ``autojump_clock`` covers both sides):

* :class:`RawWebSocket`: wsproto over a TCP stream, opened with a chosen
  receive buffer so that a client that stops reading stalls the server's writer
  after a few kilobytes, not after the kernel's megabytes.
* :class:`RawPolling`: HTTP/1.1 long-polling with h11, one keep-alive
  connection for GETs and one for POSTs, optionally from another loopback
  address (127.0.0.2) to tell per-address limits apart.

Both speak Engine.IO v4 and Socket.IO v5 at the level of encoded packets
(``'40/lobby,'``, ``'42/lobby,1["join_lobby",{...}]'``), because the tests
assert on what went over the wire.
"""

from __future__ import annotations

import json
import socket as stdlib_socket
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio
from support.rawhttp import HttpReply, RawHttp, ServerClosed, abort
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

PATH = "/socket.io/"
RECORD_SEPARATOR = "\x1e"


async def open_stream(port: int, *, rcvbuf: int | None = None, local_address: str | None = None) -> trio.SocketStream:
    """A TCP connection to 127.0.0.1:port; ``rcvbuf`` is set before connecting so
    the window the server sees is small from the start."""
    sock = trio.socket.socket(stdlib_socket.AF_INET, stdlib_socket.SOCK_STREAM)
    try:
        if rcvbuf is not None:
            sock.setsockopt(stdlib_socket.SOL_SOCKET, stdlib_socket.SO_RCVBUF, rcvbuf)
        if local_address is not None:
            await sock.bind((local_address, 0))
        await sock.connect(("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return trio.SocketStream(sock)


class HandshakeRefused(Exception):
    """The server answered the WebSocket request with an HTTP response."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body!r}")
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


class RawWebSocket:
    """A WebSocket client that reads only when asked (wsproto, no background task)."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self._messages: list[str | bytes] = []
        self._events: deque[Any] = deque()  # parsed, not yet looked at
        self._partial: list[str | bytes] = []
        self.closed = False
        self.sid: str | None = None
        self.handshake: dict[str, Any] = {}

    @classmethod
    async def open(
        cls, port: int, *, sid: str | None = None, rcvbuf: int | None = None, read_open: bool = True, eio: int = 4
    ) -> RawWebSocket:
        """Open ``/socket.io/?EIO=4&transport=websocket`` (an upgrade probe with
        ``sid``; ``eio=3``: as socket.io-client 1.x/2.x do)."""
        client = cls(await open_stream(port, rcvbuf=rcvbuf))
        target = f"{PATH}?EIO={eio}&transport=websocket" + (f"&sid={sid}" if sid else "")
        await client.stream.send_all(client.ws.send(Request(host=f"127.0.0.1:{port}", target=target)))
        await client._accepted()
        if sid is None and read_open:
            opened = await client.receive()
            assert isinstance(opened, str) and opened.startswith("0"), opened
            client.handshake = json.loads(opened[1:])
            client.sid = client.handshake["sid"]
        return client

    async def _accepted(self) -> None:
        status, headers, body = 0, {}, b""
        while True:
            self._events.extend(self.ws.events())
            while self._events:
                event = self._events.popleft()
                if isinstance(event, AcceptConnection):
                    return
                if isinstance(event, RejectConnection):
                    status = event.status_code
                    headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                    if not event.has_body:
                        raise HandshakeRefused(status, headers, body)
                elif isinstance(event, RejectData):
                    body += event.data
                    if event.body_finished:
                        raise HandshakeRefused(status, headers, body)
            await self._read_more()

    def _pump_events(self) -> list[Any]:
        self._events.extend(self.ws.events())
        events = list(self._events)
        self._events.clear()
        return events

    async def _read_more(self) -> None:
        try:
            data = await self.stream.receive_some(65536)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            self.closed = True
            raise ServerClosed("TCP connection closed")
        self.ws.receive_data(data)

    async def send(self, message: str | bytes) -> None:
        await self.stream.send_all(self.ws.send(Message(data=message)))

    async def receive(self) -> str | bytes:
        """The next whole message; raises :class:`ServerClosed` at the close."""
        while not self._messages:
            if self.closed:
                raise ServerClosed("websocket closed")
            for event in self._pump_events():
                if isinstance(event, (TextMessage, BytesMessage)):
                    self._partial.append(event.data)
                    if event.message_finished:
                        joined: str | bytes = (
                            "".join(self._partial) if isinstance(event, TextMessage) else b"".join(self._partial)  # type: ignore[arg-type]
                        )
                        self._messages.append(joined)
                        self._partial = []
                elif isinstance(event, CloseConnection):
                    self.closed = True
                    try:
                        await self.stream.send_all(self.ws.send(event.response()))
                    except (trio.BrokenResourceError, trio.ClosedResourceError):
                        pass
            if not self._messages and not self.closed:
                await self._read_more()
        return self._messages.pop(0)

    async def receive_until_closed(self, *, answer_pings: bool = True) -> list[str | bytes]:
        """Every message until the server closes (pings answered meanwhile)."""
        received: list[str | bytes] = []
        while True:
            try:
                message = await self.receive()
            except ServerClosed:
                return received
            received.append(message)
            if answer_pings and message == "2":
                await self.send("3")

    async def next_matching(self, prefix: str, *, answer_pings: bool = True) -> str:
        """Skip messages until a text one starting with ``prefix`` (pings answered)."""
        while True:
            message = await self.receive()
            if answer_pings and message == "2":
                await self.send("3")
                continue
            if isinstance(message, str) and message.startswith(prefix):
                return message

    # -- Socket.IO helpers ---------------------------------------------------

    async def connect_namespace(self, namespace: str = "/lobby") -> str:
        await self.send(f"40{namespace},")
        reply = await self.next_matching(f"4{_connect_prefix(namespace)}")
        assert reply.startswith(f"40{namespace},{{"), reply
        return str(json.loads(reply[len(f"40{namespace},"):])["sid"])

    async def emit(self, event: str, payload: Any, *, namespace: str = "/lobby", ack: int | None = None) -> None:
        await self.send(encode_event(event, payload, namespace=namespace, ack=ack))

    async def call(self, event: str, payload: Any, *, namespace: str = "/lobby", ack: int = 1) -> Any:
        await self.emit(event, payload, namespace=namespace, ack=ack)
        reply = await self.next_matching(f"43{namespace},{ack}[")
        return json.loads(reply[len(f"43{namespace},{ack}"):])[0]

    async def next_room_list(self, *, namespace: str = "/lobby", answer_pings: bool = True) -> list[dict[str, Any]]:
        reply = await self.next_matching(f'42{namespace},["updaterooms",', answer_pings=answer_pings)
        return json.loads(reply[len(f"42{namespace},"):])[1]  # type: ignore[no-any-return]

    def vanish(self) -> None:
        abort(self.stream)

    async def aclose(self) -> None:
        await trio.aclose_forcefully(self.stream)


def _connect_prefix(namespace: str) -> str:
    return f"0{namespace}," if namespace != "/" else "0"


def encode_event(event: str, payload: Any, *, namespace: str = "/lobby", ack: int | None = None) -> str:
    """A Socket.IO EVENT packet inside an Engine.IO message: ``42/ns,<ack>[...]``."""
    ns = f"{namespace}," if namespace != "/" else ""
    return f"42{ns}{'' if ack is None else ack}" + json.dumps([event, payload], separators=(",", ":"))


@dataclass
class RawPolling:
    """An Engine.IO long-polling session: one connection for GETs, one for POSTs."""

    port: int
    sid: str
    handshake: dict[str, Any]
    getter: RawHttp
    poster: RawHttp
    received: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)

    @classmethod
    async def open(cls, port: int, *, local_address: str | None = None) -> RawPolling:
        getter = await RawHttp.connect(port, local_address=local_address)
        reply = await getter.request("GET", f"{PATH}?EIO=4&transport=polling")
        if reply.status != 200:
            await getter.aclose()
            raise HandshakeRefused(reply.status, reply.headers, reply.body)
        assert reply.text.startswith("0"), reply
        handshake = json.loads(reply.text[1:])
        poster = await RawHttp.connect(port, local_address=local_address)
        return cls(port, handshake["sid"], handshake, getter, poster)

    @property
    def url(self) -> str:
        return f"{PATH}?EIO=4&transport=polling&sid={self.sid}"

    async def post(self, *packets: str) -> HttpReply:
        return await self.poster.request("POST", self.url, RECORD_SEPARATOR.join(packets).encode())

    async def start_poll(self) -> None:
        await self.getter.send_request("GET", self.url)

    async def finish_poll(self) -> list[str]:
        reply = await self.getter.read_response()
        assert reply.status == 200, reply
        packets = reply.text.split(RECORD_SEPARATOR)
        self.received += packets
        return packets

    async def poll(self) -> list[str]:
        await self.start_poll()
        return await self.finish_poll()

    async def poll_until(self, prefix: str, *, answer_pings: bool = True) -> str:
        """Poll (answering pings) until a packet starting with ``prefix`` arrives;
        the packets after it in the same response are kept in ``pending``."""
        while True:
            if not self.pending:
                self.pending = await self.poll()
            while self.pending:
                packet = self.pending.pop(0)
                if packet == "2" and answer_pings:
                    await self.post("3")
                elif packet.startswith(prefix):
                    return packet

    async def next_room_list(self, *, namespace: str = "/lobby", answer_pings: bool = True) -> list[dict[str, Any]]:
        packet = await self.poll_until(f'42{namespace},["updaterooms",', answer_pings=answer_pings)
        return json.loads(packet[len(f"42{namespace},"):])[1]  # type: ignore[no-any-return]

    async def connect_namespace(self, namespace: str = "/lobby") -> None:
        await self.post(f"40{namespace},")
        await self.poll_until(f"40{namespace},")

    async def join_lobby(self, user_id: int, namespace: str = "/lobby") -> None:
        await self.post(encode_event("join_lobby", {"id": user_id, "username": f"u{user_id}"}, namespace=namespace, ack=1))
        await self.poll_until(f"43{namespace},1[")

    def vanish(self) -> None:
        self.getter.vanish()
        self.poster.vanish()

    async def aclose(self) -> None:
        await self.getter.aclose()
        await self.poster.aclose()
