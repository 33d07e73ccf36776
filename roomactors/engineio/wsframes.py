"""Sans-IO encoding of the WebSocket frames a server sends (RFC 6455 §5.2).

A server frame is never masked, so its bytes depend only on the message: a
broadcast can frame a message once and write the very same bytes to every
client (see :attr:`.packets.SharedMessage.websocket_frame`). That, not the
JSON encode, is what a per-client ``send_message`` spent most of its time on.

Only whole, unfragmented frames with no extension bits are produced: the
server never negotiates an extension (permessage-deflate would need RSV1 and a
compressor per client, which is exactly the per-client work we avoid).
"""

from __future__ import annotations

import struct

__all__ = [
    "OPCODE_TEXT",
    "OPCODE_BINARY",
    "OPCODE_CLOSE",
    "OPCODE_PING",
    "OPCODE_PONG",
    "encode_frame",
    "text_frame",
    "binary_frame",
    "close_frame",
]

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2
OPCODE_CLOSE = 0x8
OPCODE_PING = 0x9
OPCODE_PONG = 0xA

_FIN = 0x80
_U16 = struct.Struct("!BBH")
_U64 = struct.Struct("!BBQ")


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame: ``FIN|opcode``, the length in its shortest
    form (7 bits; 126 + 16 bits; 127 + 64 bits), then the payload."""
    first = _FIN | opcode
    length = len(payload)
    if length < 126:
        return bytes((first, length)) + payload
    if length < 0x10000:
        return _U16.pack(first, 126, length) + payload
    return _U64.pack(first, 127, length) + payload


def text_frame(text: str) -> bytes:
    """A text frame (``0x81``) carrying ``text`` as UTF-8."""
    return encode_frame(OPCODE_TEXT, text.encode("utf-8"))


def binary_frame(data: bytes) -> bytes:
    """A binary frame (``0x82``) carrying ``data``."""
    return encode_frame(OPCODE_BINARY, data)


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with a status code and an optional reason (at most 123
    bytes of UTF-8, so that the control frame stays within 125 bytes)."""
    encoded = reason.encode("utf-8")[:123].decode("utf-8", "ignore").encode("utf-8")
    return encode_frame(OPCODE_CLOSE, code.to_bytes(2, "big") + encoded)


class FrameError(Exception):
    """The client broke RFC 6455; ``code`` is the close code to answer with
    (1002 protocol error, 1007 invalid UTF-8, 1009 message too big)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


#: Close codes a peer may send (RFC 6455 §7.4; 1004-1006 and 1015 never on the wire).
_VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))


class FrameParser:
    """Sans-IO reader of the frames a client sends (masked, as RFC 6455
    requires of clients): bytes in, ``(opcode, payload)`` out.

    Yields whole messages only: ``(OPCODE_TEXT, str)``, ``(OPCODE_BINARY,
    bytes)``, ``(OPCODE_PING, bytes)``, ``(OPCODE_PONG, bytes)``,
    ``(OPCODE_CLOSE, (code, reason))`` (code 1005 when the frame had none).
    A frame is parsed once all of it is there; a frame or fragmented message
    over ``max_message`` bytes fails as soon as its header says so, before
    its payload is buffered. Holds no buffer while idle.
    """

    __slots__ = ("max_message", "_buffer", "_parts", "_size", "_opcode")

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._buffer = b""
        #: Fragments of an unfinished message; None between messages (no
        #: empty list held per idle connection).
        self._parts: list[bytes] | None = None
        self._size = 0
        self._opcode = 0  # of the unfinished message

    def feed(self, data: bytes) -> None:
        self._buffer = self._buffer + data if self._buffer else data

    def next_message(self) -> tuple[int, object] | None:
        """The next whole message or control frame; None until more bytes
        come. Raises :class:`FrameError` when the client broke a rule."""
        while True:
            frame = self._next_frame()
            if frame is None:
                return None
            fin, opcode, payload = frame
            if opcode >= 0x8:
                return opcode, _control_payload(opcode, payload)
            if opcode == 0:
                parts = self._parts
                if not self._opcode or parts is None:
                    raise FrameError(1002, "continuation frame without a message")
                parts.append(payload)
                if not fin:
                    continue
                opcode, self._opcode = self._opcode, 0
                payload, self._parts, self._size = b"".join(parts), None, 0
            elif self._opcode:
                raise FrameError(1002, "new message inside a fragmented one")
            elif not fin:
                self._opcode, self._parts = opcode, [payload]
                continue
            else:
                self._size = 0
            if opcode == OPCODE_TEXT:
                try:
                    return opcode, payload.decode("utf-8")
                except UnicodeDecodeError:
                    raise FrameError(1007, "invalid UTF-8 in a text message") from None
            return opcode, payload

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        buffer = self._buffer
        if len(buffer) < 2:
            return None
        first, second = buffer[0], buffer[1]
        if first & 0x70:
            raise FrameError(1002, "reserved bits set (no extension was negotiated)")
        opcode = first & 0x0F
        if opcode not in (0x0, 0x1, 0x2, 0x8, 0x9, 0xA):
            raise FrameError(1002, f"unknown opcode {opcode:#x}")
        if not second & 0x80:
            raise FrameError(1002, "client frames must be masked")
        length = second & 0x7F
        offset = 2
        if length == 126:
            if len(buffer) < 4:
                return None
            length, offset = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            if len(buffer) < 10:
                return None
            length, offset = int.from_bytes(buffer[2:10], "big"), 10
        fin = bool(first & 0x80)
        if opcode >= 0x8:
            if not fin or length > 125:
                raise FrameError(1002, "control frames are short and never fragmented")
        else:
            self._size += length
            if self._size > self.max_message:
                raise FrameError(1009, "Exceeded maximum message size")
            if len(buffer) < offset + 4 + length:
                self._size -= length  # counted again once all of the frame is here
                return None
        end = offset + 4 + length
        if len(buffer) < end:
            return None
        mask = buffer[offset : offset + 4]
        payload = _unmask(buffer[offset + 4 : end], mask)
        self._buffer = buffer[end:]
        return fin, opcode, payload


def _unmask(data: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte mask, as one big-integer operation (far faster in
    Python than a loop over bytes)."""
    if not data:
        return data
    length = len(data)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")


def _control_payload(opcode: int, payload: bytes) -> object:
    if opcode != OPCODE_CLOSE:
        return payload
    if not payload:
        return 1005, ""
    if len(payload) == 1:
        raise FrameError(1002, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_CLOSE_CODES and not 3000 <= code <= 4999:
        raise FrameError(1002, f"invalid close code {code}")
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameError(1007, "invalid UTF-8 in a close reason") from None
