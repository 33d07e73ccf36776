"""The WebSocket transport and the polling -> WebSocket upgrade.

The HTTP layer reads the upgrade request with h11 and decides the opening
handshake (:mod:`.wshandshake`); it hands the connection over here with the
``101`` response to write and the bytes the client sent after its request, so
one port serves both transports. After the opening handshake the connection is a lean
:class:`~.wsconnection.ServerWebSocket`, and one task per connection reads
it. Messages leave as bytes framed once per message
(:attr:`SharedMessage.websocket_frame`), written straight to the socket by
whoever queued them; a writer task exists only while a client's socket buffer
is full, and it writes everything queued meanwhile in one go.
"""

from __future__ import annotations

import logging

import trio

from .engine_socket import EngineSocket
from .packets import PacketError, SharedMessage, decode_packet
from .packets_v3 import decode_websocket_v3
from .protocol import BadPacket, MessageReceived
from .wsconnection import ServerWebSocket, WebSocketClosed, accept_server_websocket
from .wsframes import text_frame

__all__ = ["run_websocket_transport", "run_upgrade_probe", "accept_websocket", "close_websocket"]

logger = logging.getLogger(__name__)

#: Seconds a closing WebSocket may take to flush and say goodbye.
CLOSE_TIMEOUT = 2.0
#: Seconds the ``101 Switching Protocols`` response may take to be written.
HANDSHAKE_TIMEOUT = 10.0


async def accept_websocket(
    stream: trio.abc.Stream, response: bytes, received: bytes, max_payload: int
) -> ServerWebSocket | None:
    """Write the accepted handshake's ``response``; the WebSocket, or None if
    the client is gone (or does not take those bytes in time)."""
    with trio.move_on_after(HANDSHAKE_TIMEOUT):
        return await accept_server_websocket(stream, response, received, max_payload)
    logger.debug("websocket handshake timed out")
    return None


async def close_websocket(ws: ServerWebSocket, code: int = 1000) -> None:
    """Close politely within :data:`CLOSE_TIMEOUT`, then forcefully."""
    with trio.move_on_after(CLOSE_TIMEOUT):
        await ws.aclose(code)
    await ws.abort()


async def run_websocket_transport(sock: EngineSocket, ws: ServerWebSocket) -> None:
    """Carry ``sock`` over ``ws`` until one of them ends.

    This task reads. Writing needs no task while the client keeps up: a
    :class:`_Pump` on ``sock.on_notify`` writes whatever was queued straight
    to the non-blocking socket, in the task that queued it (one write per
    client per broadcast, no context switch). Only when the kernel's buffer
    is full does a writer task take the rest, batching what queues meanwhile.

    A session that ends with messages still queued (server close) gets them
    flushed within :data:`CLOSE_TIMEOUT`; otherwise a writer stuck mid-send
    to a client that stopped reading is cancelled at once and the connection
    dropped without a goodbye.

    No nursery of its own (a nursery and its cancel scope are about 1.2 KB
    held per idle connection, issue 4): the writer task, only while there is
    one, runs in the nursery this task runs in (the server's connections
    nursery) and this task waits for it before closing; once everything is
    written the pump stops the reader with :meth:`ServerWebSocket.interrupt`.
    A reader waiting for the application to take a message (back-pressure)
    ends when the application takes it or the session's end releases it.
    """
    pump = _Pump(sock, ws)
    decode = decode_packet if sock.protocol == 4 else decode_websocket_v3
    try:
        pump.nursery = trio.lowlevel.current_task().parent_nursery
        sock.on_notify = ws.on_control = pump
        pump()  # what was queued before (upgrade) goes now
        # The reader, inline (a coroutine of its own would be one more
        # frame held per idle connection): read until the peer goes or
        # the session ends; ending the session is all it does on the way
        # out (the pump interrupts it once everything is written).
        while not sock.closed:
            try:
                message = await ws.get_message()
            except WebSocketClosed as exc:
                reason = exc.reason
                if reason is not None:  # None: interrupted by the pump, all is written
                    logger.debug("session %s: websocket closed (%s)", sock.sid, reason)
                    sock.fail("message too big" if reason.code == 1009 else "transport close")
                break
            try:
                event = sock.handle_packet(decode(message))
            except PacketError as exc:
                logger.info("session %s: bad packet over websocket: %s", sock.sid, exc)
                sock.fail("parse error")
                break
            # nothing of this message is held while the next is awaited
            message = None  # type: ignore[assignment]
            if type(event) is MessageReceived:
                delivered = await sock.deliver(event.data)
                event = None
                if not delivered:
                    break
            elif type(event) is BadPacket:
                logger.info("session %s: bad packet over websocket: %s", sock.sid, event.detail)
                break
        # The session is over; a writer task may still be at work: flushing,
        # failing or being cut off (its deadline is set once the session closed).
        while pump.writer_done is not None:
            await pump.writer_done.wait()
        sock.on_notify = ws.on_control = None
        await close_websocket(ws)  # forceful when a write was cut mid-frame
    finally:
        sock.on_notify = ws.on_control = None
        if not sock.closed:
            sock.fail("transport close")
        if sock.session.outbox:  # nobody else can deliver these now
            sock.session.outbox.clear()
            sock.notify()


class _Pump:
    """Moves a session's outbox onto its WebSocket; called on every
    ``EngineSocket.notify()`` (a message queued, a ping due, the session
    closed, a pong owed). Never blocks and never raises."""

    __slots__ = ("sock", "ws", "nursery", "writer_scope", "writer_done", "busy")

    def __init__(self, sock: EngineSocket, ws: ServerWebSocket) -> None:
        self.sock = sock
        self.ws = ws
        #: Where a writer task runs: the nursery of the transport's task.
        self.nursery: trio.Nursery | None = None
        #: The writer task's scope while one runs (the socket buffer was full).
        self.writer_scope: trio.CancelScope | None = None
        #: Set as the writer task ends; None while there is none.
        self.writer_done: trio.Event | None = None
        #: True while a writer task (or this very call) owns the socket's sending side.
        self.busy = False

    def __call__(self) -> None:
        session = self.sock.session
        if self.busy:
            if session.closed and self.writer_scope is not None:
                grace = CLOSE_TIMEOUT if session.flush_on_close else 0.0
                self.writer_scope.deadline = min(self.writer_scope.deadline, trio.current_time() + grace)
            return
        frames = self._take()
        if frames:
            self.busy = True
            try:
                sent = self.ws.write_now(frames)
            except WebSocketClosed:
                self.sock.fail("transport close")  # re-enters here: busy, returns at once
                sent = len(frames)
            if sent < len(frames):
                self.ws.sending = sent > 0  # mid-frame: only a forceful close is left
                self._start_writer(memoryview(frames)[sent:] if sent else frames)
                return
            self.busy = False
        if session.closed and not session.outbox:
            self._done()

    def _take(self) -> bytes:
        ws = self.ws
        outbox = self.sock.session.outbox
        if not outbox:
            return ws.take_control()
        items = outbox.take_all()
        if self.sock.protocol == 3:  # binary frames start with a type byte (see .packets_v3)
            frames = b"".join([_frame_v3(item) for item in items])
        elif len(items) == 1:  # no join (a copy) for the common case
            item = items[0]
            frames = item.websocket_frame if isinstance(item, SharedMessage) else text_frame(item)
        else:
            frames = b"".join([_frame(item) for item in items])
        if ws.pending_control:
            frames = ws.take_control() + frames
        return frames

    def _start_writer(self, rest: bytes | memoryview) -> None:
        session = self.sock.session
        self.writer_scope = scope = trio.CancelScope()
        if session.closed:
            scope.deadline = trio.current_time() + (CLOSE_TIMEOUT if session.flush_on_close else 0.0)
        assert self.nursery is not None
        done = trio.Event()
        try:
            self.nursery.start_soon(self._write, rest, scope, done)
        except RuntimeError:  # the server is stopping (its nursery is closed): nobody will write
            self.writer_scope = None
            self.sock.fail("transport close")  # busy stays set: later calls return at once
            self._done()
            return
        self.writer_done = done

    async def _write(self, rest: bytes | memoryview, scope: trio.CancelScope, done: trio.Event) -> None:
        """The socket buffer is full: wait it out, then write whatever queued
        meanwhile in one go, until nothing is left."""
        try:
            with scope:
                try:
                    while rest:
                        self.ws.sending = True
                        await self.ws.send_rest(rest)
                        rest = self._take()
                except WebSocketClosed:
                    self.sock.fail("transport close")
            self.writer_scope = None
            if scope.cancelled_caught or self.sock.closed:
                # busy stays set: nothing more is written (a write cut
                # mid-frame leaves only a forceful close), no writer after this one
                self.sock.fail("transport close")
                self._done()
            else:
                self.busy = False
        finally:
            if self.writer_done is done:
                self.writer_done = None
            done.set()

    def _done(self) -> None:
        """All written (or given up on): the connection task closes the WebSocket."""
        self.ws.interrupt()


def _frame(item: SharedMessage | str) -> bytes:
    return item.websocket_frame if isinstance(item, SharedMessage) else text_frame(item)


def _frame_v3(item: SharedMessage | str) -> bytes:
    return item.websocket_frame_v3 if isinstance(item, SharedMessage) else text_frame(item)


async def run_upgrade_probe(sock: EngineSocket, ws: ServerWebSocket, upgrade_timeout: float) -> bool:
    """The probe exchange on a new WebSocket for a polling session:
    ``2probe`` -> ``3probe``, (polling released with ``6``), ``5``. True when
    the session now runs on ``ws``; False (session untouched, still polling)
    when the probe failed, took longer than ``upgrade_timeout``, or the
    session ended meanwhile."""
    result = False
    async with trio.open_nursery() as nursery:
        nursery.cancel_scope.deadline = trio.current_time() + upgrade_timeout

        async def cancel_when_closed() -> None:
            await sock.wait_closed()
            nursery.cancel_scope.cancel()

        nursery.start_soon(cancel_when_closed)
        result = await _probe(sock, ws)
        nursery.cancel_scope.cancel()
    if nursery.cancel_scope.cancelled_caught and not result:
        logger.info("session %s: upgrade did not finish (%s)", sock.sid, "closed" if sock.closed else "timeout")
    return result


async def _probe(sock: EngineSocket, ws: ServerWebSocket) -> bool:
    session = sock.session
    probing = False
    try:
        if await ws.get_message() != "2probe" or not session.can_probe:
            return False
        await ws.send_message(session.begin_upgrade())
        probing = True
        sock.notify()  # a pending GET is answered with a noop now
        message = await ws.get_message()
        if message != "5":
            logger.info("session %s: unexpected %r during upgrade", sock.sid, message)
            return False
        session.complete_upgrade()
        probing = False
        sock.notify()
        logger.debug("session %s upgraded to websocket", sock.sid)
        return True
    except (WebSocketClosed, PacketError) as exc:
        logger.debug("session %s: probe failed: %r", sock.sid, exc)
        return False
    finally:
        if probing:
            session.abort_upgrade()
            sock.notify()
