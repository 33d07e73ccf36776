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
