"""Sans-IO codec: golden wire strings and validation."""

import json

import pytest

from roomactors.engineio.packets import (
    Packet,
    PacketError,
    PacketType,
    SharedMessage,
    decode_packet,
    decode_payload,
    encode_open,
    encode_payload,
)


def test_handshake_has_exactly_the_v4_keys_in_integer_ms() -> None:
    text = encode_open("abc", ["websocket"], 25.0, 20.0, 1_000_000)
    assert text == '0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}'
    assert encode_open("x", [], 0.3, 0.25, 10) == '0{"sid":"x","upgrades":[],"pingInterval":300,"pingTimeout":250,"maxPayload":10}'
    assert list(json.loads(text[1:])) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]


def test_message_encodings() -> None:
    assert SharedMessage("hello").polling == "4hello"
    assert SharedMessage("hello").websocket == "4hello"
    assert SharedMessage(b"\x01\x02\x03").polling == "bAQID"
    assert SharedMessage(b"\x01\x02\x03").websocket == b"\x01\x02\x03"
    assert SharedMessage("é").size == 2


def test_shared_message_encodes_once() -> None:
    message = SharedMessage("x" * 10)
    assert message.polling is message.polling
    assert message.websocket is message.websocket


def test_payload_join_and_split() -> None:
    assert encode_payload(["4hello", "bAQID", "2"]) == "4hello\x1ebAQID\x1e2"
    assert decode_payload(b"4hello\x1ebAQID\x1e3") == [
        Packet(PacketType.MESSAGE, "hello"),
        Packet(PacketType.MESSAGE, b"\x01\x02\x03"),
        Packet(PacketType.PONG, ""),
    ]


def test_more_than_sixteen_packets_per_payload() -> None:
    body = "\x1e".join(f"4m{i}" for i in range(100)).encode()
    assert [p.data for p in decode_payload(body)] == [f"m{i}" for i in range(100)]


def test_message_data_stays_raw() -> None:
    assert decode_packet('4"x"') == Packet(PacketType.MESSAGE, '"x"')
    assert decode_packet("4123") == Packet(PacketType.MESSAGE, "123")
    assert decode_packet("4") == Packet(PacketType.MESSAGE, "")
    assert decode_packet("2probe") == Packet(PacketType.PING, "probe")
    assert decode_packet(b"\x00\xff") == Packet(PacketType.MESSAGE, b"\x00\xff")


@pytest.mark.parametrize("raw", ["9", "9hello", "", "x", "bnot base64!", "7"])
def test_garbage_is_rejected(raw: str) -> None:
    with pytest.raises(PacketError):
        decode_packet(raw)


@pytest.mark.parametrize("body", [b"", b"4a\x1e9", b"\xff\xfe", b"4a\x1e\x1e4b"])
def test_bad_payloads_are_rejected(body: bytes) -> None:
    with pytest.raises(PacketError):
        decode_payload(body)
