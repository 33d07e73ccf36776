"""Sans-IO codec for Engine.IO v4 packets and long-polling payloads.

python-engineio's :class:`engineio.packet.Packet` is used for the encodings it
gets right (the OPEN packet's JSON, base64 for binary), but decoding is ours:
its decoder json-decodes message data (``4"x"`` would lose its quotes), accepts
unknown packet types and its ``Payload`` refuses more than 16 packets per body.
A peer that sends garbage must be told apart from one that sends data, so every
received packet is validated here and a :class:`PacketError` names the problem.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import json
from dataclasses import dataclass

from engineio import packet as _eio_packet

from .wsframes import binary_frame, text_frame

__all__ = [
    "PacketType",
    "Packet",
    "PacketError",
    "SharedMessage",
    "RECORD_SEPARATOR",
    "decode_packet",
    "decode_payload",
    "encode_open",
    "encode_payload",
]

#: Separates packets in a long-polling body (Engine.IO v4).
RECORD_SEPARATOR = "\x1e"


class PacketType(enum.IntEnum):
    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class PacketError(ValueError):
    """The peer sent something that is not a valid Engine.IO packet."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded packet. ``data`` stays exactly what the peer sent: a raw
    string for text (never json-decoded), bytes for binary messages."""

    type: PacketType
    data: str | bytes = ""

    @property
    def binary(self) -> bool:
        return isinstance(self.data, bytes)


def decode_packet(raw: str | bytes) -> Packet:
    """Decode one packet as received over WebSocket (a text or binary frame)
    or from a polling payload (text only; binary arrives as ``b<base64>``)."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        return Packet(PacketType.MESSAGE, bytes(raw))
    if not raw:
        raise PacketError("empty packet")
    head = raw[0]
    if head == "b":
        try:
            return Packet(PacketType.MESSAGE, base64.b64decode(raw[1:], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise PacketError("invalid base64 in binary packet") from exc
    if not ("0" <= head <= "6"):
        raise PacketError(f"unknown packet type {head!r}")
    return Packet(PacketType(int(head)), raw[1:])


def decode_payload(body: bytes) -> list[Packet]:
    """Split a long-polling POST body into packets; any bad packet fails all
    of it, because the reference server closes the session on a bad body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PacketError("payload is not UTF-8") from exc
    if not text:
        raise PacketError("empty payload")
    return [decode_packet(part) for part in text.split(RECORD_SEPARATOR)]


def encode_payload(encoded_packets: list[str]) -> str:
    """Join already-encoded text packets into one long-polling body."""
    return RECORD_SEPARATOR.join(encoded_packets)


def encode_open(
    sid: str, upgrades: list[str], ping_interval: float, ping_timeout: float, max_payload: int
) -> str:
    """The handshake packet, with exactly the keys the v4 clients read and the
    intervals as integer milliseconds (``25.0`` s must be ``25000``, not ``25000.0``)."""
    handshake = {
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": round(ping_interval * 1000),
        "pingTimeout": round(ping_timeout * 1000),
        "maxPayload": max_payload,
    }
    return str(_eio_packet.Packet(_eio_packet.OPEN, handshake).encode())


def encode_control(kind: PacketType, data: str = "") -> str:
    """A non-message packet (ping, pong, close, noop, ...) as text."""
    return f"{int(kind)}{data}"


class SharedMessage:
    """One message meant for many sessions: its per-transport encodings are
    computed once and cached, so a broadcast costs one encode, not one per client."""

    __slots__ = ("data", "__dict__")

    def __init__(self, data: str | bytes) -> None:
        if not isinstance(data, (str, bytes)):
            raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")
        self.data = data

    @functools.cached_property
    def polling(self) -> str:
        """The packet as it goes into a polling body: ``4...`` or ``b<base64>``."""
        if isinstance(self.data, bytes):
            return str(_eio_packet.Packet(_eio_packet.MESSAGE, self.data).encode(b64=True))
        return "4" + self.data

    @functools.cached_property
    def websocket(self) -> str | bytes:
        """The packet as one WebSocket frame: ``4...`` text or the raw bytes."""
        if isinstance(self.data, bytes):
            return self.data
        return "4" + self.data

    @functools.cached_property
    def websocket_frame(self) -> bytes:
        """The packet as a complete server WebSocket frame (text ``0x81`` or
        binary ``0x82``), framed once and written as is to every client."""
        packet = self.websocket
        return binary_frame(packet) if isinstance(packet, bytes) else text_frame(packet)

    # -- Engine.IO v3 (socket.io-client 1.x/2.x): see .packets_v3 ---------------

    @functools.cached_property
    def polling_v3(self) -> str:
        """The packet as it goes into a v3 text payload: ``4...`` or ``b4<base64>``."""
        if isinstance(self.data, bytes):
            return "b4" + base64.b64encode(self.data).decode("ascii")
        return self.polling

    @property
    def websocket_v3(self) -> str | bytes:
        """The packet as one v3 WebSocket frame: ``4...`` text or ``\\x04`` + the bytes."""
        if isinstance(self.data, bytes):
            return b"\x04" + self.data
        return self.websocket

    @functools.cached_property
    def websocket_frame_v3(self) -> bytes:
        """:attr:`websocket_v3` as a complete server WebSocket frame (text: the v4 one)."""
        if isinstance(self.data, bytes):
            return binary_frame(b"\x04" + self.data)
        return self.websocket_frame

    @functools.cached_property
    def size(self) -> int:
        """Bytes this message costs in an outbox (its payload, as the limit counts it)."""
        if isinstance(self.data, bytes):
            return len(self.data)
        return len(self.data.encode("utf-8"))

    def __repr__(self) -> str:
        return f"SharedMessage({self.data[:40]!r})"
