"""Socket (one client in one namespace) and EncodedEvent (an event encoded once).

A Socket is the application's handle: it hands messages to the Engine.IO
outbox and never waits, so an actor can emit to a thousand sockets without any
one of them slowing it down. Everything that needs the connection's state
(acks, disconnect) goes through the session that owns the socket.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..engineio.packets import SharedMessage
from .packets import RESERVED_EVENTS, PacketType, SocketIOPacket, encode_packet

if TYPE_CHECKING:
    from ..engineio import EngineSocket
    from .session import SocketIOSession

__all__ = ("Ack", "Socket", "EncodedEvent", "encode_event")

logger = logging.getLogger(__name__)

_State = Literal["connecting", "connected", "closed"]


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event encoded once, to be sent to any number of sockets of ``namespace``.

    ``messages`` holds one SharedMessage for a text event, or the text packet
    followed by its binary attachments; the Engine.IO layer caches each
    message's transport encoding, so a broadcast costs one encode in total.
    """

    namespace: str
    messages: tuple[SharedMessage, ...]


def encode_event(event: str, *args: Any, namespace: str = "/") -> EncodedEvent:
    """Encode ``event`` with ``args`` for ``namespace`` (see :class:`EncodedEvent`)."""
    if not isinstance(event, str) or event in RESERVED_EVENTS:
        raise ValueError(f"cannot emit reserved or non-string event name {event!r}")
    packet = SocketIOPacket(PacketType.EVENT, namespace, [event, *args])
    return EncodedEvent(namespace, tuple(SharedMessage(item) for item in encode_packet(packet)))


class Socket:
    """One client connected to one namespace.

    ``sid`` is this namespace connection's id (sent in the CONNECT ack), not
    the Engine.IO session id (``eio.sid``). While the connect handler runs the
    socket buffers what is emitted, so the client receives the CONNECT ack
    first, as the protocol requires.
    """

    __slots__ = (
        "_ack_id", "_buffer", "_disconnect_handled", "_session", "_state", "dropped", "eio", "namespace", "sid",
        "__weakref__",
    )

    def __init__(self, sid: str, namespace: str, eio: EngineSocket, session: SocketIOSession) -> None:
        self.sid = sid
        self.namespace = namespace
        self.eio = eio
        self._session = session
        self._state: _State = "connecting"
        self._buffer: list[tuple[EncodedEvent, Hashable | None]] = []
        self._disconnect_handled = False
        #: Set before the disconnect handler runs: True when the client vanished
        #: without a goodbye (no Socket.IO DISCONNECT, no Engine.IO close packet:
        #: its transport closed or failed, or it missed its heartbeat), False
        #: after a goodbye or a disconnect the server decided. An application
        #: may keep such a client's place for a while (race.md, reconnect grace).
        self.dropped = False
        #: The ack id of the event being handled, until a handler takes it
        #: (events of one connection are handled one at a time; None outside a
        #: handler, and when the client asked for no ack).
        self._ack_id: int | None = None

    @property
    def legacy(self) -> bool:
        """True for a socket.io-client 1.x/2.x client (Socket.IO protocol 4 over
        Engine.IO v3): it cannot resume a session, and applications may owe it
        older payload forms (the room protocol's legacy mode)."""
        return self.eio.protocol == 3

    @property
    def connected(self) -> bool:
        """True from the CONNECT ack until either side disconnects the namespace."""
        return self._state == "connected"

    def emit(self, event: str, *args: Any, replace_key: Hashable | None = None, coalesce: bool = False) -> None:
        """Send an event; returns at once (dropped if the socket is disconnected).

        With ``replace_key`` an undelivered earlier message with the same key
        is dropped in favour of this one (newest wins, Engine.IO outbox rules).
        Events with binary arguments travel as a group (packet + attachments)
        and ignore ``replace_key``: the Engine.IO layer replaces single messages.
        ``coalesce``: see :func:`roomactors.engineio.coalesced_writes`.
        """
        self.send_encoded(
            encode_event(event, *args, namespace=self.namespace), replace_key=replace_key, coalesce=coalesce
        )

    def send_encoded(
        self, event: EncodedEvent, *, replace_key: Hashable | None = None, coalesce: bool = False
    ) -> None:
        """Send an event made by ``encode_event``; never blocks.

        ``replace_key`` is scoped to this socket's namespace: a client on two
        namespaces of one connection keeps one newest message per namespace.
        """
        if event.namespace != self.namespace:
            raise ValueError(f"event encoded for {event.namespace}, socket is in {self.namespace}")
        if self._state == "connecting":
            if replace_key is not None:  # newest wins here too
                self._buffer = [entry for entry in self._buffer if entry[1] != replace_key]
            self._buffer.append((event, replace_key))
        elif self._state == "connected":
            key = None if replace_key is None else (self.namespace, replace_key)
            self._session.send_messages(event.messages, replace_key=key, coalesce=coalesce)
        else:
            logger.debug("socket %s on %s: emit after disconnect dropped", self.sid, self.namespace)

    def holds(self, replace_key: Hashable) -> bool:
        """Whether an event sent with ``replace_key`` (in this namespace) is still
        waiting in the connection's outbox, not yet written to the transport.

        A sender that must not lose what a replaced event carried (a feed of
        changes) merges it into the next one while this is true."""
        if self._state == "connecting":
            return any(key == replace_key for _, key in self._buffer)
        return self._state == "connected" and self.eio.holds((self.namespace, replace_key))

    def take_ack(self) -> Ack | None:
        """Take over the ack of the event being handled; call it from a handler.

        The handler's return value is then not sent: the returned :class:`Ack`
        is, when called (once, from any task, never blocking), the way Node's
        socket.io hands a handler its ack callback. This lets an actor answer a
        client from its own task, in the same write as whatever else it sends
        that client. None when the client asked for no ack, or it was taken.
        """
        ack_id, self._ack_id = self._ack_id, None
        return None if ack_id is None else Ack(self, ack_id)

    async def call(self, event: str, *args: Any, timeout: float = 60.0) -> list[Any]:
        """Emit an event with an ack and wait for the client's answer (its args).

        Raises ``trio.TooSlowError`` after ``timeout`` seconds and
        :class:`SocketDisconnected` when the socket goes away first.
        """
        encode_event(event, namespace=self.namespace)  # validates the name early
        return await self._session.call(self, event, list(args), timeout)

    def disconnect(self) -> None:
        """Server-side disconnect of this namespace; never blocks.

        The client receives DISCONNECT and the disconnect handler runs with
        reason ``"server namespace disconnect"``, after the handler running now.
        """
        self._session.disconnect_socket(self)

    def __repr__(self) -> str:
        return f"<Socket {self.sid} {self.namespace} eio={self.eio.sid} {self._state}>"


class Ack:
    """The ack of one received event, taken by :meth:`Socket.take_ack`.

    Calling it sends the ACK with ``args`` (at most once: later calls are
    ignored; dropped when the socket has disconnected meanwhile). Never blocks.
    """

    __slots__ = ("_socket", "ack_id")

    def __init__(self, socket: Socket, ack_id: int) -> None:
        self._socket: Socket | None = socket
        self.ack_id = ack_id

    @property
    def sent(self) -> bool:
        return self._socket is None

    def __call__(self, *args: Any) -> None:
        socket, self._socket = self._socket, None
        if socket is not None:
            socket._session.send_ack(socket, self.ack_id, list(args))

    def __repr__(self) -> str:
        return f"<Ack {self.ack_id}{' sent' if self._socket is None else ''}>"
