"""The Socket.IO v5 codec against the specification's golden strings and every
malformation a client can send."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roomactors.socketio.errors import ProtocolViolation
from roomactors.socketio.packets import (
    PacketType,
    SocketIOPacket,
    attach_binary,
    decode_text,
    encode_packet,
)

P = PacketType
PLACEHOLDER = {"_placeholder": True, "num": 0}

GOLDEN = [
    ("0", SocketIOPacket(P.CONNECT)),
    ('0/admin,{"token":"123"}', SocketIOPacket(P.CONNECT, "/admin", {"token": "123"})),
    ('0{"sid":"oSO0OpakMV_3jnilAAAA"}', SocketIOPacket(P.CONNECT, "/", {"sid": "oSO0OpakMV_3jnilAAAA"})),
    ('2["foo"]', SocketIOPacket(P.EVENT, "/", ["foo"])),
    ('2/admin,["bar"]', SocketIOPacket(P.EVENT, "/admin", ["bar"])),
    ('212["foo"]', SocketIOPacket(P.EVENT, "/", ["foo"], 12)),
    ('3/admin,13["bar"]', SocketIOPacket(P.ACK, "/admin", ["bar"], 13)),
    ('4{"message":"Invalid namespace"}', SocketIOPacket(P.CONNECT_ERROR, "/", {"message": "Invalid namespace"})),
    ("1/admin,", SocketIOPacket(P.DISCONNECT, "/admin")),
]


@pytest.mark.parametrize(("text", "packet"), GOLDEN)
def test_golden_text_packets_decode(text: str, packet: SocketIOPacket) -> None:
    assert decode_text(text).packet == packet
    assert decode_text(text).attachments == 0


@pytest.mark.parametrize(("text", "packet"), GOLDEN)
def test_golden_text_packets_encode(text: str, packet: SocketIOPacket) -> None:
    assert encode_packet(packet) == [text]


def test_binary_event_encodes_with_placeholder() -> None:
    packet = SocketIOPacket(P.EVENT, "/", ["ev", b"\x01\x02\x03"])
    assert encode_packet(packet) == ['51-["ev",{"_placeholder":true,"num":0}]', b"\x01\x02\x03"]


def test_binary_ack_encodes_with_namespace_and_id() -> None:
    packet = SocketIOPacket(P.ACK, "/admin", [b"\xff"], 456)
    assert encode_packet(packet) == ['61-/admin,456[{"_placeholder":true,"num":0}]', b"\xff"]


def test_binary_event_decodes_and_reassembles() -> None:
    decoded = decode_text('51-["ev",{"_placeholder":true,"num":0}]')
    assert decoded.attachments == 1
    assert decoded.packet == SocketIOPacket(P.BINARY_EVENT, "/", ["ev", PLACEHOLDER])
    assert attach_binary(decoded.packet, [b"\x01\x02"]).data == ["ev", b"\x01\x02"]


def test_binary_ack_decodes() -> None:
    decoded = decode_text('61-/admin,456[{"_placeholder":true,"num":0}]')
    assert decoded.attachments == 1
    assert decoded.packet == SocketIOPacket(P.BINARY_ACK, "/admin", [PLACEHOLDER], 456)
    assert attach_binary(decoded.packet, [b"x"]).data == [b"x"]


def test_nested_placeholders_reassemble() -> None:
    decoded = decode_text('52-["ev",{"a":[{"_placeholder":true,"num":1}],"b":{"_placeholder":true,"num":0}}]')
    assert attach_binary(decoded.packet, [b"0", b"1"]).data == ["ev", {"a": [b"1"], "b": b"0"}]


def test_connect_without_trailing_comma() -> None:
    assert decode_text("0/admin").packet == SocketIOPacket(P.CONNECT, "/admin")


VIOLATIONS = [
    "",                                   # empty
    "9",                                  # unknown packet type
    "x",                                  # not a digit
    '2{"a":1}',                           # EVENT payload not an array
    "2[]",                                # EVENT payload empty
    '2["disconnect"]',                    # reserved event name
    '2["connect",{}]',                    # reserved event name
    "2[1]",                               # event name not a string
    "2",                                  # EVENT without payload
    '2/admin["x"]',                       # namespace without comma swallows the payload
    '2["foo"',                            # truncated JSON
    '2["foo"]x',                          # trailing garbage
    '2[NaN]',                             # not JSON
    '299999999999999999["foo"]',          # ack id beyond 2**53 - 1
    '3["bar"]',                           # ACK without an id
    '31{"a":1}',                          # ACK payload not an array
    "0admin,{}",                          # namespace not starting with "/"
    '0["a"]',                             # CONNECT payload not an object
    '0"token"',                           # CONNECT payload not an object
    "01",                                 # CONNECT with an id
    '1["x"]',                             # DISCONNECT with payload
    "4",                                  # CONNECT_ERROR without payload
    '5["ev",{"_placeholder":true,"num":0}]',      # no attachment count
    '5x-["ev",{"_placeholder":true,"num":0}]',    # bad attachment count
    '52-["ev",{"_placeholder":true,"num":0}]',    # count 2, one placeholder
    '51-["ev"]',                                  # count 1, no placeholder
    '51-["ev",{"_placeholder":true,"num":1}]',    # placeholder out of range
    '51-["ev",{"_placeholder":true,"num":-1}]',   # negative placeholder
    '51-["ev",{"_placeholder":true,"num":"0"}]',  # placeholder num not an int
    '51-["ev",{"_placeholder":true}]',            # placeholder without num
    '599999-["ev"]',                              # too many attachments
    '61-[{"_placeholder":true,"num":0}]',         # BINARY_ACK without id
    "2" + "[" * 100000 + "]" * 100000,            # nesting deeper than the parser
]


@pytest.mark.parametrize("text", VIOLATIONS)
def test_violations_raise(text: str) -> None:
    with pytest.raises(ProtocolViolation):
        decode_text(text)


# -- round trips over generated payloads --------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20) | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8).filter(lambda k: k != "_placeholder"), children, max_size=4),
    max_leaves=12,
)
namespaces = st.sampled_from(["/", "/admin", "/lobby", "/a-b_c.d"])
event_names = st.text(min_size=1, max_size=12).filter(lambda n: n not in {"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"})
ack_ids = st.none() | st.integers(0, 2**53 - 1)


def roundtrip(packet: SocketIOPacket) -> SocketIOPacket:
    first, *attachments = encode_packet(packet)
    assert isinstance(first, str)
    decoded = decode_text(first)
    assert decoded.attachments == len(attachments)
    return attach_binary(decoded.packet, attachments) if attachments else decoded.packet  # type: ignore[arg-type]


@given(namespaces, event_names, st.lists(json_values, max_size=4), ack_ids)
def test_events_round_trip(namespace: str, name: str, args: list, ack_id: int | None) -> None:
    back = roundtrip(SocketIOPacket(P.EVENT, namespace, [name, *args], ack_id))
    assert (back.namespace, back.data, back.id) == (namespace, [name, *args], ack_id)
    assert back.type in (P.EVENT, P.BINARY_EVENT)


@given(namespaces, st.lists(json_values, max_size=4), st.integers(0, 2**53 - 1))
def test_acks_round_trip(namespace: str, args: list, ack_id: int) -> None:
    back = roundtrip(SocketIOPacket(P.ACK, namespace, args, ack_id))
    assert (back.namespace, back.data, back.id) == (namespace, args, ack_id)


@given(st.text(max_size=40))
def test_decoding_arbitrary_text_never_fails_otherwise(text: str) -> None:
    try:
        decode_text(text)
    except ProtocolViolation:
        pass


@given(st.sampled_from([P.CONNECT, P.EVENT, P.ACK, P.CONNECT_ERROR]), namespaces, json_values, ack_ids)
def test_encoding_matches_python_socketio(kind: PacketType, namespace: str, data: object, ack_id: int | None) -> None:
    """Our plain-JSON fast path writes exactly what python-socketio's Packet
    writes, and payloads holding bytes still go binary through it."""
    from socketio.packet import Packet

    if kind is P.CONNECT or kind is P.CONNECT_ERROR:
        ack_id = None
    try:
        expected = Packet(int(kind), data=data, namespace=namespace, id=ack_id).encode()
    except ValueError:  # bytes in a packet type that has no binary variant
        with pytest.raises(ValueError):
            encode_packet(SocketIOPacket(kind, namespace, data, ack_id))
        return
    expected_list = [expected] if isinstance(expected, str) else [expected[0], *map(bytes, expected[1:])]
    assert encode_packet(SocketIOPacket(kind, namespace, data, ack_id)) == expected_list


def test_non_json_payload_still_refused() -> None:
    with pytest.raises(TypeError):
        encode_packet(SocketIOPacket(P.EVENT, "/", ["ev", {1, 2}]))
