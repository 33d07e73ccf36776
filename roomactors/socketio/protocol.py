"""SocketIOConnection: the Socket.IO v5 state of one Engine.IO session, sans-IO.

Like h11's ``Connection``, it never touches a socket or a clock: Engine.IO
messages and ``now`` go in, events and outgoing messages come out. That keeps
every protocol rule (namespaces, acks, attachments, the connect timeout)
testable synchronously, byte for byte, and leaves the trio code in
``session.py`` with nothing to decide but *when* to run handlers.

Rules it enforces, all of which close the connection (and only it):
an undecodable packet, a packet type a client may not send (CONNECT_ERROR),
binary data while no attachment is expected, text while attachments are
pending, CONNECT to a namespace already joined or joining, and any other packet
for a namespace that was never joined.

``protocol=4`` speaks Socket.IO protocol 4 instead (socket.io-client 1.x/2.x,
over Engine.IO v3): the main namespace is joined implicitly as the session
opens (:meth:`SocketIOConnection.open_implicit`), a CONNECT carries no auth
(its namespace may carry the client's query, ``/lobby?x=1``, which is
dropped), the CONNECT ack has no payload and CONNECT_ERROR carries the
message as a plain JSON string (``4/lobby,"Invalid namespace"``).
"""

from __future__ import annotations

import logging
from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from .errors import ProtocolViolation
from .packets import (
    DEFAULT_MAX_ATTACHMENTS,
    PacketType,
    SocketIOPacket,
    attach_binary,
    decode_text,
    encode_packet,
)

__all__ = (
    "SocketIOConnection",
    "ConnectRequested",
    "EventReceived",
    "AckReceived",
    "DisconnectRequested",
    "ConnectionClosed",
    "ConnectionEvent",
    "OutgoingMessages",
    "DEFAULT_CONNECT_BURST",
    "DEFAULT_CONNECT_RATE",
    "TOO_MANY_CONNECTS",
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ConnectRequested:
    """The client asks to join ``namespace``: answer with accept/refuse_namespace."""

    namespace: str
    auth: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class EventReceived:
    """An event; when ``ack_id`` is not None the client waits for ``send_ack``."""

    namespace: str
    event: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True)
class AckReceived:
    """The client answered a server-side call made with ``allocate_ack_id``."""

    namespace: str
    ack_id: int
    args: list[Any]


@dataclass(frozen=True, slots=True)
class DisconnectRequested:
    """The client left ``namespace``; the Engine.IO session stays open."""

    namespace: str


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Close the Engine.IO session: a protocol violation or the connect timeout.

    ``reason`` is the Socket.IO disconnect reason the sockets of this
    connection see ("parse error", "connect timeout"); ``detail`` is for logs.
    """

    reason: str
    detail: str = ""


ConnectionEvent = Union[
    ConnectRequested, EventReceived, AckReceived, DisconnectRequested, ConnectionClosed
]

#: Engine.IO messages that must be sent together, in order (one text packet
#: and its binary attachments). Length 1 for plain text packets.
OutgoingMessages = tuple[Union[str, bytes], ...]

_NamespaceState = Literal["connecting", "connected"]

#: Namespace joins one connection may make: a bucket of this many, refilled at
#: this rate per second. Generous for real clients (one join per namespace, and
#: a rejoin now and then); a loop of leave-and-rejoin gets CONNECT_ERROR.
DEFAULT_CONNECT_BURST = 10
DEFAULT_CONNECT_RATE = 1.0
TOO_MANY_CONNECTS = "Too many namespace connections; slow down"


@dataclass(slots=True)
class _PendingBinary:
    packet: SocketIOPacket
    expected: int
    received: list[bytes] = field(default_factory=list)


class SocketIOConnection:
    """The Socket.IO side of one Engine.IO session.

    ``namespaces`` is consulted on each CONNECT (pass a live view, such as a
    dict's keys, so namespaces declared later count); a CONNECT to anything
    else is answered CONNECT_ERROR "Invalid namespace" here, without the
    application hearing of it.
    """

    __slots__ = (
        "_connect_burst", "_connect_deadline", "_connect_rate", "_connect_refilled_at", "_connect_tokens",
        "_max_attachments", "_namespaces", "_next_ack_id", "_outgoing", "_pending_acks", "_pending_binary",
        "_protocol", "_states", "closed",
    )

    def __init__(
        self,
        *,
        namespaces: Container[str],
        connect_timeout: float,
        now: float,
        max_attachments: int = DEFAULT_MAX_ATTACHMENTS,
        connect_rate: float = DEFAULT_CONNECT_RATE,
        connect_burst: int = DEFAULT_CONNECT_BURST,
        protocol: int = 5,
    ) -> None:
        if protocol not in (4, 5):
            raise ValueError(f"Socket.IO protocol must be 4 or 5, got {protocol!r}")
        self._protocol = protocol
        self._namespaces = namespaces
        self._connect_deadline: float | None = now + connect_timeout
        self._max_attachments = max_attachments
        self._connect_rate = connect_rate
        self._connect_burst = float(connect_burst)
        self._connect_tokens = float(connect_burst)
        self._connect_refilled_at = now
        self._states: dict[str, _NamespaceState] = {}
        self._pending_binary: _PendingBinary | None = None
        self._outgoing: list[OutgoingMessages] | None = None  # none held while idle
        self._next_ack_id = 0
        self._pending_acks: dict[int, str] = {}
        self.closed = False

    # -- incoming -------------------------------------------------------

    def receive_message(self, message: str | bytes, now: float) -> list[ConnectionEvent]:
        """Feed one Engine.IO message; returns what the application must handle."""
        if self.closed:
            return []
        try:
            return self._receive(message, now)
        except ProtocolViolation as exc:
            return [self._close("parse error", str(exc))]

    def _receive(self, message: str | bytes, now: float) -> list[ConnectionEvent]:
        pending = self._pending_binary
        if isinstance(message, (bytes, bytearray, memoryview)):
            if pending is None:
                raise ProtocolViolation("binary message without a binary packet")
            pending.received.append(bytes(message))
            if len(pending.received) < pending.expected:
                return []
            self._pending_binary = None
            return self._handle(attach_binary(pending.packet, pending.received), now)
        if pending is not None:
            raise ProtocolViolation("text packet while attachments are pending")
        decoded = decode_text(message, max_attachments=self._max_attachments)
        if decoded.attachments:
            # Check the namespace now, not after buffering megabytes for it.
            self._check_joined(decoded.packet)
            self._pending_binary = _PendingBinary(decoded.packet, decoded.attachments)
            return []
        return self._handle(decoded.packet, now)

    def open_implicit(self, now: float) -> list[ConnectionEvent]:
        """Protocol 4: the client is in ``/`` from the start, without asking;
        call once as the session opens (the CONNECT request it would have sent)."""
        if self._protocol != 4:
            raise RuntimeError("only Socket.IO protocol 4 joins / implicitly")
        return self._handle(SocketIOPacket(PacketType.CONNECT, "/"), now)

    def _connect_error(self, namespace: str, message: str, data: Any = None) -> None:
        payload: Any
        if self._protocol == 4:
            payload = message  # v4: the message alone, as a JSON string
        else:
            payload = {"message": message}
            if data is not None:
                payload["data"] = data
        self._queue(SocketIOPacket(PacketType.CONNECT_ERROR, namespace, payload))

    def _handle(self, packet: SocketIOPacket, now: float) -> list[ConnectionEvent]:
        namespace = packet.namespace
        if packet.type is PacketType.CONNECT:
            if self._protocol == 4:
                # v4 clients append their query to the namespace, and send no auth
                namespace = namespace.partition("?")[0]
                packet = SocketIOPacket(PacketType.CONNECT, namespace)
            if namespace in self._states:
                raise ProtocolViolation(f"CONNECT to {namespace} twice")
            if namespace not in self._namespaces:
                self._connect_error(namespace, "Invalid namespace")
                return []
            if not self._take_connect_token(now):
                # Joining a namespace costs the application a connect and a
                # disconnect, and a fresh socket starts with fresh per-socket
                # limits: leaving and rejoining in a loop must not bypass them.
                self._connect_error(namespace, TOO_MANY_CONNECTS)
                return []
            self._states[namespace] = "connecting"
            return [ConnectRequested(namespace, packet.data)]
        self._check_joined(packet)
        if packet.type is PacketType.DISCONNECT:
            del self._states[namespace]
            self._forget_acks_of(namespace)
            return [DisconnectRequested(namespace)]
        if packet.type in (PacketType.EVENT, PacketType.BINARY_EVENT):
            return [EventReceived(namespace, packet.data[0], packet.data[1:], packet.id)]
        assert packet.id is not None  # decode_text guarantees ACKs carry one
        return self._ack_received(namespace, packet.id, packet.data)

    def _take_connect_token(self, now: float) -> bool:
        elapsed = max(0.0, now - self._connect_refilled_at)
        self._connect_tokens = min(self._connect_burst, self._connect_tokens + elapsed * self._connect_rate)
        self._connect_refilled_at = now
        if self._connect_tokens < 1.0:
            return False
        self._connect_tokens -= 1.0
        return True

    def _check_joined(self, packet: SocketIOPacket) -> None:
        if packet.type is PacketType.CONNECT_ERROR:
            raise ProtocolViolation("a client may not send CONNECT_ERROR")
        if packet.namespace not in self._states:
            raise ProtocolViolation(f"packet for {packet.namespace}, never joined")

    def _ack_received(self, namespace: str, ack_id: int, args: list[Any]) -> list[ConnectionEvent]:
        if ack_id >= self._next_ack_id:
            raise ProtocolViolation(f"ack {ack_id} for a call never made")
        expected_namespace = self._pending_acks.get(ack_id)
        if expected_namespace is None:
            # Answered after the caller gave up (timeout): legitimate, dropped.
            logger.debug("late ack %d on %s dropped", ack_id, namespace)
            return []
        if expected_namespace != namespace:
            raise ProtocolViolation(f"ack {ack_id} on {namespace}, sent on {expected_namespace}")
        del self._pending_acks[ack_id]
        return [AckReceived(namespace, ack_id, args)]

    # -- the application's answers --------------------------------------

    def accept_namespace(self, namespace: str, sid: str) -> bool:
        """Send the CONNECT ack for a requested namespace.

        Returns False (and sends nothing) when the request is no longer
        pending: the client left the namespace or the connection closed while
        the connect handler ran.
        """
        if self.closed or self._states.get(namespace) != "connecting":
            return False
        self._states[namespace] = "connected"
        self._connect_deadline = None
        self._queue(SocketIOPacket(PacketType.CONNECT, namespace, {"sid": sid} if self._protocol == 5 else None))
        return True

    def refuse_namespace(self, namespace: str, message: str, data: Any = None) -> None:
        """Answer a requested namespace with CONNECT_ERROR."""
        if self.closed or self._states.get(namespace) != "connecting":
            return
        del self._states[namespace]
        self._connect_error(namespace, message, data)

    def disconnect_namespace(self, namespace: str) -> bool:
        """Server-side disconnect: send DISCONNECT, forget the namespace.

        Returns False when the namespace was not connected (nothing sent).
        """
        if self.closed or self._states.get(namespace) != "connected":
            return False
        del self._states[namespace]
        self._forget_acks_of(namespace)
        self._queue(SocketIOPacket(PacketType.DISCONNECT, namespace))
        return True

    def send_ack(self, namespace: str, ack_id: int, args: list[Any]) -> None:
        """Answer an event that carried ``ack_id`` (dropped if the namespace is gone)."""
        if self.closed or self._states.get(namespace) != "connected":
            return
        self._queue(SocketIOPacket(PacketType.ACK, namespace, args, ack_id))

    def allocate_ack_id(self, namespace: str) -> int:
        """A fresh ack id for a server-to-client call on ``namespace``.

        Ids count up per connection, so an ACK for an id at or beyond the next
        one is a client inventing answers, while one below it that is no
        longer pending is only late.
        """
        ack_id = self._next_ack_id
        self._next_ack_id += 1
        self._pending_acks[ack_id] = namespace
        return ack_id

    def forget_ack(self, ack_id: int) -> None:
        """The caller stopped waiting (timeout, cancel): a later answer is dropped."""
        self._pending_acks.pop(ack_id, None)

    def is_connected(self, namespace: str) -> bool:
        return not self.closed and self._states.get(namespace) == "connected"

    # -- time -------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When ``on_timer`` must run next: the connect timeout, until a join."""
        return None if self.closed else self._connect_deadline

    def on_timer(self, now: float) -> list[ConnectionEvent]:
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        return [self._close("connect timeout", "no namespace joined in time")]

    # -- outgoing -----------------------------------------------------------

    def data_to_send(self) -> list[OutgoingMessages]:
        """Take the queued outgoing messages, in order."""
        out, self._outgoing = self._outgoing, None
        if out is None:
            return []
        return out

    def _queue(self, packet: SocketIOPacket) -> None:
        if self._outgoing is None:
            self._outgoing = []
        self._outgoing.append(tuple(encode_packet(packet)))

    def _close(self, reason: str, detail: str) -> ConnectionClosed:
        self.closed = True
        self._pending_binary = None
        self._states.clear()
        self._pending_acks.clear()
        return ConnectionClosed(reason, detail)

    def _forget_acks_of(self, namespace: str) -> None:
        for ack_id in [i for i, ns in self._pending_acks.items() if ns == namespace]:
            del self._pending_acks[ack_id]
