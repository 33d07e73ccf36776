"""Socket.IO v5 packets: encoding and strict decoding, with no I/O at all.

Plain-JSON packets are encoded here, with the compact JSON python-socketio
uses; python-socketio's ``Packet`` encodes only those that hold bytes (binary
deconstruction). It is not asked first because its constructor walks every
value of the payload looking for bytes, which cost more than the whole JSON
encode for a ``raceprogress``; our JSON encoder walks it anyway and refuses
bytes with a TypeError, so that is the binary check. Its decoder accepts almost anything, and the
specification says a malformed packet must close the connection, so decoding is
our own: every rule a client can break raises :class:`ProtocolViolation`.

Wire format of one text packet::

    <type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]

A BINARY_EVENT / BINARY_ACK text packet is followed by exactly ``attachments``
binary Engine.IO messages, referenced from the payload by placeholders
``{"_placeholder": true, "num": N}``.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from socketio.packet import Packet as _CodecPacket

from .errors import ProtocolViolation

__all__ = (
    "PacketType",
    "SocketIOPacket",
    "DecodedText",
    "MAX_ACK_ID",
    "RESERVED_EVENTS",
    "DEFAULT_MAX_ATTACHMENTS",
    "encode_packet",
    "decode_text",
    "attach_binary",
)

#: Largest ack id we accept: JavaScript clients count in doubles, so anything
#: above 2**53 - 1 cannot have come from a well-behaved client.
MAX_ACK_ID = 2**53 - 1
#: Event names a client may not send: the server's own lifecycle names
#: (socket.io-parser refuses them the same way).
RESERVED_EVENTS = frozenset(
    {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}
)
#: A binary packet announcing more attachments than this is refused before
#: we start buffering them; far above what the room protocol ever needs.
DEFAULT_MAX_ATTACHMENTS = 1000


class PacketType(enum.IntEnum):
    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_BINARY_TYPES = (PacketType.BINARY_EVENT, PacketType.BINARY_ACK)
_EVENT_TYPES = (PacketType.EVENT, PacketType.BINARY_EVENT)
_ACK_TYPES = (PacketType.ACK, PacketType.BINARY_ACK)


@dataclass(frozen=True, slots=True)
class SocketIOPacket:
    """One Socket.IO packet, as a value.

    ``data`` is the decoded JSON payload (``None`` when absent); for binary
    packets received from a client it holds ``bytes`` where the placeholders
    were once :func:`attach_binary` has run. ``namespace`` is always explicit,
    ``"/"`` for the main namespace.
    """

    type: PacketType
    namespace: str = "/"
    data: Any = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class DecodedText:
    """A decoded text packet and how many binary messages must follow it."""

    packet: SocketIOPacket
    attachments: int = 0


def encode_packet(packet: SocketIOPacket) -> list[str | bytes]:
    """Encode one packet into the Engine.IO messages that carry it.

    The first item is the text packet; binary payloads add one ``bytes`` item
    per attachment, and an EVENT/ACK whose data holds bytes is sent as its
    BINARY_ variant, as every Socket.IO implementation does.
    """
    if packet.type not in _BINARY_TYPES:
        head = _TYPE_DIGITS[packet.type]
        if packet.namespace != "/":
            head += packet.namespace + ","
        if packet.id is not None:
            head += str(packet.id)
        if packet.data is None:
            return [head]
        try:
            return [head + _compact_json(packet.data)]
        except TypeError:
            pass  # bytes somewhere (or something not JSON: the codec says which)
    codec = _CodecPacket(
        packet_type=int(packet.type),
        data=packet.data,
        namespace=packet.namespace,
        id=packet.id,
    )
    encoded = codec.encode()
    if isinstance(encoded, str):
        return [encoded]
    return [encoded[0], *(bytes(item) for item in encoded[1:])]


#: python-socketio's settings (``json.dumps(data, separators=(",", ":"))``),
#: built once: ``json.dumps`` with any option builds a new encoder per call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
_TYPE_DIGITS = {kind: str(int(kind)) for kind in PacketType}


def decode_text(
    text: str, *, max_attachments: int = DEFAULT_MAX_ATTACHMENTS
) -> DecodedText:
    """Decode one text packet sent by a peer, or raise :class:`ProtocolViolation`.

    Binary packets come back with their placeholders still in ``data`` (all of
    them already checked to be in range); pass the attachments to
    :func:`attach_binary` once they have arrived.
    """
    if not text:
        raise ProtocolViolation("empty packet")
    kind = text[0]
    if kind not in "0123456":
        raise ProtocolViolation(f"unknown packet type {kind!r}")
    packet_type = PacketType(int(kind))
    pos = 1
    attachments = 0
    if packet_type in _BINARY_TYPES:
        dash = text.find("-", pos)
        digits = text[pos:dash] if dash != -1 else ""
        if not digits.isascii() or not digits.isdigit():
            raise ProtocolViolation("binary packet without an attachment count")
        if len(digits) > len(str(max_attachments)) or int(digits) > max_attachments:
            raise ProtocolViolation(f"too many attachments: {digits}")
        attachments = int(digits)
        pos = dash + 1

    namespace = "/"
    if text.startswith("/", pos):
        comma = text.find(",", pos)
        end = len(text) if comma == -1 else comma
        namespace = text[pos:end]
        pos = end + 1 if comma != -1 else end

    ack_id: int | None = None
    start = pos
    while pos < len(text) and text[pos] in "0123456789":
        pos += 1
    if pos > start:
        digits = text[start:pos]
        if len(digits) > len(str(MAX_ACK_ID)) or int(digits) > MAX_ACK_ID:
            raise ProtocolViolation(f"ack id out of range: {digits}")
        ack_id = int(digits)

    payload_text = text[pos:]
    has_payload = bool(payload_text)
    data = _parse_json(payload_text) if has_payload else None

    _check_payload(packet_type, ack_id, has_payload, data)
    if packet_type in _BINARY_TYPES:
        found: set[int] = set()
        _collect_placeholders(data, attachments, found)
        if found != set(range(attachments)):
            raise ProtocolViolation(
                f"{attachments} attachments announced, placeholders for {sorted(found)}"
            )
    packet = SocketIOPacket(packet_type, namespace, data, ack_id)
    return DecodedText(packet, attachments)


def attach_binary(packet: SocketIOPacket, attachments: Sequence[bytes]) -> SocketIOPacket:
    """Replace the placeholders of a decoded binary packet with its attachments."""
    data = _CodecPacket.reconstruct_binary(packet.data, list(attachments))
    return replace(packet, data=data)


def _reject_constant(name: str) -> Any:
    raise ProtocolViolation(f"{name} is not JSON")


def _parse_json(payload_text: str) -> Any:
    try:
        return json.loads(payload_text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        # json.JSONDecodeError is a ValueError; deep nesting is a RecursionError.
        raise ProtocolViolation(f"payload is not JSON: {exc}") from None


def _check_payload(packet_type: PacketType, ack_id: int | None, has_payload: bool, data: Any) -> None:
    """The payload rules of the specification (socket.io-parser's isPayloadValid)."""
    if packet_type is PacketType.CONNECT:
        if ack_id is not None:
            raise ProtocolViolation("CONNECT with an ack id")
        if has_payload and not isinstance(data, dict):
            raise ProtocolViolation("CONNECT payload is not an object")
    elif packet_type is PacketType.DISCONNECT:
        if ack_id is not None or has_payload:
            raise ProtocolViolation("DISCONNECT with a payload")
    elif packet_type is PacketType.CONNECT_ERROR:
        if ack_id is not None or not isinstance(data, (str, dict)):
            raise ProtocolViolation("CONNECT_ERROR payload is not an object or string")
    elif packet_type in _EVENT_TYPES:
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            raise ProtocolViolation("EVENT payload is not an array starting with a name")
        if data[0] in RESERVED_EVENTS:
            raise ProtocolViolation(f"reserved event name {data[0]!r}")
    elif packet_type in _ACK_TYPES:
        if ack_id is None:
            raise ProtocolViolation("ACK without an ack id")
        if not isinstance(data, list):
            raise ProtocolViolation("ACK payload is not an array")


def _collect_placeholders(data: Any, count: int, found: set[int]) -> None:
    if isinstance(data, list):
        for item in data:
            _collect_placeholders(item, count, found)
    elif isinstance(data, dict):
        if data.get("_placeholder") is True:
            num = data.get("num")
            if type(num) is not int or not 0 <= num < count:
                raise ProtocolViolation(f"placeholder {num!r} out of range for {count}")
            found.add(num)
            return
        for value in data.values():
            _collect_placeholders(value, count, found)
