"""ServerWebSocket: a lean server-side WebSocket connection.

Why not trio-websocket's ``WebSocketConnection``: it runs a reader task per
connection, keeps a message channel, a send lock and wsproto's connection
objects per connection, and frames every message for every client (about
80 µs per delivery in a broadcast). Here the owner's tasks do the reading and
the writing themselves, :meth:`write_now` / :meth:`send_frames` write bytes
that are already framed (:mod:`.wsframes`), so a broadcast frames once, and
:class:`~.wsframes.FrameParser` reads the client's frames holding nothing
while idle (wsproto took 9 µs per small message; the parser takes 1).

Errors are :class:`WebSocketClosed` with a :class:`CloseReason` (code and
reason as the close frame carried them).

Discipline (no locks): one task reads (:meth:`get_message`) and one writes
at a time; a ping from the client is answered by the writer: the reader
queues the pong and calls ``on_control``. At most one pong waits (RFC 6455
§5.5.3 lets a server answer only the latest ping), so a client that pings
without reading costs one small frame, and one that keeps doing so after
:data:`MAX_UNANSWERED_PINGS` pings is closed (1008).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

import trio

from .wsframes import (
    OPCODE_BINARY,
    OPCODE_PONG,
    BytesReceived,
    CloseReceived,
    FrameError,
    FrameParser,
    PingReceived,
    TextReceived,
    close_frame,
    encode_frame,
    text_frame,
)

__all__ = ["ServerWebSocket", "accept_server_websocket", "RECEIVE_SIZE", "MAX_UNANSWERED_PINGS"]

logger = logging.getLogger(__name__)

#: Bytes asked of the socket per read (a buffer only while the read runs).
RECEIVE_SIZE = 65536
#: Status codes (RFC 6455 §7.4.1).
NORMAL_CLOSURE = 1000
ABNORMAL_CLOSURE = 1006
POLICY_VIOLATION = 1008
_NEVER_SENT = (1005, ABNORMAL_CLOSURE, 1015)
#: Pings a client may send while the pong owed for an earlier one still waits
#: to be written (its socket is full: it does not read). Each replaces the
#: waiting pong (only the latest ping needs an answer); past this many the
#: client is closed with 1008, as it is a flood and not a keep-alive.
MAX_UNANSWERED_PINGS = 100


@dataclass(frozen=True, slots=True)
class CloseReason:
    """Why a WebSocket closed: the close code (RFC 6455 section 7.4) and reason."""

    code: int
    reason: str | None


class WebSocketClosed(Exception):
    """The WebSocket is closed (by either side, or the connection was lost)."""

    def __init__(self, reason: CloseReason | None) -> None:
        super().__init__(reason)
        self.reason = reason


class ServerWebSocket:
    """One accepted WebSocket, server side; see the module docstring."""

    __slots__ = (
        "_stream",
        "_parser",
        "_local_close",
        "_close_sent",
        "_close_received",
        "_fd",
        "pending_control",
        "_superseded_pongs",
        "on_control",
        "closed",
        "sending",
        "_interrupted",
        "_read_scope",
    )

    def __init__(self, stream: trio.abc.Stream, max_message: int, received: bytes | bytearray = b"") -> None:
        self._stream = stream
        self._parser = FrameParser(max_message)
        if received:
            self._parser.receive_data(received)
        #: The close we owe the peer because it broke a rule (too big, protocol error).
        self._local_close: CloseReason | None = None
        self._close_sent = False
        self._close_received = False
        #: The socket's descriptor for :meth:`write_now`; -1 when the stream
        #: is no plain socket, or once this connection closed it.
        self._fd = stream.socket.fileno() if type(stream) is trio.SocketStream else -1
        #: The pong the reader queued for the writer (at most one: a newer
        #: ping replaces it); taken with :meth:`take_control`.
        self.pending_control = b""
        #: Pongs replaced before they were written, since the last one went out.
        self._superseded_pongs = 0
        #: Called when ``pending_control`` got something to send.
        self.on_control: Callable[[], None] | None = None
        #: Why the connection closed, once it did (a ``CloseReason``).
        self.closed: CloseReason | None = None
        #: True while a write is under way: cancelled then, the stream is
        #: mid-frame and only a forceful close is left.
        self.sending = False
        #: Set by :meth:`interrupt`: the owner reads no more.
        self._interrupted = False
        #: A read's cancel scope while it waits on a stream that is no plain
        #: socket (those :meth:`interrupt` cannot wake otherwise).
        self._read_scope: trio.CancelScope | None = None

    @property
    def stream(self) -> trio.abc.Stream:
        return self._stream

    # -- reading -------------------------------------------------------------

    def interrupt(self) -> None:
        """Stop the reader: its :meth:`get_message` (waiting now or the next
        one) raises ``WebSocketClosed(None)``; the connection stays as it is,
        for :meth:`aclose`. Never blocks.

        Why not a cancel scope around the reader: the scope (or the nursery
        holding it) would be held per idle connection for its whole life
        (about 1.2 KB, issue 4); a reader waiting on its socket is woken with
        ``trio.lowlevel.notify_closing`` instead, which costs nothing until used.
        """
        self._interrupted = True
        if self._fd >= 0:
            trio.lowlevel.notify_closing(self._fd)
        elif self._read_scope is not None:
            self._read_scope.cancel()

    async def get_message(self) -> str | bytes:
        """The next whole message; raises ``WebSocketClosed`` when the peer
        closed, broke the protocol or sent a message over the size limit, and
        ``WebSocketClosed(None)`` once :meth:`interrupt` was called."""
        parser = self._parser
        while True:
            if self._interrupted:
                raise WebSocketClosed(None)
            if self.closed is not None:
                raise WebSocketClosed(self.closed)
            try:
                event = parser.next_event()
            except FrameError as exc:
                self._local_close = self.closed = CloseReason(exc.code, exc.reason)
                raise WebSocketClosed(self.closed) from None
            if event is None:
                # Straight from the descriptor (as write_now writes): an idle
                # connection waits in wait_readable() alone, without the five
                # coroutine frames and the context manager that
                # SocketStream.receive_some -> socket.recv keep on its stack
                # (about 1.5 KB per idle connection, issue 4).
                fd = self._fd
                if fd >= 0:
                    # A checkpoint either way, as receive_some: wait_readable
                    # is one; data read at once gets one after the read.
                    await trio.lowlevel.checkpoint_if_cancelled()
                    waited = False
                    data: bytes | bytearray | None
                    while True:
                        data = _read_now(fd)
                        if data is not None:
                            if not waited:
                                await trio.lowlevel.cancel_shielded_checkpoint()
                            break
                        try:
                            await trio.lowlevel.wait_readable(fd)
                        except trio.ClosedResourceError:  # interrupt(), or the stream closed under us
                            if self._interrupted:
                                raise WebSocketClosed(None) from None
                            data = b""
                            break
                        waited = True
                        fd = self._fd
                        if fd < 0:
                            data = b""
                            break
                else:
                    scope = self._read_scope = trio.CancelScope()
                    data = b""
                    with scope:
                        try:
                            data = await self._stream.receive_some(RECEIVE_SIZE)
                        except (trio.BrokenResourceError, trio.ClosedResourceError):
                            pass
                    self._read_scope = None
                    if scope.cancelled_caught:
                        raise WebSocketClosed(None)
                if not data:
                    self.closed = CloseReason(ABNORMAL_CLOSURE, None)
                    raise WebSocketClosed(self.closed)
                parser.receive_data(data)
                continue
            if type(event) is TextReceived or type(event) is BytesReceived:
                return event.data
            if type(event) is PingReceived:
                self._queue_pong(event.payload)
            elif type(event) is CloseReceived:
                self._close_received = True
                self.closed = CloseReason(event.code, event.reason or None)
                raise WebSocketClosed(self.closed)

    def _queue_pong(self, payload: bytes) -> None:
        """Owe a pong for the latest ping only; close a client whose pongs
        pile up unwritten (it pings and does not read)."""
        if self.pending_control:
            self._superseded_pongs += 1
            if self._superseded_pongs > MAX_UNANSWERED_PINGS:
                reason = "too many pings while not reading; read the pongs before pinging again"
                self._local_close = self.closed = CloseReason(POLICY_VIOLATION, reason)
                logger.info("websocket closed: %s", reason)
                raise WebSocketClosed(self.closed)
        self.pending_control = encode_frame(OPCODE_PONG, payload)
        if self.on_control is not None:
            self.on_control()

    def take_control(self) -> bytes:
        """The pong waiting to be written (b"" when none), for the writer,
        which writes it before anything else it has."""
        control = self.pending_control
        if control:
            self.pending_control = b""
            self._superseded_pongs = 0
        return control

    # -- writing -------------------------------------------------------------

    async def send_frames(self, frames: bytes) -> None:
        """Write already-framed bytes (and any queued pong before them)."""
        if self.pending_control:
            frames = self.take_control() + frames
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
        part of a frame). Raises ``WebSocketClosed`` if the peer is gone."""
        if self.closed is not None and self.closed.code == ABNORMAL_CLOSURE:
            raise WebSocketClosed(self.closed)
        if self._fd < 0 or not frames:
            return 0
        try:
            return os.write(self._fd, frames)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.closed = CloseReason(ABNORMAL_CLOSURE, "connection lost")
            raise WebSocketClosed(self.closed) from exc

    async def send_rest(self, data: bytes | memoryview) -> None:
        """Write ``data`` whatever it takes (the socket buffer was full);
        :attr:`sending` stays true until it is all out."""
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            self.closed = CloseReason(ABNORMAL_CLOSURE, "connection lost")
            raise WebSocketClosed(self.closed) from exc
        self.sending = False

    async def send_message(self, message: str | bytes) -> None:
        """Frame and write one message (handshake and probe answers)."""
        await self.send_frames(text_frame(message) if isinstance(message, str) else encode_frame(OPCODE_BINARY, message))

    # -- closing -------------------------------------------------------------

    async def aclose(self, code: int = NORMAL_CLOSURE, reason: str | None = None) -> None:
        """Send a close frame (the one owed to the peer if it broke a rule,
        the echo of the peer's if it closed first), wait for the peer's close
        unless it already sent one, close the stream. The caller bounds the wait."""
        try:
            if not self.sending and not self._close_sent and not (
                self.closed is not None and self.closed.code == ABNORMAL_CLOSURE
            ):
                if self._local_close is not None:
                    local = self._local_close
                elif self._close_received and self.closed is not None:
                    local = _echo(self.closed)
                else:
                    local = CloseReason(code, reason)
                self._close_sent = True
                await self._stream.send_all(self.take_control() + close_frame(local.code, local.reason or ""))
                if self.closed is None:
                    self.closed = local
                if not self._close_received and self._local_close is None:
                    await self._drain_until_close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            if self.closed is None:
                self.closed = CloseReason(code, reason)
            await self.abort()

    async def abort(self) -> None:
        """Close the stream at once, no goodbye."""
        self._fd = -1  # the number may soon belong to another connection
        await trio.aclose_forcefully(self._stream)

    async def _drain_until_close(self) -> None:
        """Read (and drop) until the peer's close frame, its EOF, or garbage."""
        parser = self._parser
        while True:
            try:
                event = parser.next_event()
            except FrameError:
                return
            if event is None:
                data = await self._stream.receive_some(RECEIVE_SIZE)
                if not data:
                    return
                parser.receive_data(data)
            elif type(event) is CloseReceived:
                return


def _read_now(fd: int) -> bytes | None:
    """What the socket holds now (b"" at its end or reset), None when nothing.

    A function of its own so that the ``BlockingIOError`` of every wait is
    raised and caught here: an exception passing through a coroutine makes
    CPython give its frame a frame object for good (272 bytes per idle
    connection, issue 4); this frame's dies with the call."""
    try:
        return os.read(fd, RECEIVE_SIZE)
    except BlockingIOError:
        return None
    except OSError:  # reset by the peer
        return b""


async def accept_server_websocket(
    stream: trio.abc.Stream, response: bytes, received: bytes | bytearray, max_message: int
) -> ServerWebSocket | None:
    """Complete an opening handshake already decided
    (:func:`.wshandshake.check_websocket_handshake`): write its ``101``
    ``response`` and return the connection, which parses first the bytes the
    client sent after its request (``received``, read by the HTTP layer);
    None when the client went away meanwhile."""
    try:
        await stream.send_all(response)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return None
    return ServerWebSocket(stream, max_message, received)


def _echo(reason: CloseReason) -> CloseReason:
    """The close that answers ``reason``: the same code, unless it is one
    that must never be sent (1005 no status, 1006 abnormal, 1015 TLS)."""
    if reason.code in _NEVER_SENT:
        return CloseReason(NORMAL_CLOSURE, None)
    return CloseReason(reason.code, reason.reason)
