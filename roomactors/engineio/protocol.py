"""Sans-IO Engine.IO session: handshake, heartbeat deadlines, upgrade, close.

Like :class:`~roomactors.socketio.protocol.SocketIOConnection` and the
WebSocket :class:`~.wsframes.FrameParser`, it speaks in typed events: packets
go in through :meth:`EngineSession.receive_packet`, deadlines through
:meth:`EngineSession.on_timer`, and each returns what happened as one of the
events below (or None); what to send waits in its outbox. Everything
time-related takes ``now`` as an argument and the caller asks
:meth:`EngineSession.next_deadline` when to call ``on_timer``, so the
heartbeat rules are tested with plain numbers and the trio layer only sleeps
until a deadline.

Heartbeat (Engine.IO v4, as the reference server does it): the server sends a
ping ``ping_interval`` after open; the pong must arrive within ``ping_timeout``
of that ping or the session is gone; after a pong the next ping is
``ping_interval`` after the pong.

Engine.IO v3 (``protocol == 3``, socket.io-client 1.x/2.x) turns the
heartbeat around: the client pings every ``ping_interval`` and the server
answers pong; a session that has not pinged for ``ping_interval +
ping_timeout`` (counted from open, then from each ping) is gone. Its polling
payloads are framed by :mod:`.packets_v3`.

Upgrade (polling -> websocket): a probe WebSocket sends ``2probe`` and gets
``3probe``; from then on polling GETs are released with a ``6`` noop and the
outbox is kept for the WebSocket; ``5`` switches the transport. A probe that
gives up (timeout) leaves the session on polling.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from .config import EngineIOConfig
from .outbox import Outbox, OutItem
from .packets import Packet, PacketError, PacketType, SharedMessage, encode_control, encode_open, encode_payload
from .packets_v3 import encode_binary_payload, encode_open_v3, encode_text_payload

__all__ = [
    "DROP_REASONS",
    "POLLING",
    "WEBSOCKET",
    "BadPacket",
    "Closed",
    "EngineSession",
    "MessageReceived",
    "PingQueued",
    "PingReceived",
    "PongReceived",
    "SessionEvent",
]

logger = logging.getLogger(__name__)

POLLING = "polling"
WEBSOCKET = "websocket"

CLOSE_PACKET = encode_control(PacketType.CLOSE)
PING_PACKET = encode_control(PacketType.PING)
NOOP_PACKET = encode_control(PacketType.NOOP)
DROP_REASONS = frozenset({"transport close", "transport error", "ping timeout"})
"""Close reasons that mean the client vanished without saying goodbye (its
transport closed or failed, or it missed its heartbeat); every other reason is
a goodbye: the client's close packet (``client close``) or a close the server
decided (``server close``, an overflow, a protocol error)."""

#: Outbox replace keys of the heartbeat's packets: at most one of each is queued.
_PING_KEY = ("engineio", "ping")
_PONG_KEY = ("engineio", "pong")


# Events are plain slotted dataclasses, not frozen ones, as in .wsframes: every
# client message makes one, and a frozen __init__ costs 3.5 times as much.
# One packet or deadline makes at most one event, so no list is built for it.
# Treat them as read-only all the same.


@dataclass(slots=True)
class MessageReceived:
    """A MESSAGE packet: ``data`` goes to the application as it came."""

    data: str | bytes


@dataclass(slots=True)
class PongReceived:
    """The client answered our ping: the heartbeat's next deadline moved."""


@dataclass(slots=True)
class PingReceived:
    """The client pinged (the Engine.IO v3 heartbeat): a pong is queued (one at
    most) and, for v3, the client's deadline moved."""


@dataclass(slots=True)
class PingQueued:
    """A deadline passed and our ping is queued: the pong is due by
    :meth:`EngineSession.next_deadline`."""


@dataclass(slots=True)
class Closed:
    """The session ended by itself: the client's close packet ("client close")
    or its missing heartbeat ("ping timeout"). Nothing is sent to the client."""

    reason: str


@dataclass(slots=True)
class BadPacket:
    """A packet that makes no sense here (``detail`` says why): the session
    is closed ("protocol error: ...") and the transport refuses the request."""

    detail: str


SessionEvent = MessageReceived | PongReceived | PingReceived | PingQueued | Closed | BadPacket


class EngineSession:
    """The state of one session, driven by packets and ``now``; no I/O."""

    __slots__ = (
        "_next_ping_at", "_pong_deadline", "binary_payloads", "close_reason", "closed", "config", "flush_on_close",
        "opened_at", "outbox", "protocol", "sid", "transport", "upgrading",
    )

    def __init__(
        self, sid: str, config: EngineIOConfig, now: float, transport: str, *, protocol: int = 4,
        binary_payloads: bool = False,
    ) -> None:
        self.sid = sid
        self.config = config
        self.transport = transport
        self.outbox = Outbox(config.outbox_max_messages, config.outbox_max_bytes)
        self.opened_at = now
        self.closed = False
        self.close_reason: str | None = None
        #: Closed by the server: what is queued (and the close packet) still goes out.
        self.flush_on_close = False
        #: True while a probe WebSocket has answered ``3probe`` and ``5`` is awaited.
        self.upgrading = False
        #: The Engine.IO protocol revision the client speaks: 4, or 3 (legacy).
        self.protocol = protocol
        #: v3 only: the client reads binary polling payloads (XHR2: it did not
        #: ask ``b64=1``), which keep UTF-8 text intact for 1.x and 2.x alike.
        self.binary_payloads = protocol == 3 and binary_payloads
        if protocol == 3:
            # The client pings: no ping of ours, only its deadline.
            self._next_ping_at = math.inf
            self._pong_deadline: float | None = now + config.ping_interval + config.ping_timeout
        else:
            self._next_ping_at = now + config.ping_interval
            self._pong_deadline = None

    # -- handshake -----------------------------------------------------------

    def handshake_packet(self) -> str:
        """The OPEN packet; only a polling session offers the upgrade."""
        upgrades = [WEBSOCKET] if self.transport == POLLING else []
        if self.protocol == 3:
            return encode_open_v3(self.sid, upgrades, self.config.ping_interval, self.config.ping_timeout)
        return encode_open(
            self.sid, upgrades, self.config.ping_interval, self.config.ping_timeout, self.config.max_payload
        )

    def handshake_payload(self) -> str | bytes:
        """The OPEN packet as the handshake's polling response: v4 sends the
        packet alone, v3 frames it as a payload (see :mod:`.packets_v3`)."""
        if self.protocol == 4:
            return self.handshake_packet()
        return self._encode_payload([self.handshake_packet()])

    # -- heartbeat -----------------------------------------------------------

    def next_deadline(self) -> float:
        """When :meth:`on_timer` has something to do (inf once closed)."""
        if self.closed:
            return math.inf
        if self._pong_deadline is not None:
            return self._pong_deadline
        return self._next_ping_at

    @property
    def heartbeat_deadline(self) -> float:
        """When the heartbeat gives up on a client that stays silent from now
        on: its pong's deadline, or ``ping_timeout`` after the next ping. Kept
        after the close, so waiting for a close packet to be fetched never
        outlasts it (a polling client that is gone fetches nothing)."""
        if self._pong_deadline is not None:
            return self._pong_deadline
        return self._next_ping_at + self.config.ping_timeout

    def on_timer(self, now: float) -> PingQueued | Closed | None:
        """Send the ping that is due, or end the session whose pong is late."""
        if self.closed:
            return None
        if self._pong_deadline is not None:
            if now >= self._pong_deadline:
                self.close("ping timeout", notify_peer=False)
                return Closed("ping timeout")
        elif now >= self._next_ping_at:
            # Keyed like the pong: a client that answers pings without ever
            # reading (it pongs blindly) must not collect one ping per interval.
            self.outbox.append((PING_PACKET,), replace_key=_PING_KEY)
            self._pong_deadline = self._next_ping_at + self.config.ping_timeout
            return PingQueued()
        return None

    def pong_overdue(self, now: float) -> bool:
        """Whether a ping is unanswered past its deadline (``on_timer`` would close)."""
        return not self.closed and self._pong_deadline is not None and now >= self._pong_deadline

    def defer_pong_deadline(self, until: float) -> None:
        """Give an unanswered ping until ``until``: the transport could not
        read the client meanwhile (the application held it back)."""
        if not self.closed and self._pong_deadline is not None and self._pong_deadline < until:
            self._pong_deadline = until

    # -- received packets ----------------------------------------------------

    def receive_packet(self, packet: Packet, now: float) -> SessionEvent | None:
        """Apply one packet from the session's current transport and say what
        it was; None for what changes nothing (a noop, anything once closed).
        A packet that makes no sense here closes the session: :class:`BadPacket`."""
        if self.closed:
            return None
        kind = packet.type
        if kind is PacketType.MESSAGE:
            return MessageReceived(packet.data)
        if kind is PacketType.PONG:
            if self.protocol == 3:
                return None  # v3 servers never ping; a stray pong changes nothing
            self._pong_deadline = None
            self._next_ping_at = now + self.config.ping_interval
            return PongReceived()
        if kind is PacketType.CLOSE:
            self.close("client close", notify_peer=False)
            return Closed("client close")
        if kind is PacketType.NOOP:
            return None
        if kind is PacketType.PING and packet.data != "probe":
            # v4 clients do not ping; answering is harmless and what v3 did. One
            # queued pong at most: a client that pings without reading must not
            # grow the outbox (control packets are not counted against its limits).
            self.outbox.append((encode_control(PacketType.PONG, str(packet.data)),), replace_key=_PONG_KEY)
            if self.protocol == 3:  # the v3 heartbeat: each ping moves the client's deadline
                self._pong_deadline = now + self.config.ping_interval + self.config.ping_timeout
            return PingReceived()
        detail = f"unexpected {kind.name} packet on {self.transport}"
        self.close(f"protocol error: {detail}", notify_peer=False)
        return BadPacket(detail)

    # -- upgrade -------------------------------------------------------------

    @property
    def can_probe(self) -> bool:
        return not self.closed and self.transport == POLLING and not self.upgrading

    def begin_upgrade(self) -> str:
        """A probe sent ``2probe``: release polling, answer ``3probe``."""
        if not self.can_probe:
            raise PacketError("upgrade not possible now")
        self.upgrading = True
        return encode_control(PacketType.PONG, "probe")

    def complete_upgrade(self) -> None:
        """The probe sent ``5``: the WebSocket is the transport from now on."""
        if self.closed or not self.upgrading:
            raise PacketError("upgrade packet without a probe")
        self.upgrading = False
        self.transport = WEBSOCKET

    def abort_upgrade(self) -> None:
        """The probe failed or timed out; polling goes on."""
        self.upgrading = False

    # -- outgoing ------------------------------------------------------------

    def take_polling_payload(self, *, final: bool = False) -> str | bytes | None:
        """What a GET answers now, or None to keep waiting.

        While upgrading, GETs are released with a noop and the outbox waits for
        the WebSocket. ``final`` (the GET must be answered now: the session
        ended or the request overlapped) adds the close packet if the session
        is closed and the outbox does not already end with it.

        A v3 session's payload is framed as v3 does (bytes for a client that
        reads binary payloads, see :mod:`.packets_v3`).
        """
        if self.upgrading or (self.transport != POLLING and not self.closed):
            return self._encode_payload([NOOP_PACKET])
        items = self.outbox.take_all()
        if self.closed and (final or items) and CLOSE_PACKET not in items:
            items.append(CLOSE_PACKET)
        if not items:
            return self._encode_payload([NOOP_PACKET]) if final else None
        return self._encode_payload(items)

    def noop_payload(self) -> str | bytes:
        """A noop as a whole polling body, framed for the session's protocol."""
        return self._encode_payload([NOOP_PACKET])

    def _encode_payload(self, items: list[OutItem]) -> str | bytes:
        if self.protocol == 4:
            return encode_payload([item.polling if isinstance(item, SharedMessage) else item for item in items])
        if not self.binary_payloads:
            return encode_text_payload([item.polling_v3 if isinstance(item, SharedMessage) else item for item in items])
        return encode_binary_payload([item.websocket_v3 if isinstance(item, SharedMessage) else item for item in items])

    def take_websocket_frames(self) -> list[str | bytes]:
        """Every queued packet, one WebSocket frame each."""
        if self.protocol == 3:
            return [item.websocket_v3 if isinstance(item, SharedMessage) else item for item in self.outbox.take_all()]
        return [_ws_frame(item) for item in self.outbox.take_all()]

    # -- close ---------------------------------------------------------------

    def close(self, reason: str, *, notify_peer: bool) -> None:
        """End the session. With ``notify_peer`` the queued messages and a close
        packet are still delivered (server-initiated close); without, whatever
        is queued is dropped (the peer is gone, late, or cannot keep up)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.upgrading = False
        self.flush_on_close = notify_peer
        if notify_peer:
            self.outbox.append_control(CLOSE_PACKET)
        else:
            self.outbox.clear()
        logger.debug("session %s closed: %s", self.sid, reason)


def _ws_frame(item: OutItem) -> str | bytes:
    return item.websocket if isinstance(item, SharedMessage) else item
