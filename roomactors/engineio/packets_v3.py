"""Sans-IO codec for Engine.IO protocol 3 (socket.io-client 1.x and 2.x).

Only what differs from v4 lives here; packets themselves are the v4
:class:`~.packets.Packet` values, so the session and the application never see
which protocol a client speaks.

What differs (engine.io-parser 2.x, which Node's ``allowEIO3`` also speaks):

* **Text polling payloads** are ``<length>:<packet>`` repeated, the length
  counting the packet's characters as JavaScript counts them (UTF-16 code
  units: an emoji counts 2), with no separator; an empty payload is ``0:``.
* **Binary in text** is ``b4<base64>`` (``b`` then the packet type), where v4
  has ``b<base64>``.
* **Binary polling payloads** (``application/octet-stream``), which XHR2
  clients (browsers; clients that did not ask ``b64=1``) may POST and read:
  per packet one byte 0 (text) or 1 (binary), the length's decimal digits as
  bytes 0-9, a byte 255, then the packet: text as UTF-8 (length in bytes),
  binary as the type byte then the data.
* **WebSocket binary frames** start with the packet type byte (``\\x04``).
* **socket.io-client 1.x without XHR2** (under Node) posts text payloads as
  engine.io-parser 1.x wrote them: each packet UTF-8 encoded into a string
  of bytes, then sent as UTF-8 again ("é" arrives as "Ã©"). Such a packet
  (only characters up to U+00FF, and valid UTF-8 once read as bytes) is
  decoded once more; text that really looks like that is mojibake anyway.
  What we send it needs no such care: it reads text payloads as 2.x writes them.
* **The handshake** carries ``pingInterval`` and ``pingTimeout`` and no
  ``maxPayload``; the client pings, the server answers.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from array import array

from .packets import Packet, PacketError, PacketType, decode_packet

__all__ = [
    "BINARY_CONTENT_TYPE",
    "decode_binary_payload",
    "decode_packet_v3",
    "decode_payload_v3",
    "decode_websocket_v3",
    "encode_binary_payload",
    "encode_open_v3",
    "encode_text_payload",
    "js_length",
]

BINARY_CONTENT_TYPE = "application/octet-stream"
#: Longest length field accepted (digits): far beyond any ``max_payload``.
_MAX_LENGTH_DIGITS = 10
#: UTF-16 in this machine's byte order, so ``array("H")`` reads code units.
_UTF16_NATIVE = "utf-16-le" if sys.byteorder == "little" else "utf-16-be"


def js_length(text: str) -> int:
    """``text.length`` in JavaScript: UTF-16 code units (astral characters count 2)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def encode_open_v3(sid: str, upgrades: list[str], ping_interval: float, ping_timeout: float) -> str:
    """The v3 handshake: both intervals as integer milliseconds, which the
    client uses to ping (every ``pingInterval``) and to give up on our pong."""
    handshake = {
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": round(ping_interval * 1000),
        "pingTimeout": round(ping_timeout * 1000),
    }
    return "0" + json.dumps(handshake, separators=(",", ":"))


def decode_packet_v3(raw: str) -> Packet:
    """One text packet as v3 sends it (binary arrives as ``b<type><base64>``)."""
    if raw.startswith("b"):
        if raw[1:2] != "4":
            raise PacketError(f"binary packet of type {raw[1:2]!r}; only messages (4) carry binary")
        try:
            return Packet(PacketType.MESSAGE, base64.b64decode(raw[2:], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise PacketError("invalid base64 in binary packet") from exc
    return decode_packet(raw)


def decode_websocket_v3(message: str | bytes) -> Packet:
    """One WebSocket message: text as in a payload, binary as type byte + data."""
    if isinstance(message, str):
        return decode_packet_v3(message)
    if not message:
        raise PacketError("empty binary packet")
    if message[0] != PacketType.MESSAGE:
        raise PacketError(f"binary packet of type {message[0]}; only messages (4) carry binary")
    return Packet(PacketType.MESSAGE, bytes(message[1:]))


# -- text payloads -----------------------------------------------------------


def encode_text_payload(encoded_packets: list[str]) -> str:
    """Frame text packets as ``<length>:<packet>...``, lengths as JavaScript counts."""
    return "".join(f"{js_length(packet)}:{packet}" for packet in encoded_packets)


def decode_payload_v3(body: bytes) -> list[Packet]:
    """A v3 POST body, text (``<length>:<packet>``) or binary (first byte 0 or 1);
    any bad packet or length fails all of it, as the reference server does."""
    if not body:
        raise PacketError("empty payload")
    if body[0] in (0, 1):
        return decode_binary_payload(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PacketError("payload is not UTF-8") from exc
    return [decode_packet_v3(_undo_double_utf8(part)) for part in _split_text(text)]


def _undo_double_utf8(part: str) -> str:
    """engine.io-parser 1.x's text packet (UTF-8 bytes as characters) as text."""
    if part.isascii():
        return part
    try:
        return part.encode("latin-1").decode("utf-8")
    except UnicodeError:  # a character above U+00FF, or not UTF-8: real text
        return part


def _split_text(text: str) -> list[str]:
    # Lengths count UTF-16 code units; only astral characters make that differ
    # from Python's code points, so only then is the text walked as units.
    astral = not text.isascii() and any(ord(char) > 0xFFFF for char in text)
    units = "".join(map(chr, array("H", text.encode(_UTF16_NATIVE)))) if astral else text
    parts: list[str] = []
    pos = 0
    end = len(units)
    while pos < end:
        colon = units.find(":", pos, pos + _MAX_LENGTH_DIGITS + 1)
        digits = units[pos:colon] if colon != -1 else ""
        if not digits.isascii() or not digits.isdigit():
            raise PacketError("payload packet without a length")
        length = int(digits)
        start = colon + 1
        if length == 0 or start + length > end:
            raise PacketError(f"payload packet length {length} does not fit the payload")
        part = units[start:start + length]
        if astral:
            try:
                part = part.encode(_UTF16_NATIVE, "surrogatepass").decode(_UTF16_NATIVE)
            except UnicodeDecodeError as exc:
                raise PacketError("payload length splits a character") from exc
        parts.append(part)
        pos = start + length
    if not parts:
        raise PacketError("empty payload")
    return parts


# -- binary payloads ---------------------------------------------------------


def decode_binary_payload(body: bytes) -> list[Packet]:
    """The XHR2 form: ``<0|1><digits as bytes 0-9>\\xff<packet>`` repeated."""
    packets: list[Packet] = []
    pos = 0
    end = len(body)
    while pos < end:
        kind = body[pos]
        if kind not in (0, 1):
            raise PacketError(f"binary payload entry of kind {kind}")
        stop = body.find(b"\xff", pos + 1, pos + 2 + _MAX_LENGTH_DIGITS)
        digits = body[pos + 1:stop] if stop != -1 else b""
        if not digits or any(digit > 9 for digit in digits):
            raise PacketError("binary payload entry without a length")
        length = int("".join(str(digit) for digit in digits))
        start = stop + 1
        if length == 0 or start + length > end:
            raise PacketError(f"binary payload entry length {length} does not fit the payload")
        chunk = body[start:start + length]
        if kind == 0:
            try:
                packets.append(decode_packet_v3(chunk.decode("utf-8")))
            except UnicodeDecodeError as exc:
                raise PacketError("text entry of a binary payload is not UTF-8") from exc
        else:
            packets.append(decode_websocket_v3(chunk))
        pos = start + length
    return packets


def encode_binary_payload(encoded_packets: list[str | bytes]) -> bytes:
    """Frame packets (text as in a text payload, binary as type byte + data)
    in the XHR2 form; text lengths count UTF-8 bytes there."""
    out = bytearray()
    for packet in encoded_packets:
        if isinstance(packet, str):
            data = packet.encode("utf-8")
            out.append(0)
        else:
            data = packet
            out.append(1)
        out += bytes(int(digit) for digit in str(len(data)))
        out.append(0xFF)
        out += data
    return bytes(out)
