"""ServerWebSocket: a lean server-side WebSocket connection on wsproto.

Why not trio-websocket's ``WebSocketConnection``: it runs a reader task per
connection, keeps a message channel and a send lock per connection, and
frames every message for every client (about 80 µs per delivery in a
broadcast). Here the owner's tasks do the reading and the writing
themselves, and :meth:`send_frames` writes bytes that are already framed
(:mod:`.wsframes`), so a broadcast frames once and a writer that finds several
frames queued writes them with one ``send_all``.

wsproto still parses what clients send (masking, fragmentation, UTF-8,
control frames) and does the opening handshake. Errors are
``trio_websocket.ConnectionClosed`` with a ``CloseReason``, the same the HTTP
layer already handles.

Discipline (no locks): one task reads (:meth:`get_message`) and one task
writes (:meth:`send_frames` / :meth:`send_message`) at a time; a ping
from the client is answered by the writer: the reader queues the pong and
calls ``on_control``.
"""

from __future__ import annotations

import logging
import os
from typing import Callable

import trio
from trio_websocket import CloseReason, ConnectionClosed
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import RemoteProtocolError

from .wsframes import OPCODE_PONG, close_frame, encode_frame, text_frame

__all__ = ["ServerWebSocket", "accept_server_websocket", "RECEIVE_SIZE"]

logger = logging.getLogger(__name__)

#: Bytes asked of the socket per read (a buffer only while the read runs).
RECEIVE_SIZE = 65536
#: Status codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
MESSAGE_TOO_BIG = 1009
ABNORMAL_CLOSURE = 1006


class ServerWebSocket:
    """One accepted WebSocket, server side; see the module docstring."""

    __slots__ = (
        "_stream",
        "_proto",
        "_max_message",
        "_parts",
        "_size",
        "_local_close",
        "pending_control",
        "on_control",
        "closed",
        "sending",
        "_fd",
    )

    def __init__(self, stream: trio.abc.Stream, proto: Connection, max_message: int) -> None:
        self._stream = stream
        self._proto = proto
        self._max_message = max_message
        self._parts: list[str | bytes] = []
        self._size = 0
        #: The close we must send (message too big, protocol error), if any.
        self._local_close: CloseReason | None = None
        #: Control frames (pongs) the reader queued for the writer.
        self.pending_control = b""
        #: Called when ``pending_control`` got something to send.
        self.on_control: Callable[[], None] | None = None
        #: Why the connection closed, once it did (a ``CloseReason``).
        self.closed: CloseReason | None = None
        #: True while a write is under way: cancelled then, the stream is
        #: mid-frame and only a forceful close is left.
        self.sending = False
        #: The socket's descriptor for :meth:`write_now`; -1 when the stream
        #: is no plain socket, or once this connection closed it.
        self._fd = stream.socket.fileno() if type(stream) is trio.SocketStream else -1

    @property
    def stream(self) -> trio.abc.Stream:
        return self._stream

    # -- reading -------------------------------------------------------------

    async def get_message(self) -> str | bytes:
        """The next whole message; raises ``ConnectionClosed`` when the peer
        closed, broke the protocol or sent a message over the size limit."""
        while True:
            message = self._next_message()
            if message is not None:
                return message
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._proto.receive_data(None)
                continue
            self._proto.receive_data(data)

    def _next_message(self) -> str | bytes | None:
        if self.closed is not None:
            raise ConnectionClosed(self.closed)
        for event in self._proto.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                self._size += len(event.data) if isinstance(event, BytesMessage) else _utf8_len(event.data)
                if self._size > self._max_message:
                    self._fail(CloseReason(MESSAGE_TOO_BIG, "Exceeded maximum message size"))
                if not event.message_finished:
                    self._parts.append(event.data)
                    continue
                parts, self._parts, self._size = self._parts, [], 0
                if not parts:
                    return bytes(event.data) if isinstance(event, BytesMessage) else event.data
                parts.append(event.data)
                return "".join(parts) if isinstance(event, TextMessage) else b"".join(parts)  # type: ignore[arg-type]
            if isinstance(event, Ping):
                self.pending_control += encode_frame(OPCODE_PONG, bytes(event.payload))
                if self.on_control is not None:
                    self.on_control()
            elif isinstance(event, CloseConnection):
                reason = CloseReason(event.code, event.reason or None)
                if self._proto.state is not ConnectionState.REMOTE_CLOSING and event.code != ABNORMAL_CLOSURE:
                    self._local_close = reason  # a protocol error wsproto found: answer with its code
                self.closed = reason
                raise ConnectionClosed(reason)
        return None

    def _fail(self, reason: CloseReason) -> None:
        self._local_close = reason
        self.closed = reason
        raise ConnectionClosed(reason)

    # -- writing -------------------------------------------------------------

    async def send_frames(self, frames: bytes) -> None:
        """Write already-framed bytes (and any queued pong before them)."""
        if self.pending_control:
            frames, self.pending_control = self.pending_control + frames, b""
        sent = self.write_now(frames)
        if sent < len(frames):
            self.sending = True
            await self.send_rest(memoryview(frames)[sent:] if sent else frames)

    def write_now(self, frames: bytes) -> int:
        """Write what the kernel takes right now, without a trip through
        trio's scheduler: the socket is non-blocking, so this never blocks.
        Returns the bytes written: 0 when the socket buffer is full or the
        stream is no plain socket (tests' memory streams); the caller hands
        the rest to :meth:`send_rest` (and sets :attr:`sending` if it wrote
        part of a frame). Raises ``ConnectionClosed`` if the peer is gone."""
        if self.closed is not None and self.closed.code == ABNORMAL_CLOSURE:
            raise ConnectionClosed(self.closed)
        if self._fd < 0 or not frames:
            return 0
        try:
            return os.write(self._fd, frames)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.closed = CloseReason(ABNORMAL_CLOSURE, "connection lost")
            raise ConnectionClosed(self.closed) from exc

    async def send_rest(self, data: bytes | memoryview) -> None:
        """Write ``data`` whatever it takes (the socket buffer was full);
        :attr:`sending` stays true until it is all out."""
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.closed = CloseReason(ABNORMAL_CLOSURE, "connection lost")
            raise ConnectionClosed(self.closed) from exc
        self.sending = False

    async def send_message(self, message: str | bytes) -> None:
        """Frame and write one message (handshake and probe answers)."""
        await self.send_frames(text_frame(message) if isinstance(message, str) else encode_frame(0x2, message))

    # -- closing -------------------------------------------------------------

    async def aclose(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Send a close frame (the one owed to the peer if it broke a rule),
        wait for the peer's close unless it already sent one, close the stream.
        The caller bounds the wait."""
        try:
            if (
                not self.sending
                and self._proto.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)
                and not (self.closed is not None and self.closed.code == ABNORMAL_CLOSURE)
            ):
                remote_closed = self._proto.state is ConnectionState.REMOTE_CLOSING
                local = self._local_close or CloseReason(code, reason)
                if remote_closed and self._local_close is None and self.closed is not None:
                    local = _echo(self.closed)  # answer a client's close with its own code
                self._proto.send(CloseConnection(local.code, local.reason))  # state only
                await self._stream.send_all(self.pending_control + close_frame(local.code, local.reason or ""))
                self.pending_control = b""
                if self.closed is None:
                    self.closed = local
                if not remote_closed and self._local_close is None:
                    await self._drain_until_close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if self.closed is None:
                self.closed = CloseReason(code, reason)
            self._fd = -1  # the number may soon belong to another connection
            await trio.aclose_forcefully(self._stream)

    async def abort(self) -> None:
        """Close the stream at once, no goodbye."""
        self._fd = -1
        await trio.aclose_forcefully(self._stream)

    async def _drain_until_close(self) -> None:
        while self._proto.state is not ConnectionState.CLOSED:
            data = await self._stream.receive_some(RECEIVE_SIZE)
            if not data:
                return
            self._proto.receive_data(data)
            for event in self._proto.events():
                if isinstance(event, CloseConnection):
                    return


async def accept_server_websocket(prefix: bytes, stream: trio.abc.Stream, max_message: int) -> ServerWebSocket | None:
    """The server side of the opening handshake over ``stream``, whose first
    bytes (already read by the HTTP layer) are ``prefix``; None when the
    request is no valid WebSocket upgrade (refused with 400) or the client
    hangs up. No subprotocol, no extension is ever accepted."""
    handshake = H11Handshake(ConnectionType.SERVER)
    data = prefix
    while True:
        try:
            handshake.receive_data(data)
            request = next((event for event in handshake.events() if isinstance(event, Request)), None)
        except RemoteProtocolError as exc:
            logger.debug("websocket handshake refused: %s", exc)
            try:
                await stream.send_all(handshake.send(RejectConnection(status_code=400)))
            except (trio.BrokenResourceError, trio.ClosedResourceError, RemoteProtocolError):
                pass
            return None
        if request is not None:
            break
        try:
            data = await stream.receive_some(RECEIVE_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        if not data:
            return None
    response = handshake.send(AcceptConnection())
    proto = handshake.connection
    assert proto is not None
    try:
        await stream.send_all(response)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return None
    return ServerWebSocket(stream, proto, max_message)


def _echo(reason: CloseReason) -> CloseReason:
    """The close that answers ``reason``: the same code, unless it is one
    that must never be sent (1005 no status, 1006 abnormal, 1015 TLS)."""
    if reason.code in (1005, ABNORMAL_CLOSURE, 1015):
        return CloseReason(NORMAL_CLOSURE, None)
    return CloseReason(reason.code, reason.reason)


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))
