"""EngineSocket: one Engine.IO session as the application sees it, and the
trio glue (wake-ups, received messages) its transports use.

The sans-IO :class:`~.protocol.EngineSession` holds the protocol state; this
class adds what needs trio: an event the transport writer waits on, the
received messages (handed to an :class:`EngineReceiver` in the transport's
task, or queued in a bounded :class:`~.inbox.Inbox` for :meth:`receive`;
either way a receiver that waits or a full inbox stops the transport reading
that client: back-pressure on that client only), and the session's lifetime.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Callable, Protocol

import trio

from .coalesce import defer_write
from .errors import EngineClosed
from .inbox import Inbox
from .outbox import OutboxOverflow
from .packets import Packet, SharedMessage
from .protocol import DROP_REASONS, EngineSession, PingReceived, PongReceived, SessionEvent

__all__ = ["EngineReceiver", "EngineSocket"]

logger = logging.getLogger(__name__)

#: Received messages buffered for the handler before the transport stops reading.
INBOUND_BUFFER = 16


class EngineReceiver(Protocol):
    """What an application layer gives :meth:`EngineSocket.set_receiver` so that
    the transports drive it directly instead of a reader task of its own
    (a task, its frames and a queue per connection: KBs, issue 4)."""

    async def on_message(self, data: str | bytes) -> None:
        """One received message, awaited in the transport's task, in arrival
        order; the transport reads nothing more from that client meanwhile
        (back-pressure). Must not raise."""

    def on_close(self, reason: str) -> None:
        """The session ended (``reason`` as in :attr:`EngineSocket.close_reason`);
        called once, synchronously, by whatever closed it."""

    def next_deadline(self) -> float | None:
        """When :meth:`on_timer` has something to do (None: never); asked by
        the session's heartbeat, which sleeps until the earlier of both."""

    def on_timer(self, now: float) -> None:
        """A deadline given by :meth:`next_deadline` may have passed."""


class EngineSocket:
    """One Engine.IO session as the application sees it.

    The application uses ``send``/``send_many``/``close`` (never block) and
    ``receive``/``async for`` (raise :class:`EngineClosed` / end once the
    session is over and every message received before was taken). The methods
    under "transport side" are for this package's transports only.

    Slotted, and its wake-up events exist only while someone waits on them:
    one is held per connection for the connection's life (issue 4).
    """

    __slots__ = (
        "_session", "sid", "remote_address", "query", "headers", "_on_close", "get_pending", "post_pending",
        "_changed", "_deadline_changed", "_closed_event", "_close_handled", "_inbound", "on_notify", "_receiver",
        "_delivering", "_pong_unread",
    )

    def __init__(
        self,
        session: EngineSession,
        *,
        remote_address: str | None,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        on_close: Callable[[EngineSocket], None] | None = None,
    ) -> None:
        self._session = session
        self.sid: str = session.sid
        self.remote_address = remote_address
        self.query: Mapping[str, str] = query
        self.headers: Mapping[str, str] = headers
        self._on_close = on_close
        #: Long-polling bookkeeping: one GET and one POST at a time.
        self.get_pending = False
        self.post_pending = False
        self._changed: trio.Event | None = None
        self._deadline_changed: trio.Event | None = None
        self._closed_event: trio.Event | None = None
        self._close_handled = False
        #: Made by the first message for :meth:`receive` (none with a receiver).
        self._inbound: Inbox[str | bytes] | None = None
        #: Called by :meth:`notify`, synchronously: the WebSocket transport
        #: writes from here instead of waking a writer task (see .websocket).
        self.on_notify: Callable[[], None] | None = None
        self._receiver: EngineReceiver | None = None
        #: Transport deliveries waiting on the application (see :meth:`deliver`).
        self._delivering = 0
        #: The pong deadline passed while the transport was held back by the
        #: application: decided once reading resumes (see :meth:`run_heartbeat`).
        self._pong_unread = False

    def __repr__(self) -> str:
        return f"<EngineSocket {self.sid} {self.transport}{' closed' if self.closed else ''}>"

    # -- application API -----------------------------------------------------

    @property
    def transport(self) -> str:
        """"polling" or "websocket"; changes on upgrade."""
        return self._session.transport

    @property
    def closed(self) -> bool:
        return self._session.closed

    @property
    def protocol(self) -> int:
        """The Engine.IO protocol revision the client speaks: 4, or 3 for the
        legacy clients (socket.io-client 1.x/2.x), which cannot resume a
        session and get the room protocol's legacy mode (docs/protocol.md)."""
        return self._session.protocol

    @property
    def close_reason(self) -> str | None:
        return self._session.close_reason

    @property
    def dropped(self) -> bool:
        """True once the session ended without a goodbye: the transport closed or
        failed, or the client missed its heartbeat (``DROP_REASONS``). False while
        open, and after the client's close packet or a close by the server."""
        return self._session.close_reason in DROP_REASONS

    def send(
        self, data: str | bytes | SharedMessage, *, replace_key: Hashable | None = None, coalesce: bool = False
    ) -> None:
        """Queue one message; never blocks. Dropped silently once closed. An
        outbox overflow closes the session (see :mod:`.outbox`).

        With ``coalesce``, inside a :func:`~.coalesce.coalesced_writes` block of
        this task, the write waits for the block's end (to leave with what else
        the block sends this client); otherwise, and outside one, it is at once.
        """
        self._append((_as_message(data),), replace_key, coalesce)

    def holds(self, replace_key: Hashable) -> bool:
        """Whether a message sent with ``replace_key`` is still queued (undelivered)."""
        return not self._session.closed and self._session.outbox.holds(replace_key)

    def send_many(self, items: Sequence[str | bytes | SharedMessage], *, coalesce: bool = False) -> None:
        """Queue several messages that must stay together and in order."""
        if items:
            self._append(tuple(_as_message(item) for item in items), None, coalesce)

    def close(self) -> None:
        """End the session; queued messages and a close packet still go out."""
        self._session.close("server close", notify_peer=True)
        self._sync()

    async def receive(self) -> str | bytes:
        """The next message from the client; raises :class:`EngineClosed`
        once the session ended and every earlier message was taken."""
        try:
            return await self._inbox().get()
        except trio.EndOfChannel:
            raise EngineClosed(self.close_reason or "closed") from None

    def __aiter__(self) -> EngineSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except EngineClosed:
            raise StopAsyncIteration from None

    def set_receiver(self, receiver: EngineReceiver) -> None:
        """Have the transports hand every message to ``receiver`` instead of
        :meth:`receive`. Call it before any message can arrive: from
        ``EngineIOServer``'s ``on_open``, as the session opens."""
        if self._receiver is not None or self._inbound is not None or self._close_handled:
            raise RuntimeError("set_receiver() after messages were received")
        self._receiver = receiver

    def _inbox(self) -> Inbox[str | bytes]:
        if self._inbound is None:
            self._inbound = Inbox(INBOUND_BUFFER)
            if self._close_handled:
                self._inbound.close()
        return self._inbound

    @property
    def receiver(self) -> EngineReceiver | None:
        return self._receiver

    # -- transport side ------------------------------------------------------

    @property
    def session(self) -> EngineSession:
        return self._session

    def _append(self, items: tuple[SharedMessage, ...], replace_key: Hashable | None, coalesce: bool) -> None:
        if self._session.closed:
            return
        try:
            self._session.outbox.append(items, replace_key=replace_key)
        except OutboxOverflow as exc:
            logger.info("session %s: %s; closing", self.sid, exc)
            self._session.close("outbox overflow", notify_peer=False)
        else:
            if coalesce and self.on_notify is not None and defer_write(self.notify):
                return  # written when the caller's coalesced_writes() block ends
        self._sync()

    def handle_packet(self, packet: Packet) -> SessionEvent | None:
        """Apply a received packet and return the session's event for the
        transport to act on (deliver a :class:`~.protocol.MessageReceived`,
        refuse after a :class:`~.protocol.BadPacket`, which closed the session)."""
        event = self._session.receive_packet(packet, trio.current_time())
        if type(event) is PongReceived or type(event) is PingReceived:  # moves the heartbeat deadline
            self._wake_heartbeat()
        self._sync()
        return event

    async def deliver(self, data: str | bytes) -> bool:
        """Hand a message to the application, waiting while its buffer is full.
        False when the session ended meanwhile.

        While this waits the transport reads nothing more from the client, so
        a pong it sent may sit unread behind this message: the heartbeat does
        not time the session out meanwhile, and gives the pong ``ping_timeout``
        once reading resumes. An overloaded server makes its clients late, it
        does not drop them all for pongs it has not read."""
        self._delivering += 1
        try:
            receiver = self._receiver
            if receiver is not None:
                if self._session.closed:
                    return False
                await receiver.on_message(data)
                return True
            try:
                await self._inbox().put(data)
            except trio.ClosedResourceError:
                return False
            return True
        finally:
            self._delivering -= 1
            if self._delivering == 0 and self._pong_unread:
                self._pong_unread = False
                self._session.defer_pong_deadline(trio.current_time() + self._session.config.ping_timeout)
                self._wake_heartbeat()

    def fail(self, reason: str) -> None:
        """End the session because of the peer or the transport (no close packet)."""
        self._session.close(reason, notify_peer=False)
        self._sync()

    def notify(self) -> None:
        """Something the writers wait on changed (outbox, transport, upgrade)."""
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()
        if self.on_notify is not None:
            self.on_notify()

    def _sync(self) -> None:
        if self._session.closed and not self._close_handled:
            self._close_handled = True
            if self._inbound is not None:
                self._inbound.close()
            if self._closed_event is not None:
                self._closed_event.set()
            self._wake_heartbeat()
            if self._on_close is not None:
                self._on_close(self)
            if self._receiver is not None:
                self._receiver.on_close(self.close_reason or "closed")
        self.notify()

    def _wake_heartbeat(self) -> None:
        event = self._deadline_changed
        if event is not None:
            self._deadline_changed = None
            event.set()

    async def wait_changed(self) -> None:
        """Until the next :meth:`notify`."""
        if self._changed is None:
            self._changed = trio.Event()
        await self._changed.wait()

    async def wait_closed(self) -> None:
        if self._close_handled:
            await trio.lowlevel.checkpoint()
            return
        if self._closed_event is None:
            self._closed_event = trio.Event()
        await self._closed_event.wait()

    async def run_heartbeat(self) -> None:
        """Sleep until each heartbeat deadline and apply it; ends with the session."""
        while not self._session.closed:
            if self._deadline_changed is None:
                self._deadline_changed = trio.Event()
            deadline_changed = self._deadline_changed
            deadline = math.inf if self._pong_unread else self._session.next_deadline()
            receiver = self._receiver
            if receiver is not None:
                theirs = receiver.next_deadline()
                if theirs is not None and theirs < deadline:
                    deadline = theirs
            with trio.move_on_at(deadline):
                await deadline_changed.wait()
                continue
            now = trio.current_time()
            if receiver is not None:
                receiver.on_timer(now)
            if self._delivering and self._session.pong_overdue(now):
                self._pong_unread = True  # held back by us: see deliver()
            else:
                self._session.on_timer(now)
            self._sync()


def _as_message(data: str | bytes | SharedMessage) -> SharedMessage:
    return data if isinstance(data, SharedMessage) else SharedMessage(data)
