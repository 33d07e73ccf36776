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
