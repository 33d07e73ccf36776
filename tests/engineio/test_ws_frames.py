"""Server WebSocket framing (RFC 6455 §5.2): golden bytes, and what a real
WebSocket parser (wsproto, client side) reads back from them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, TextMessage

from roomactors.engineio import SharedMessage
from roomactors.engineio.wsframes import binary_frame, close_frame, encode_frame, text_frame


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x00"),
        (1, b"\x01"),
        (125, b"\x7d"),  # the largest 7-bit length
        (126, b"\x7e\x00\x7e"),  # the smallest 16-bit length
        (65535, b"\x7e\xff\xff"),  # the largest 16-bit length
        (65536, b"\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),  # the smallest 64-bit length
        (70000, b"\x7f\x00\x00\x00\x00\x00\x01\x11\x70"),
    ],
)
def test_length_encodings_for_text_and_binary(length: int, header: bytes) -> None:
    assert text_frame("a" * length) == b"\x81" + header + b"a" * length
    assert binary_frame(b"\x00" * length) == b"\x82" + header + b"\x00" * length


def test_golden_frames() -> None:
    assert text_frame("4hi") == b"\x81\x034hi"
    assert text_frame("é") == b"\x81\x02\xc3\xa9"  # the length counts UTF-8 bytes
    assert binary_frame(b"\x01\x02\x03") == b"\x82\x03\x01\x02\x03"
    assert encode_frame(0xA, b"x") == b"\x8a\x01x"  # a pong
    assert close_frame(1000) == b"\x88\x02\x03\xe8"
    assert close_frame(1009, "too big") == b"\x88\x09\x03\xf1too big"
    # a control frame carries at most 125 bytes; the reason is cut on a character
    assert len(close_frame(1000, "é" * 100)) == 2 + 2 + 122


def test_shared_message_frames_once() -> None:
    text = SharedMessage('["ev",1]')
    assert text.websocket_frame == b'\x81\x094["ev",1]'
    assert text.websocket_frame is text.websocket_frame  # cached: one encode per broadcast
    data = SharedMessage(b"\xff" * 200)
    assert data.websocket_frame == b"\x82\x7e\x00\xc8" + b"\xff" * 200
    assert data.websocket_frame is data.websocket_frame


def _client_reads(wire: bytes) -> list[object]:
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(wire)
    return list(client.events())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=300), st.binary(max_size=70_000)), min_size=1, max_size=4))
def test_a_websocket_client_reads_back_what_was_framed(messages: list[str | bytes]) -> None:
    """Several frames concatenated (a batched write) parse as the same messages."""
    wire = b"".join(text_frame(m) if isinstance(m, str) else binary_frame(m) for m in messages)
    read: list[str | bytes] = []
    for event in _client_reads(wire):
        assert isinstance(event, (TextMessage, BytesMessage))
        assert event.message_finished
        read.append(event.data if isinstance(event, TextMessage) else bytes(event.data))
    assert read == messages


def test_a_websocket_client_reads_the_close_frame() -> None:
    (event,) = _client_reads(close_frame(1009, "Exceeded maximum message size"))
    assert isinstance(event, CloseConnection)
    assert (event.code, event.reason) == (1009, "Exceeded maximum message size")


# -- reading what clients send ------------------------------------------------

from wsproto.events import Message, Ping  # noqa: E402

from roomactors.engineio.wsframes import (  # noqa: E402
    BytesReceived,
    CloseReceived,
    FrameError,
    FrameEvent,
    FrameParser,
    PingReceived,
    PongReceived,
    TextReceived,
    continuation_cost,
)


def _client_frames(*events: object) -> bytes:
    client = Connection(ConnectionType.CLIENT)
    return b"".join(client.send(event) for event in events)  # type: ignore[arg-type]


def _parse_all(parser: FrameParser, data: bytes, chunk: int) -> list[FrameEvent]:
    out: list[FrameEvent] = []
    for start in range(0, len(data), chunk):
        parser.receive_data(data[start : start + chunk])
        out.extend(parser.events())
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=3000)), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=5000),
)
def test_parser_reads_masked_client_frames_in_any_chunks(messages: list[str | bytes], chunk: int) -> None:
    wire = _client_frames(*(TextMessage(data=m) if isinstance(m, str) else BytesMessage(data=m) for m in messages))
    parser = FrameParser(1_000_000)
    parsed = _parse_all(parser, wire, chunk)
    assert parsed == [TextReceived(m) if isinstance(m, str) else BytesReceived(m) for m in messages]
    assert not parser.pending


def test_parser_joins_fragments_around_a_ping() -> None:
    wire = _client_frames(
        Message(data="4ab", message_finished=False), Ping(b"p"), Message(data="cé", message_finished=True)
    )
    assert _parse_all(FrameParser(100), wire, 3) == [PingReceived(b"p"), TextReceived("4abcé")]


def test_parser_reads_control_frames() -> None:
    assert _parse_all(FrameParser(100), _client_frames(CloseConnection(1001, "bye")), 100) == [CloseReceived(1001, "bye")]
    assert _parse_all(FrameParser(100), _masked(0x88, b""), 100) == [CloseReceived(1005, "")]  # no status
    assert _parse_all(FrameParser(100), _masked(0x88, b"\x03\xf6"), 100) == [CloseReceived(1014, "")]  # registered by IANA
    assert _parse_all(FrameParser(100), _masked(0x8A, b"unsolicited"), 100) == [PongReceived(b"unsolicited")]


def _masked(first: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04", *, length: bytes | None = None) -> bytes:
    """One masked client frame; ``length`` replaces the length field (from the
    mask bit's byte on), to write lengths the shortest form would not."""
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    if length is None:
        length = bytes([0x80 | len(payload)]) if len(payload) < 126 else b"\xfe" + len(payload).to_bytes(2, "big")
    return bytes((first,)) + length + mask + masked


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (b"\x81\x03abc", 1002),  # not masked
        (_masked(0xC1, b"x"), 1002),  # RSV1 without an extension
        (_masked(0x83, b"x"), 1002),  # reserved opcode
        (_masked(0x80, b"x"), 1002),  # continuation of nothing
        (_masked(0x09, b"x"), 1002),  # fragmented ping
        (_masked(0x81, b"\xff\xfe"), 1007),  # invalid UTF-8
        (_masked(0x88, b"\x03"), 1002),  # 1-byte close payload
        (_masked(0x88, b"\x03\xed"), 1002),  # close code 1005 on the wire
        (_masked(0x88, b"\x03\xf7"), 1002),  # close code 1015 on the wire
        (_masked(0x01, b"4a") + _masked(0x81, b"b"), 1002),  # new message inside a fragmented one
        (_masked(0x81, b"4", length=b"\xfe\x00\x01"), 1002),  # a 16-bit length for 1 byte
        (_masked(0x81, b"4", length=b"\xff" + (1).to_bytes(8, "big")), 1002),  # a 64-bit length for 1 byte
        (_masked(0x81, b"4", length=b"\xff" + (0xFFFF).to_bytes(8, "big")), 1002),  # 64 bits for what 16 hold
        (_masked(0x81, b"4", length=b"\xff" + (2**63 + 1).to_bytes(8, "big")), 1002),  # the top bit set
    ],
)
def test_parser_refuses_broken_frames(wire: bytes, code: int) -> None:
    parser = FrameParser(2**64)  # no size limit in the way
    parser.receive_data(wire)
    with pytest.raises(FrameError) as info:
        list(parser.events())
    assert info.value.code == code


def test_parser_refuses_a_big_message_from_its_header_alone() -> None:
    parser = FrameParser(1000)
    parser.receive_data(b"\x82\xfe\x03\xe9")  # 1001 bytes announced, none sent yet
    with pytest.raises(FrameError) as info:
        parser.next_event()
    assert info.value.code == 1009
    exact = FrameParser(1000)
    exact.receive_data(_masked(0x82, b"x" * 1000))  # unfragmented, a message may be exactly the limit
    assert exact.next_event() == BytesReceived(b"x" * 1000)


def test_every_fragment_counts_with_its_header() -> None:
    """Fragments are counted as their payload plus their header (finding 2 of
    issue 10: empty continuation frames counted nothing, so a million of them
    passed a 1,000-byte limit)."""
    assert [continuation_cost(n) for n in (0, 125, 126, 65535, 65536)] == [6, 131, 134, 65543, 65550]
    fragmented = FrameParser(16)
    fragmented.receive_data(_masked(0x01, b"4abcdef") + _masked(0x80, b"ghij"))  # 7 + 6 + 4 = 17
    with pytest.raises(FrameError) as info:
        list(fragmented.events())
    assert info.value.code == 1009
    exact = FrameParser(16)
    exact.receive_data(_masked(0x01, b"4abcdef") + _masked(0x80, b"ghi", length=b"\x83"))  # 7 + 6 + 3 = 16
    exact.receive_data(b"")
    assert exact.next_event() == TextReceived("4abcdefghi")
    assert not exact.pending


def test_empty_continuation_frames_end_at_the_limit() -> None:
    parser = FrameParser(1000)
    parser.receive_data(_masked(0x01, b"4"))
    empty = _masked(0x00, b"")
    fed = 0
    with pytest.raises(FrameError) as info:
        for fed in range(1, 1_000_001):
            parser.receive_data(empty)
            assert parser.next_event() is None
    assert info.value.code == 1009
    assert fed == (1000 - 1) // continuation_cost(0) + 1  # the 167th empty fragment is one too many
    assert parser._parts is not None and len(parser._parts) == 1  # nothing held per fragment


class CopyCountingParser(FrameParser):
    """Counts the bytes the parser copies to keep what it has not consumed."""

    __slots__ = ("copied",)

    def __init__(self, max_message: int) -> None:
        super().__init__(max_message)
        self.copied = 0

    def _unconsumed(self) -> bytearray:
        kept = super()._unconsumed()
        self.copied += len(kept)
        return kept


def _masked_fast(first: int, payload: bytes) -> bytes:
    """A masked frame with an all-zero mask (its payload goes out as is): big frames, quickly."""
    length = len(payload)
    field = bytes([0x80 | length]) if length < 126 else (
        b"\xfe" + length.to_bytes(2, "big") if length < 0x10000 else b"\xff" + length.to_bytes(8, "big")
    )
    return bytes((first,)) + field + b"\x00\x00\x00\x00" + payload


def test_a_big_frame_in_small_reads_is_parsed_in_linear_work() -> None:
    """Finding 3 of issue 10: each read copied the whole buffer (a 16 MiB frame
    in 64 KiB reads took 20 times as long as in one piece). The work is counted,
    not timed: the bytes kept by copying stay within a small multiple of the
    bytes received, and the appends grow one buffer in place."""
    payload = bytes(range(256)) * (16 * 4096)  # 16 MiB
    wire = _masked_fast(0x82, payload) + _masked_fast(0x81, b"4after")
    parser = CopyCountingParser(32 * 1024 * 1024)
    events: list[FrameEvent] = []
    grown: bytes | bytearray | None = None
    piece = 65536
    for start in range(0, len(wire), piece):
        parser.receive_data(wire[start : start + piece])
        if start == piece:
            grown = parser._buffer  # the first read's bytes and the second's, one bytearray from now on
        elif start > piece and parser.pending:
            assert parser._buffer is grown  # appended in place, not copied into a new buffer
        events.extend(parser.events())
    assert events == [BytesReceived(payload), TextReceived("4after")]
    assert parser.copied <= piece  # the first read's bytes, copied once to append to; never the whole buffer
    assert not parser.pending and parser._buffer == b""  # nothing held once idle


def test_many_small_frames_in_one_read_are_parsed_in_linear_work() -> None:
    """A read holding thousands of tiny frames: consuming one must not copy the rest."""
    wire = _masked_fast(0x81, b"4") * 50_000
    parser = CopyCountingParser(1000)
    copied_reads = 0
    count = 0
    for start in range(0, len(wire), 65536 + 3):  # pieces that cut frames
        parser.receive_data(wire[start : start + 65536 + 3])
        copied_reads += 1
        count += sum(1 for _ in parser.events())
    assert count == 50_000
    assert parser.copied <= copied_reads * 7  # only the cut frame's few bytes, once per read
