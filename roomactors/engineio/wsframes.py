"""Sans-IO WebSocket frames (RFC 6455 §5.2): encoding what the server sends,
and :class:`FrameParser`, which reads what a client sends (bytes in, typed
events out, as wsproto's ``receive_data()`` / ``events()``).

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
from collections.abc import Iterator
from dataclasses import dataclass

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
    "FrameError",
    "FrameParser",
    "TextReceived",
    "BytesReceived",
    "PingReceived",
    "PongReceived",
    "CloseReceived",
    "FrameEvent",
    "continuation_cost",
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


# Events are plain slotted dataclasses, not frozen ones: a frozen dataclass's
# __init__ sets each field through object.__setattr__, 3.5 times the cost, on
# the path every client message takes. Treat them as read-only all the same.


@dataclass(slots=True)
class TextReceived:
    """A whole text message (its fragments joined, checked to be UTF-8)."""

    data: str


@dataclass(slots=True)
class BytesReceived:
    """A whole binary message (its fragments joined)."""

    data: bytes


@dataclass(slots=True)
class PingReceived:
    """A ping: the peer expects a pong with the same payload (only the latest
    ping needs one, RFC 6455 §5.5.3)."""

    payload: bytes


@dataclass(slots=True)
class PongReceived:
    """A pong (solicited or not); nothing to do."""

    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's close frame: its status code (1005 when it carried none) and reason."""

    code: int
    reason: str


FrameEvent = TextReceived | BytesReceived | PingReceived | PongReceived | CloseReceived


class FrameError(Exception):
    """The client broke RFC 6455 (or a limit); ``code`` is the close code to
    answer with (1002 protocol error, 1007 invalid UTF-8, 1009 message too big)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


#: Close codes a peer may send (RFC 6455 §7.4 and the IANA registry: 1012-1014
#: are registered; 1004-1006 and 1015 never go on the wire).
_VALID_CLOSE_CODES = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014))
_MASK_SIZE = 4


def continuation_cost(payload_length: int) -> int:
    """What a continuation frame carrying ``payload_length`` bytes counts toward
    the message limit: its payload plus its header (2, 4 or 10 bytes of length
    in the shortest form, and the 4-byte mask), so that even empty fragments
    add up (a message's first frame counts its payload alone, so that an
    unfragmented message may be exactly ``max_message`` bytes)."""
    if payload_length < 126:
        return 2 + _MASK_SIZE + payload_length
    if payload_length < 0x10000:
        return 4 + _MASK_SIZE + payload_length
    return 10 + _MASK_SIZE + payload_length


class FrameParser:
    """Sans-IO reader of the frames a client sends (masked, as RFC 6455
    requires of clients): :meth:`receive_data` takes bytes, :meth:`next_event`
    (or :meth:`events`) gives typed events: :class:`TextReceived`,
    :class:`BytesReceived` (whole messages only), :class:`PingReceived`,
    :class:`PongReceived`, :class:`CloseReceived`.

    Limits: a message over ``max_message`` fails (1009) as soon as a frame's
    header says so, before its payload is buffered. Every fragment counts
    toward that bound, empty or not, with its header
    (:func:`continuation_cost`), so a flood of empty continuation frames ends
    like a big message; fragments are joined into one buffer as they come.

    Linear time: received bytes are appended to one buffer read from an
    offset, and the consumed part is dropped only once it is at least half of
    the buffer, so each byte is copied a bounded number of times however the
    stream is cut (a 16 MiB frame in 64 KiB reads costs what it does in one).
    Holds no buffer while idle.
    """

    __slots__ = ("max_message", "_buffer", "_pos", "_parts", "_size", "_opcode")

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        #: Received bytes; those before ``_pos`` are consumed. ``bytes`` as
        #: received while that suffices (no copy), a ``bytearray`` once more
        #: bytes must be appended to an unfinished frame.
        self._buffer: bytes | bytearray = b""
        self._pos = 0
        #: The joined fragments of an unfinished message; None between messages.
        self._parts: bytearray | None = None
        #: What the unfinished message counts toward ``max_message`` so far.
        self._size = 0
        self._opcode = 0  # of the unfinished message; 0 between messages

    @property
    def pending(self) -> bool:
        """True while a frame or a fragmented message is unfinished."""
        return bool(self._opcode) or self._pos < len(self._buffer)

    def receive_data(self, data: bytes | bytearray) -> None:
        """Add bytes read from the client (parsed by :meth:`next_event`)."""
        buffer, pos = self._buffer, self._pos
        if pos >= len(buffer):  # nothing unconsumed: keep the bytes as they are
            self._buffer, self._pos = data, 0
            return
        if not data:
            return
        if type(buffer) is not bytearray or pos * 2 >= len(buffer):
            buffer = self._buffer = self._unconsumed()
            self._pos = 0
        buffer += data

    def _unconsumed(self) -> bytearray:
        """A copy of the unconsumed bytes, to append to. Linear overall: it runs
        on bytes received in one piece (each copied once this way) or when the
        consumed part is at least as long as what is copied."""
        with memoryview(self._buffer) as view:
            return bytearray(view[self._pos :])

    def events(self) -> Iterator[FrameEvent]:
        """Every event the bytes received so far make (see :meth:`next_event`)."""
        while (event := self.next_event()) is not None:
            yield event

    def next_event(self) -> FrameEvent | None:
        """The next whole message or control frame; None until more bytes
        come. Raises :class:`FrameError` when the client broke a rule."""
        while True:
            frame = self._next_frame()
            if frame is None:
                return None
            fin, opcode, payload = frame
            if opcode >= 0x8:
                return _control_event(opcode, payload)
            data: bytes | bytearray
            if opcode == 0:
                parts = self._parts
                assert parts is not None  # _next_frame checked that a message is under way
                parts += payload
                if not fin:
                    continue
                opcode, self._opcode = self._opcode, 0
                data, self._parts, self._size = parts, None, 0
            elif not fin:
                self._opcode, self._parts = opcode, bytearray(payload)
                continue
            else:
                data = payload
            if opcode == OPCODE_TEXT:
                try:
                    return TextReceived(data.decode("utf-8"))
                except UnicodeDecodeError:
                    raise FrameError(1007, "invalid UTF-8 in a text message") from None
            return BytesReceived(bytes(data))

    def _next_frame(self) -> tuple[bool, int, bytes] | None:
        """The next whole frame, unmasked, and consumed; every check that its
        header allows is made before its payload is waited for."""
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        if available < 2:
            return None
        first, second = buffer[pos], buffer[pos + 1]
        if first & 0x70:
            raise FrameError(1002, "reserved bits set (no extension was negotiated)")
        opcode = first & 0x0F
        if opcode not in (0x0, 0x1, 0x2, 0x8, 0x9, 0xA):
            raise FrameError(1002, f"unknown opcode {opcode:#x}")
        fin = bool(first & 0x80)
        length = second & 0x7F
        if opcode >= 0x8:
            if not fin or length > 125:
                raise FrameError(1002, "control frames are short and never fragmented")
        elif opcode == 0:
            if not self._opcode:
                raise FrameError(1002, "continuation frame without a message")
        elif self._opcode:
            raise FrameError(1002, "new message inside a fragmented one")
        if not second & 0x80:
            raise FrameError(1002, "client frames must be masked")
        header = 2
        if length == 126:
            if available < 4:
                return None
            length, header = (buffer[pos + 2] << 8) | buffer[pos + 3], 4
            if length < 126:
                raise FrameError(1002, "a 16-bit length for fewer than 126 bytes (lengths take their shortest form)")
        elif length == 127:
            if available < 10:
                return None
            length, header = int.from_bytes(buffer[pos + 2 : pos + 10], "big"), 10
            if length >> 63:
                raise FrameError(1002, "a 64-bit length with its most significant bit set")
            if length < 0x10000:
                raise FrameError(1002, "a 64-bit length for fewer than 65536 bytes (lengths take their shortest form)")
        if opcode < 0x8:
            # A message's first frame counts its payload; a continuation its header too.
            cost = length if opcode else header + _MASK_SIZE + length
            if self._size + cost > self.max_message:
                raise FrameError(1009, "Exceeded maximum message size")
            if not fin or not opcode:
                self._size += cost  # counted once: the frame is consumed below or this raises
        start = pos + header + _MASK_SIZE
        end = start + length
        if len(buffer) < end:
            if opcode < 0x8 and (not fin or not opcode):
                self._size -= cost  # counted again once all of the frame is here
            return None
        payload = _unmask(buffer[start:end], buffer[start - _MASK_SIZE : start])
        if end == len(buffer):
            self._buffer, self._pos = b"", 0  # idle again: no buffer held
        else:
            self._pos = end
        return fin, opcode, payload


def _unmask(data: bytes | bytearray, mask: bytes | bytearray) -> bytes:
    """XOR with the 4-byte mask, as one big-integer operation (far faster in
    Python than a loop over bytes)."""
    if not data:
        return b""
    length = len(data)
    key = (mask * (length // 4 + 1))[:length]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(length, "little")


def _control_event(opcode: int, payload: bytes) -> FrameEvent:
    if opcode == OPCODE_PING:
        return PingReceived(payload)
    if opcode == OPCODE_PONG:
        return PongReceived(payload)
    if not payload:
        return CloseReceived(1005, "")
    if len(payload) == 1:
        raise FrameError(1002, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if code not in _VALID_CLOSE_CODES and not 3000 <= code <= 4999:
        raise FrameError(1002, f"invalid close code {code}")
    try:
        return CloseReceived(code, payload[2:].decode("utf-8"))
    except UnicodeDecodeError:
        raise FrameError(1007, "invalid UTF-8 in a close reason") from None
