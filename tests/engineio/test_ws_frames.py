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

from roomactors.engineio.wsframes import OPCODE_CLOSE, OPCODE_PING, FrameError, FrameParser  # noqa: E402


def _client_frames(*events: object) -> bytes:
    client = Connection(ConnectionType.CLIENT)
    return b"".join(client.send(event) for event in events)  # type: ignore[arg-type]


def _parse_all(parser: FrameParser, data: bytes, chunk: int) -> list[tuple[int, object]]:
    out = []
    for start in range(0, len(data), chunk):
        parser.feed(data[start : start + chunk])
        while (message := parser.next_message()) is not None:
            out.append(message)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.one_of(st.text(max_size=200), st.binary(max_size=3000)), min_size=1, max_size=4),
    st.integers(min_value=1, max_value=5000),
)
def test_parser_reads_masked_client_frames_in_any_chunks(messages: list[str | bytes], chunk: int) -> None:
    wire = _client_frames(*(TextMessage(data=m) if isinstance(m, str) else BytesMessage(data=m) for m in messages))
    parsed = _parse_all(FrameParser(1_000_000), wire, chunk)
    assert [payload for _, payload in parsed] == messages
    assert [opcode for opcode, _ in parsed] == [1 if isinstance(m, str) else 2 for m in messages]


def test_parser_joins_fragments_around_a_ping() -> None:
    wire = _client_frames(
        Message(data="4ab", message_finished=False), Ping(b"p"), Message(data="cé", message_finished=True)
    )
    assert _parse_all(FrameParser(100), wire, 3) == [(OPCODE_PING, b"p"), (1, "4abcé")]


def test_parser_reads_close_frames() -> None:
    assert _parse_all(FrameParser(100), _client_frames(CloseConnection(1001, "bye")), 100) == [
        (OPCODE_CLOSE, (1001, "bye"))
    ]
    assert _parse_all(FrameParser(100), _masked(0x88, b""), 100) == [(OPCODE_CLOSE, (1005, ""))]  # no status


def _masked(first: int, payload: bytes, mask: bytes = b"\x01\x02\x03\x04") -> bytes:
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((first, 0x80 | len(payload))) + mask + masked


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
        (_masked(0x01, b"4a") + _masked(0x81, b"b"), 1002),  # new message inside a fragmented one
    ],
)
def test_parser_refuses_broken_frames(wire: bytes, code: int) -> None:
    parser = FrameParser(100)
    parser.feed(wire)
    with pytest.raises(FrameError) as info:
        while parser.next_message() is not None:
            pass
    assert info.value.code == code


def test_parser_refuses_a_big_message_from_its_header_alone() -> None:
    parser = FrameParser(1000)
    parser.feed(b"\x82\xfe\x03\xe9")  # 1001 bytes announced, none sent yet
    with pytest.raises(FrameError) as info:
        parser.next_message()
    assert info.value.code == 1009
    fragmented = FrameParser(10)
    fragmented.feed(_masked(0x01, b"4abcdef") + _masked(0x80, b"ghij"))  # 11 bytes over two frames
    with pytest.raises(FrameError) as info:
        while fragmented.next_message() is not None:
            pass
    assert info.value.code == 1009
    exact = FrameParser(10)
    exact.feed(_masked(0x01, b"4abcdef") + _masked(0x80, b"ghi"))
    assert exact.next_message() == (1, "4abcdefghi")
