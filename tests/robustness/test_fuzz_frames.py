"""Hostile WebSocket frames: written byte by byte on a raw TCP connection, and
fed to the sans-IO frame parser directly (checked against wsproto's).

A client library never sends invalid UTF-8 in a text frame, reserved bits,
unknown opcodes, unmasked frames, a ping with 200 bytes, a continuation with
nothing to continue, a length field that lies or takes more bytes than it
needs, a 64-bit length with its top bit set, thousands of empty fragments, a
close code only the IANA registry knows (1014) or pings it never reads the
pongs of, so this file does: hypothesis draws frames (and mutates well-formed
ones) and sends them after a correct opening handshake. Whatever arrives, the server may close that connection (with
a close frame or not) or carry on; it must log no ERROR or traceback, and the
bystanders of test_fuzz_wire keep their seats and their lists.
"""

from __future__ import annotations

import base64
import logging
import os
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import trio
from hypothesis import example, given
from hypothesis import strategies as st
from robustness.test_fuzz_wire import assert_no_errors_logged, bystanders, check_bystanders, open_roomserver

from roomactors.engineio.wsframes import (
    BytesReceived,
    CloseReceived,
    FrameError,
    FrameEvent,
    FrameParser,
    PingReceived,
    PongReceived,
    TextReceived,
)

MAX_PAYLOAD = 4096


@dataclass(frozen=True)
class Frame:
    """One WebSocket frame as a client could put it on the wire (RFC 6455 §5.2)."""

    opcode: int
    payload: bytes
    fin: bool = True
    rsv: int = 0
    masked: bool = True
    length: int | None = None
    """A length field that lies (None: the payload's length)."""
    length_size: int | None = None
    """Bytes of extended length to use, 2 or 8, even when fewer would do (an
    over-long encoding, RFC 6455 §5.2 forbids it); None: the shortest form."""

    def encode(self) -> bytes:
        length = len(self.payload) if self.length is None else self.length
        head = bytes([(0x80 if self.fin else 0) | (self.rsv << 4) | self.opcode])
        mask_bit = 0x80 if self.masked else 0
        size = self.length_size or (0 if length < 126 else 2 if length < 2**16 else 8)
        if size == 0:
            head += bytes([mask_bit | length])
        elif size == 2:
            head += bytes([mask_bit | 126]) + struct.pack("!H", length)
        else:
            head += bytes([mask_bit | 127]) + struct.pack("!Q", length)
        if not self.masked:
            return head + self.payload
        key = os.urandom(4)
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(self.payload))


GOOD = [
    Frame(0x1, b"40/lobby,"),
    Frame(0x1, b'42/lobby,0["join_lobby",{"id":"frames"}]'),
    Frame(0x1, b"3"),
    Frame(0x9, b"hi"),
    Frame(0x1, b"42/lobby,", fin=False),
    Frame(0x0, b'["join_room",{"id":1}]'),
    Frame(0x2, b"\x00\x01"),
    Frame(0x8, struct.pack("!H", 1000)),
]

frames = st.one_of(
    st.sampled_from(GOOD),
    st.builds(
        Frame,
        opcode=st.integers(0, 15),
        payload=st.binary(max_size=300),
        fin=st.booleans(),
        rsv=st.sampled_from([0, 0, 0, 1, 2, 4, 7]),
        masked=st.sampled_from([True, True, True, False]),
        length=st.none() | st.sampled_from([0, 1, 125, 126, 65535, MAX_PAYLOAD + 1, 2**63 - 1]),
    ),
    st.builds(Frame, opcode=st.just(0x1), payload=st.sampled_from([b"4\xff\xfe", b"4\xc3", b"4\xed\xa0\x80", b"4\xf4\x90\x80\x80"])),
    # over-long length encodings: 16 or 64 bits for what fewer would hold
    st.builds(
        Frame,
        opcode=st.sampled_from([0x0, 0x1, 0x2, 0x9]),
        payload=st.binary(max_size=130),
        length_size=st.sampled_from([2, 8]),
    ),
    # 64-bit lengths with the most significant bit set
    st.builds(Frame, opcode=st.sampled_from([0x1, 0x2]), payload=st.just(b"4"), length=st.integers(2**63, 2**64 - 1)),
    # close frames with every kind of code, 1012-1014 (registered, and accepted) among them
    st.builds(
        lambda code, reason: Frame(0x8, struct.pack("!H", code) + reason),
        st.sampled_from([0, 999, 1000, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 2999, 3000, 4999, 5000]),
        st.sampled_from([b"", b"bye", b"\xff"]),
    ),
)

#: A fragmented message of thousands of empty fragments: each counts (with its
#: header) toward the message limit, so enough of them end like a big message.
empty_fragment_runs = st.integers(1, 3000).map(
    lambda n: [Frame(0x1, b"4", fin=False), *[Frame(0x0, b"", fin=False)] * n, Frame(0x0, b"", fin=True)]
)
#: Pings sent without reading the pongs in between.
ping_runs = st.integers(1, 400).map(lambda n: [Frame(0x9, b"p" * 125)] * n)
frame_sequences = st.one_of(st.lists(frames, min_size=1, max_size=6), empty_fragment_runs, ping_runs)


@asynccontextmanager
async def raw_websocket(port: int) -> AsyncIterator[trio.SocketStream]:
    """A TCP connection past the WebSocket opening handshake (and Engine.IO's open)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send_all(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    received = b""
    with trio.fail_after(10):
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some(4096)
    assert received.startswith(b"HTTP/1.1 101"), received[:200]
    try:
        yield stream
    finally:
        await stream.aclose()


async def drain_until_closed(stream: trio.SocketStream, timeout: float) -> bool:
    """Read what the server sends; True when it closed the connection in time."""
    with trio.move_on_after(timeout):
        try:
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        return True
    return False


@given(frame_sequences)
@example([Frame(0x1, b"4\xff\xfe")])  # invalid UTF-8 in a text frame: 1007
@example([Frame(0x1, b"40/lobby,", rsv=4)])  # a reserved bit with no extension: 1002
@example([Frame(0x1, b"40/lobby,", masked=False)])  # client frames must be masked
@example([Frame(0x9, b"p" * 200)])  # a control frame over 125 bytes
@example([Frame(0x0, b"nothing to continue")])
@example([Frame(0x1, b"4", length=2**63 - 1)])  # a length that lies, far over max_payload
@example([Frame(0x1, b"4" + b"x" * MAX_PAYLOAD)])  # one byte over max_payload: 1009
@example([Frame(0x1, b"4", fin=False)] + [Frame(0x0, b"x" * 1000, fin=False)] * 5)  # fragments over max_payload
@example([Frame(0x1, b"4", length_size=8)])  # an over-long length encoding: 1002
@example([Frame(0x1, b"4", length=2**63 + 1)])  # a 64-bit length with its top bit set: 1002
@example([Frame(0x1, b"4", fin=False), *[Frame(0x0, b"", fin=False)] * 2000])  # empty fragments over max_payload
@example([Frame(0x8, struct.pack("!H", 1014))])  # a registered close code, echoed
@example([Frame(0x9, b"p" * 125)] * 400)  # pings without reading
async def test_hostile_websocket_frames_hurt_only_their_sender(caplog: pytest.LogCaptureFixture, sent: list[Frame]) -> None:
    caplog.clear()
    caplog.set_level(logging.INFO)
    async with open_roomserver(max_payload=MAX_PAYLOAD) as server, bystanders(server) as by:
        lists_before = by.quiet_lists()
        async with raw_websocket(server.port) as stream:
            try:
                for frame in [*sent, Frame(0x8, struct.pack("!H", 1000))]:
                    await stream.send_all(frame.encode())
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            # The closing handshake (or the server's own close) ends most cases at
            # once; a frame whose length field lies swallows it, and then only
            # the heartbeat would end the connection: we hang up ourselves.
            await drain_until_closed(stream, timeout=2)
        await check_bystanders(server, by, lists_before)
    assert_no_errors_logged(caplog)


async def close_code_after(port: int, sent: list[Frame]) -> int | None:
    """Send ``sent`` and return the status code of the server's close frame
    (None when the connection ended without one)."""
    async with raw_websocket(port) as stream:
        await stream.send_all(b"".join(frame.encode() for frame in sent))  # one write: read at once
        received = b""
        with trio.fail_after(10):
            try:
                while chunk := await stream.receive_some(65536):
                    received += chunk
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
    return _close_code(received)


def _close_code(data: bytes) -> int | None:
    """Walk the server's (unmasked) frames and find the close frame's code."""
    pos = 0
    while pos + 2 <= len(data):
        opcode, length = data[pos] & 0x0F, data[pos + 1] & 0x7F
        pos += 2
        if length == 126:
            (length,) = struct.unpack("!H", data[pos : pos + 2])
            pos += 2
        elif length == 127:
            (length,) = struct.unpack("!Q", data[pos : pos + 8])
            pos += 8
        payload = data[pos : pos + length]
        pos += length
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
    return None


@pytest.mark.parametrize(
    "sent,code",
    [
        ([Frame(0x1, b"4\xff\xfe")], 1007),
        ([Frame(0x1, b"40/lobby,", rsv=4)], 1002),
        ([Frame(0x1, b"40/lobby,", masked=False)], 1002),
        ([Frame(0x9, b"p" * 200)], 1002),
        ([Frame(0x0, b"nothing to continue")], 1002),
        ([Frame(0x3, b"opcode 3 is reserved")], 1002),
        ([Frame(0x1, b"4" + b"x" * MAX_PAYLOAD)], 1009),
        ([Frame(0x1, b"4", fin=False)] + [Frame(0x0, b"x" * 1000, fin=False)] * 5, 1009),
        ([Frame(0x1, b"4", fin=False), *[Frame(0x0, b"", fin=False)] * 700], 1009),  # 1 + 700 * 6 > 4096
        ([Frame(0x1, b"40/lobby,", length_size=2)], 1002),
        ([Frame(0x1, b"4" * 200, length_size=8)], 1002),
        ([Frame(0x2, b"4", length=2**63 + 5)], 1002),
        ([Frame(0x8, struct.pack("!H", 1000))], 1000),
        ([Frame(0x8, struct.pack("!H", 1014) + b"bad gateway")], 1014),
    ],
    ids=[
        "bad-utf8", "rsv", "unmasked", "long-ping", "orphan-continuation", "reserved-opcode", "over-max",
        "fragments-over-max", "empty-fragments-over-max", "overlong-16", "overlong-64", "top-bit", "close", "close-1014",
    ],
)
async def test_broken_frames_are_closed_with_the_rfc_code(
    start_roomserver: Any, caplog: pytest.LogCaptureFixture, sent: list[Frame], code: int
) -> None:
    server = await start_roomserver(max_payload=MAX_PAYLOAD)
    async with bystanders(server) as by:
        assert await close_code_after(server.port, sent) == code
        await check_bystanders(server, by)
    assert_no_errors_logged(caplog)


# -- the frame parser alone, against wsproto as a second opinion ------------------------


def as_tuple(event: FrameEvent) -> tuple[int, object]:
    """An event as ``(opcode, payload)``, the form parse_wsproto gives."""
    if isinstance(event, TextReceived):
        return 0x1, event.data
    if isinstance(event, BytesReceived):
        return 0x2, event.data
    if isinstance(event, PingReceived):
        return 0x9, event.payload
    if isinstance(event, PongReceived):
        return 0xA, event.payload
    return 0x8, (event.code, event.reason)


def parse_ours(data: bytes, chunks: list[int], max_message: int = 2**40) -> tuple[list[tuple[int, object]], int | None]:
    """Feed ``data`` in pieces; the messages parsed and the close code of the
    first error (None: no error, and ``parse_ours.pending`` says whether a
    message or frame was left unfinished)."""
    parser = FrameParser(max_message)
    messages: list[tuple[int, object]] = []
    pos = 0
    for size in [*chunks, len(data)]:
        parser.receive_data(data[pos : pos + size])
        pos += size
        try:
            for event in parser.events():
                messages.append(as_tuple(event))
                if isinstance(event, CloseReceived):  # nothing after a close frame counts
                    return messages, None
        except FrameError as error:
            assert error.code in (1002, 1007, 1009), error
            return messages, error.code
        if pos >= len(data):
            break
    parse_ours.pending = parser.pending  # type: ignore[attr-defined]
    return messages, None


def parse_wsproto(data: bytes) -> tuple[list[tuple[int, object]], int | None]:
    """The same bytes through wsproto's frame layer: messages and error code."""
    from wsproto.frame_protocol import FrameProtocol, Opcode, ParseFailed

    protocol = FrameProtocol(client=False, extensions=[])
    protocol.receive_bytes(data)
    messages: list[tuple[int, object]] = []
    parts: list[Any] = []
    opcode = 0
    try:
        for frame in protocol.received_frames():
            if frame.opcode is Opcode.CLOSE:
                code, reason = frame.payload
                messages.append((0x8, (int(code), reason or "")))
            elif frame.opcode in (Opcode.PING, Opcode.PONG):
                messages.append((int(frame.opcode), bytes(frame.payload)))
            else:
                if frame.opcode is not Opcode.CONTINUATION:
                    opcode = int(frame.opcode)
                parts.append(frame.payload)
                if frame.message_finished:
                    joined: object = "".join(parts) if opcode == 1 else b"".join(bytes(p) for p in parts)
                    messages.append((opcode, joined))
                    parts = []
    except ParseFailed as failure:
        return messages, int(failure.code)
    return messages, None


frame_lists = st.one_of(
    st.lists(frames, min_size=1, max_size=5), empty_fragment_runs, ping_runs.map(lambda pings: pings[:20])
).map(lambda fs: b"".join(f.encode() for f in fs))


@given(frame_lists, st.lists(st.integers(1, 40), max_size=6))
@example(Frame(0x8, b"").encode(), [])  # close without a code: 1005
@example(Frame(0x8, b"\x03").encode(), [])  # a 1-byte close payload
@example(Frame(0x8, struct.pack("!H", 1005)).encode(), [])  # a code never sent on the wire
@example(Frame(0x8, struct.pack("!H", 3000) + b"\xff").encode(), [])  # close reason not UTF-8
@example(Frame(0x1, b"\xe2\x82", fin=False).encode() + Frame(0x0, b"\xac").encode(), [1, 1, 1])  # split code point
@example(Frame(0x8, struct.pack("!H", 1014)).encode(), [])  # registered after RFC 6455: we accept it, wsproto not
@example(Frame(0x1, b"4", length_size=2).encode(), [])  # over-long: 1002 for both
@example(Frame(0x2, b"4" * 300, length_size=8).encode(), [3])
@example(Frame(0x2, b"4", length=2**63).encode(), [])  # top bit set: 1002 for both
@example(b"".join(f.encode() for f in [Frame(0x1, b"4", fin=False), *[Frame(0x0, b"")] * 1]), [])
def test_frame_parser_agrees_with_wsproto(data: bytes, chunks: list[int]) -> None:
    ours, our_error = parse_ours(data, chunks, max_message=2**64)
    theirs, their_error = parse_wsproto(data)
    if (
        their_error == 1002
        and our_error is None
        and ours
        and ours[-1][0] == 0x8
        and ours[-1][1][0] in (1014,)  # type: ignore[index]
    ):
        # 1014 (Bad Gateway) is in the IANA registry of close codes but not in
        # wsproto's list, which refuses it; the parser under test accepts it.
        assert ours[:-1] == theirs
        return
    if their_error is not None and our_error is None and parse_ours.pending:  # type: ignore[attr-defined]
        # wsproto refuses some things as soon as it sees them (a fragment's bad
        # UTF-8, a continuation frame's header); the parser under test once the
        # frame or message is whole, which these bytes never reach.
        assert ours == theirs
        return
    if their_error == 1007 and our_error is not None:
        # Bad UTF-8 in a first fragment and another fault later (say, a new
        # message inside the fragmented one): wsproto names the first fault,
        # the parser under test the one it checks first. Both refuse.
        assert ours == theirs
        return
    assert (ours, our_error) == (theirs, their_error)


@given(frame_lists, st.lists(st.integers(1, 40), max_size=6), st.integers(0, 400))
@example(Frame(0x1, b"4" * 100).encode(), [10, 10], 150)  # a frame that arrives in pieces
def test_frame_parser_limits_messages_whatever_the_chunks(data: bytes, chunks: list[int], max_message: int) -> None:
    ours, error = parse_ours(data, chunks, max_message)
    for opcode, payload in ours:
        if opcode in (1, 2):
            size = len(payload.encode("utf-8")) if isinstance(payload, str) else len(payload)  # type: ignore[union-attr]
            assert size <= max_message
    whole, whole_error = parse_ours(data, [], max_message)
    assert (ours, error) == (whole, whole_error), "the result depends on how the bytes were cut"
