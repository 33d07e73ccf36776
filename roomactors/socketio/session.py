"""SocketIOSession: the trio side of one Engine.IO session's Socket.IO traffic.

No task of its own besides the Engine.IO handler's (tasks, their frames and
queues are most of an idle connection's memory, issue 4). It is the session's
:class:`~roomactors.engineio.EngineReceiver`, set as the session opens:

* the transports hand it every message (``on_message``, in their task): it
  feeds the sans-IO :class:`SocketIOConnection`, resolves acks at once (so a
  handler awaiting ``Socket.call`` cannot deadlock behind itself) and queues
  the rest; at most ``max_queued_events`` may wait, then the transport stops
  reading that client;
* the Engine.IO heartbeat also enforces the connect timeout
  (``next_deadline``/``on_timer``);
* the dispatcher (the handler's task, ``run``) runs the application's handlers
  one at a time, in arrival order, from that queue.

When the Engine.IO session ends, the dispatcher finishes what was already
queued, then runs the disconnect handler of every socket still connected.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Union

import trio

from ..engineio.inbox import Inbox
from ..engineio.packets import SharedMessage
from .protocol import (
    AckReceived,
    ConnectionClosed,
    ConnectionEvent,
    ConnectRequested,
    DisconnectRequested,
    EventReceived,
    SocketIOConnection,
)
from .errors import ConnectionRefused, SocketDisconnected
from .packets import PacketType, SocketIOPacket, encode_packet
from .sockets import Socket

if TYPE_CHECKING:
    from ..engineio import EngineSocket
    from .server import SocketIOServer

__all__ = ("SocketIOSession",)

logger = logging.getLogger(__name__)

#: Seconds the disconnect handlers get when the session is being cancelled
#: (server shutdown): enough to tell an actor, not enough to hang a shutdown.
_SHUTDOWN_GRACE = 5.0

# Engine.IO close reasons as Socket.IO disconnect reasons (Node's vocabulary).
_ENGINE_REASONS: Mapping[str, str] = MappingProxyType(
    {"client close": "transport close", "server close": "forced close"}
)


@dataclass(eq=False)
class _PendingCall:
    socket: Socket
    done: trio.Event = field(default_factory=trio.Event)
    args: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class _ServerDisconnect:
    """Queued by ``Socket.disconnect()`` so its handler runs in order with the rest."""

    socket: Socket


_Work = Union[ConnectionEvent, _ServerDisconnect]


class _ReadAhead:
    """How many more client packets may be queued or handled (a semaphore,
    first come first served). Not ``trio.Semaphore``: that holds a parking lot
    and an ordered dict per connection for its whole life; this holds an int,
    and a queue of events only while a client is being made to wait."""

    __slots__ = ("free", "_waiters")

    def __init__(self, limit: int) -> None:
        self.free = limit
        self._waiters: deque[trio.Event] | None = None

    async def acquire(self) -> None:
        """Take a slot; no checkpoint when one is free (the caller queues at
        once, in arrival order), else wait behind the earlier waiters."""
        if self.free > 0 and not self._waiters:
            self.free -= 1
            return
        if self._waiters is None:
            self._waiters = deque()
        event = trio.Event()
        self._waiters.append(event)
        try:
            await event.wait()  # set by release(): the slot is handed over
        except BaseException:
            if event.is_set():
                self.release()  # handed a slot that will not be used
            elif self._waiters is not None:
                self._waiters.remove(event)
                if not self._waiters:
                    self._waiters = None
            raise

    def release(self) -> None:
        waiters = self._waiters
        if waiters:
            waiters.popleft().set()
            if not waiters:
                self._waiters = None
        else:
            self.free += 1


class SocketIOSession:
    """Socket.IO over one Engine.IO session; ``run()`` is the Engine.IO handler's body."""

    __slots__ = (
        "_calls", "_close_reason", "_dropped", "_ended", "_inline_task", "_pending", "_read_ahead", "_reason_known",
        "_released", "_server", "_work", "connection", "eio", "sockets", "__weakref__",
    )

    def __init__(self, server: SocketIOServer, eio: EngineSocket) -> None:
        self._server = server
        self.eio = eio
        config = server.config
        self.connection = SocketIOConnection(
            namespaces=server._handlers,
            connect_timeout=config.connect_timeout,
            now=trio.current_time(),
            max_attachments=config.max_attachments,
            connect_rate=config.connect_rate,
            connect_burst=config.connect_burst,
            # Engine.IO v3 clients (socket.io-client 1.x/2.x) speak Socket.IO protocol 4
            protocol=4 if eio.protocol == 3 else 5,
        )
        self.sockets: dict[str, Socket] = {}
        self._calls: dict[int, _PendingCall] = {}
        self._work: Inbox[tuple[_Work, bool]] = Inbox()
        self._read_ahead = _ReadAhead(config.max_queued_events)
        self._close_reason = "transport close"
        #: The Engine.IO session ended without a goodbye (see ``Socket.dropped``).
        self._dropped = False
        self._ended = False
        self._reason_known = False
        #: Work queued for the dispatcher or being handled by it: an inline
        #: handler may run only at zero (order, one handler at a time).
        self._pending = 0
        #: The transport task running an inline handler, while it does; the
        #: dispatcher waits for it to finish before handling anything.
        self._inline_task: trio.lowlevel.Task | None = None
        #: Set when an inline handler ends, for a dispatcher waiting on it.
        self._released: trio.Event | None = None
        if eio.protocol == 3:  # protocol 4: in "/" from the start, handled before anything the client sends
            for event in self.connection.open_implicit(trio.current_time()):
                self._queue_work(event, from_client=False)
            self._flush()  # a refusal ("/" not accepting now) is answered at once

    async def run(self) -> None:
        try:
            await self._dispatch()
        finally:
            if not self._reason_known:  # cancelled from outside: the server is stopping
                self._close_reason = "server shutting down"
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + _SHUTDOWN_GRACE
                for socket in list(self.sockets.values()):
                    await self._end_socket(socket, self._close_reason, dropped=self._dropped)

    # -- driven by the Engine.IO session (EngineReceiver) --------------------

    async def on_message(self, message: str | bytes) -> None:
        """One Engine.IO message, in the transport's task: acks resolve at once,
        the rest queues for the dispatcher; at most ``max_queued_events`` may
        wait, then this waits (and the transport stops reading the client)."""
        events = self.connection.receive_message(message, trio.current_time())
        self._flush()
        read_ahead = self._read_ahead
        for event in events:
            if isinstance(event, AckReceived):
                self._resolve(event)
            elif isinstance(event, ConnectionClosed):
                self._close(event)
                return
            elif (
                isinstance(event, EventReceived)
                and self._pending == 0
                and self._inline_task is None
                and (event.namespace, event.event) in self._server._inline
            ):
                await self._run_inline(event)
            else:
                # queued in the order the messages came, even when two
                # transports deliver (a POST during the upgrade)
                await read_ahead.acquire()
                try:
                    self._queue_work(event, from_client=True)
                except trio.ClosedResourceError:  # the session ended meanwhile
                    read_ahead.release()
                    return

    def on_close(self, reason: str) -> None:
        if not self._reason_known:  # our own close set a better one
            self._close_reason = _ENGINE_REASONS.get(reason, reason)
            self._dropped = self.eio.dropped
            self._reason_known = True
        self._ended = True
        self._fail_calls(None)
        self._work.close()  # the dispatcher finishes what is queued, then run() ends

    def next_deadline(self) -> float | None:
        return self.connection.next_deadline()

    def on_timer(self, now: float) -> None:
        for event in self.connection.on_timer(now):
            if isinstance(event, ConnectionClosed):
                self._close(event)

    def _resolve(self, event: AckReceived) -> None:
        call = self._calls.pop(event.ack_id, None)
        if call is not None:
            call.args = event.args
            call.done.set()

    def _close(self, event: ConnectionClosed) -> None:
        logger.debug(
            "eio %s: closing, %s (%s)", self.eio.sid, event.reason, event.detail,
            extra={"connection_id": self.eio.sid},
        )
        self._close_reason = event.reason
        self._reason_known = True
        self.eio.close()

    async def _run_inline(self, event: EventReceived) -> None:
        """An ``inline=True`` handler, in the transport's task: nothing of this
        session is queued or running, so order and one-at-a-time hold."""
        self._inline_task = trio.lowlevel.current_task()
        try:
            await self._event(event)
        finally:
            self._inline_task = None
            released, self._released = self._released, None
            if released is not None:
                released.set()

    # -- the dispatcher -------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            try:
                work, from_client = await self._work.get()
            except trio.EndOfChannel:
                return
            try:
                while self._inline_task is not None:  # an inline handler runs: after it
                    if self._released is None:
                        self._released = trio.Event()
                    await self._released.wait()
                await self._handle(work)
            finally:
                self._pending -= 1
                if from_client:
                    self._read_ahead.release()

    def _queue_work(self, work: _Work, *, from_client: bool) -> None:
        self._work.put_nowait((work, from_client))  # raises once the session ended
        self._pending += 1

    async def _handle(self, work: _Work) -> None:
        if isinstance(work, ConnectRequested):
            await self._connect(work)
        elif isinstance(work, EventReceived):
            await self._event(work)
        elif isinstance(work, DisconnectRequested):
            socket = self.sockets.get(work.namespace)
            if socket is not None:
                socket._state = "closed"
                await self._end_socket(socket, "client namespace disconnect")
        elif isinstance(work, _ServerDisconnect):
            await self._end_socket(work.socket, "server namespace disconnect")

    async def _connect(self, request: ConnectRequested) -> None:
        namespace = request.namespace
        socket = Socket(secrets.token_urlsafe(15), namespace, self.eio, self)
        self.sockets[namespace] = socket
        handler = self._server._handlers.get(namespace, {}).get("connect")
        refusal: ConnectionRefused | None = None
        try:
            if handler is not None:
                await handler(socket, request.auth)
        except ConnectionRefused as exc:
            refusal = exc
        except Exception:
            logger.exception(
                "connect handler of %s failed (eio %s)", namespace, self.eio.sid,
                extra={"connection_id": self.eio.sid},
            )
            refusal = ConnectionRefused("Internal server error")
        if refusal is None and socket._state == "closed":
            refusal = ConnectionRefused("Disconnected by the server")
        if refusal is None and self.connection.accept_namespace(namespace, socket.sid):
            self._flush()
            socket._state = "connected"
            buffered, socket._buffer = socket._buffer, []
            for encoded, replace_key in buffered:
                socket.send_encoded(encoded, replace_key=replace_key)
            logger.debug(
                "eio %s: %s joined %s", self.eio.sid, socket.sid, namespace,
                extra={"connection_id": self.eio.sid},
            )
            return
        if refusal is not None:
            self.connection.refuse_namespace(namespace, refusal.message, refusal.data)
            self._flush()
        socket._state = "closed"
        socket._buffer.clear()
        socket._disconnect_handled = True  # it never connected: no disconnect handler
        if self.sockets.get(namespace) is socket:
            del self.sockets[namespace]

    async def _event(self, event: EventReceived) -> None:
        socket = self.sockets.get(event.namespace)
        if socket is None or not socket.connected:
            logger.debug(
                "eio %s: %r for %s dropped, not connected", self.eio.sid, event.event, event.namespace,
                extra={"connection_id": self.eio.sid},
            )
            return
        handler = self._server._handlers.get(event.namespace, {}).get(event.event)
        if handler is None:
            logger.debug(
                "eio %s: no handler for %r on %s", self.eio.sid, event.event, event.namespace,
                extra={"connection_id": self.eio.sid},
            )
            return
        socket._ack_id = event.ack_id
        try:
            result = await handler(socket, *event.args)
        except Exception:
            logger.exception(
                "handler of %r on %s failed (eio %s)", event.event, event.namespace, self.eio.sid,
                extra={"connection_id": self.eio.sid},
            )
            return
        finally:
            ack_id, socket._ack_id = socket._ack_id, None  # None: taken by the handler (Socket.take_ack)
        if ack_id is not None:
            self.connection.send_ack(event.namespace, ack_id, _ack_args(result))
            self._flush()

    async def _end_socket(self, socket: Socket, reason: str, *, dropped: bool = False) -> None:
        """Forget a socket and run its disconnect handler, exactly once.
        ``dropped``: the client vanished without a goodbye (``Socket.dropped``)."""
        if self.sockets.get(socket.namespace) is socket:
            del self.sockets[socket.namespace]
        socket._state = "closed"
        if socket._disconnect_handled:
            return
        socket._disconnect_handled = True
        socket.dropped = dropped
        self._fail_calls(socket)
        handler = self._server._handlers.get(socket.namespace, {}).get("disconnect")
        if handler is None:
            return
        try:
            await handler(socket, reason)
        except Exception:
            logger.exception(
                "disconnect handler of %s failed (eio %s)", socket.namespace, self.eio.sid,
                extra={"connection_id": self.eio.sid},
            )

    # -- what sockets ask of their session --------------------------------

    def send_messages(
        self, messages: Sequence[SharedMessage], *, replace_key: Hashable | None = None, coalesce: bool = False
    ) -> None:
        if len(messages) == 1:
            self.eio.send(messages[0], replace_key=replace_key, coalesce=coalesce)
        else:
            # Attachments must stay with their packet; they are never replaced.
            self.eio.send_many(messages, coalesce=coalesce)

    def send_ack(self, socket: Socket, ack_id: int, args: list[Any]) -> None:
        """A taken ack (:class:`~.sockets.Ack`) being sent; dropped once the socket is gone."""
        if socket.connected and self.sockets.get(socket.namespace) is socket:
            self.connection.send_ack(socket.namespace, ack_id, args)
            self._flush(coalesce=True)  # with what else its sender sends this client

    def _flush(self, *, coalesce: bool = False) -> None:
        for group in self.connection.data_to_send():
            if len(group) == 1:
                self.eio.send(group[0], coalesce=coalesce)
            else:
                self.eio.send_many(group, coalesce=coalesce)

    async def call(self, socket: Socket, event: str, args: list[Any], timeout: float) -> list[Any]:
        if self._inline_task is not None and self._inline_task is trio.lowlevel.current_task():
            raise RuntimeError(
                "Socket.call in an inline handler would wait for a client nobody is reading;"
                " register that handler without inline=True"
            )
        if self._ended or not socket.connected or not self.connection.is_connected(socket.namespace):
            raise SocketDisconnected(f"socket {socket.sid} is not connected")
        ack_id = self.connection.allocate_ack_id(socket.namespace)
        pending = _PendingCall(socket)
        self._calls[ack_id] = pending
        try:
            packet = SocketIOPacket(PacketType.EVENT, socket.namespace, [event, *args], ack_id)
            self.send_messages([SharedMessage(item) for item in encode_packet(packet)])
            with trio.fail_after(timeout):
                await pending.done.wait()
        finally:
            self._calls.pop(ack_id, None)
            self.connection.forget_ack(ack_id)
        if pending.args is None:
            raise SocketDisconnected(f"socket {socket.sid} disconnected before answering {event!r}")
        return pending.args

    def _fail_calls(self, socket: Socket | None) -> None:
        """Wake the calls waiting on ``socket`` (all of them for None) with no answer."""
        for ack_id, pending in list(self._calls.items()):
            if socket is None or pending.socket is socket:
                del self._calls[ack_id]
                pending.done.set()

    def disconnect_socket(self, socket: Socket) -> None:
        if socket._state == "connecting":
            socket._state = "closed"  # the connect request is then refused
            return
        if socket._state != "connected":
            return
        socket._state = "closed"
        if self.connection.disconnect_namespace(socket.namespace):
            self._flush()
        self._fail_calls(socket)
        try:
            self._queue_work(_ServerDisconnect(socket), from_client=False)
        except trio.ClosedResourceError:
            pass  # the session is ending: run() ends every socket left


def _ack_args(result: Any) -> list[Any]:
    """A handler's return value as ack arguments: None -> [], tuple -> several."""
    if result is None:
        return []
    if isinstance(result, tuple):
        return list(result)
    return [result]
