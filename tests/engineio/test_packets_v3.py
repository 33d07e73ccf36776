"""Engine.IO v3 codec and session, sans-IO: golden wire strings as
engine.io-parser 2.x (socket.io-client 2.x, Node's ``allowEIO3``) writes them,
and the client-driven heartbeat with plain numbers."""

from __future__ import annotations

import json

import pytest

from roomactors.engineio import EngineIOConfig, SharedMessage
from roomactors.engineio.packets import Packet, PacketError, PacketType
from roomactors.engineio.packets_v3 import (
    decode_binary_payload,
    decode_payload_v3,
    decode_websocket_v3,
    encode_binary_payload,
    encode_open_v3,
    encode_text_payload,
    js_length,
)
from roomactors.engineio.protocol import POLLING, WEBSOCKET, Closed, EngineSession, MessageReceived, PingReceived

CONFIG = EngineIOConfig(ping_interval=25.0, ping_timeout=20.0)
HANDSHAKE = '0{"sid":"abc","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000}'


def message(data: str | bytes) -> Packet:
    return Packet(PacketType.MESSAGE, data)


# -- payload framing ------------------------------------------------------------


def test_js_length_counts_utf16_code_units() -> None:
    assert js_length("4hello") == 6
    assert js_length("4é") == 2  # one code unit, two UTF-8 bytes
    assert js_length("4😀") == 3  # a surrogate pair
    assert js_length("") == 0


@pytest.mark.parametrize(
    ("packets", "wire"),
    [
        (["4hello", "2"], "6:4hello1:2"),
        (["3probe"], "6:3probe"),
        (["6"], "1:6"),
        (["4é"], "2:4é"),
        (["4😀x"], "4:4😀x"),
        (['42["updaterooms","[]"]'], '22:42["updaterooms","[]"]'),
        ([HANDSHAKE], f"{len(HANDSHAKE)}:{HANDSHAKE}"),
    ],
)
def test_text_payload_golden(packets: list[str], wire: str) -> None:
    assert encode_text_payload(packets) == wire
    decoded = decode_payload_v3(wire.encode())
    assert [f"{int(p.type)}{p.data}" for p in decoded] == packets


def test_text_payload_decodes_to_packets() -> None:
    assert decode_payload_v3(b"6:4hello1:21:1") == [
        message("hello"), Packet(PacketType.PING), Packet(PacketType.CLOSE)
    ]
    assert decode_payload_v3("5:4a😀b".encode()) == [message("a😀b")]


def test_binary_in_a_text_payload_is_b4_base64() -> None:
    shared = SharedMessage(b"\x01\x02\x03")
    assert shared.polling_v3 == "b4AQID"
    assert shared.polling == "bAQID"  # v4, for comparison
    assert encode_text_payload([shared.polling_v3, "2"]) == "6:b4AQID1:2"
    assert decode_payload_v3(b"6:b4AQID") == [message(b"\x01\x02\x03")]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"0:",
        b"5:4hello",  # length short of the packet: the rest has no length
        b"7:4hello",  # longer than the payload
        b"x:4hello",
        b"4hello",
        b"6:4hello:",
        b"2:9x",  # unknown packet type
        b"7:b4AQI!D",  # bad base64
        b"5:b2AQI",  # binary of a type other than message
        b"99999999999:4",
        "2:😀".encode(),  # a length that splits a surrogate pair
        b"\xff\xfe",
    ],
)
def test_bad_text_payloads_are_refused(body: bytes) -> None:
    with pytest.raises(PacketError):
        decode_payload_v3(body)


def test_binary_payload_golden() -> None:
    # <0 text|1 binary><length digits as bytes 0-9><255><packet>; text lengths in UTF-8 bytes
    wire = b"\x00\x03\xff4hi" + b"\x01\x04\xff\x04\x01\x02\x03" + b"\x00\x03\xff4\xc3\xa9"
    assert encode_binary_payload(["4hi", b"\x04\x01\x02\x03", "4é"]) == wire
    assert decode_payload_v3(wire) == [message("hi"), message(b"\x01\x02\x03"), message("é")]
    long = "4" + "x" * 120
    assert encode_binary_payload([long]) == b"\x00\x01\x02\x01\xff" + long.encode()


@pytest.mark.parametrize(
    "body",
    [
        b"\x00\xff4hi",  # no length
        b"\x00\x09\xff4hi",  # longer than the payload
        b"\x00\x0a\xff4hi",  # a "digit" above 9
        b"\x02\x03\xff4hi",  # neither text nor binary
        b"\x01\x02\xff\x02x",  # binary of a type other than message
        b"\x00\x02\xff4\xc3",  # text that is not UTF-8
        b"\x00" + b"\x01" * 12 + b"\xff",
    ],
)
def test_bad_binary_payloads_are_refused(body: bytes) -> None:
    with pytest.raises(PacketError):
        decode_binary_payload(body)


# -- WebSocket frames and the handshake ----------------------------------------------


def test_websocket_binary_frames_carry_the_type_byte() -> None:
    shared = SharedMessage(b"\x01\x02")
    assert shared.websocket_v3 == b"\x04\x01\x02"
    assert shared.websocket_frame_v3 == b"\x82\x03\x04\x01\x02"
    assert decode_websocket_v3(b"\x04\x01\x02") == message(b"\x01\x02")
    with pytest.raises(PacketError):
        decode_websocket_v3(b"\x02")
    with pytest.raises(PacketError):
        decode_websocket_v3(b"")


def test_websocket_text_frames_are_v4_ones() -> None:
    shared = SharedMessage('2["x"]')
    assert shared.websocket_v3 == shared.websocket == '42["x"]'
    assert shared.websocket_frame_v3 is shared.websocket_frame  # shared, not framed twice
    assert decode_websocket_v3("2probe") == Packet(PacketType.PING, "probe")
    assert decode_websocket_v3("5") == Packet(PacketType.UPGRADE)
    assert decode_websocket_v3("b4AQI=") == message(b"\x01\x02")


def test_handshake_carries_both_intervals_and_no_max_payload() -> None:
    assert encode_open_v3("abc", ["websocket"], 25.0, 20.0) == HANDSHAKE
    session = EngineSession("abc", CONFIG, 0.0, POLLING, protocol=3)
    assert session.handshake_packet() == HANDSHAKE
    assert session.handshake_payload() == f"{len(HANDSHAKE)}:{HANDSHAKE}"
    assert "maxPayload" not in json.loads(HANDSHAKE[1:])
    binary = EngineSession("abc", CONFIG, 0.0, POLLING, protocol=3, binary_payloads=True)
    assert binary.handshake_payload() == b"\x00\x08\x00\xff" + HANDSHAKE.encode()  # 80 bytes
    ws = EngineSession("abc", CONFIG, 0.0, WEBSOCKET, protocol=3)
    assert ws.handshake_packet() == HANDSHAKE.replace('["websocket"]', "[]")


# -- the session: heartbeat, polling, upgrade ------------------------------------


def v3_session(now: float = 0.0, **kwargs: object) -> EngineSession:
    return EngineSession("abc", CONFIG, now, POLLING, protocol=3, **kwargs)  # type: ignore[arg-type]


def test_the_server_never_pings_a_v3_client() -> None:
    session = v3_session()
    assert session.next_deadline() == 45.0  # open + ping_interval + ping_timeout
    assert session.on_timer(25.0) is None
    assert session.on_timer(44.999) is None
    assert not session.closed
    assert session.take_polling_payload() is None  # no ping queued


def test_each_client_ping_is_answered_and_moves_the_deadline() -> None:
    session = v3_session()
    assert session.receive_packet(Packet(PacketType.PING), 25.0) == PingReceived()
    assert session.take_polling_payload() == "1:3"
    assert session.next_deadline() == 70.0
    session.receive_packet(Packet(PacketType.PING), 50.0)
    assert session.next_deadline() == 95.0
    session.on_timer(94.9)
    assert not session.closed
    assert session.on_timer(95.0) == Closed("ping timeout")
    assert session.closed and session.close_reason == "ping timeout"


def test_messages_do_not_move_the_deadline() -> None:
    session = v3_session()
    assert session.receive_packet(message("hi"), 30.0) == MessageReceived("hi")
    assert session.receive_packet(Packet(PacketType.PONG), 31.0) is None  # stray pong: ignored
    assert session.next_deadline() == 45.0


def test_polling_payloads_are_framed() -> None:
    session = v3_session()
    session.outbox.append((SharedMessage('0'),))
    session.outbox.append((SharedMessage(b"\x01"),))
    assert session.take_polling_payload() == "2:406:b4AQ=="
    session.close("server close", notify_peer=True)
    assert session.take_polling_payload(final=True) == "1:1"


def test_binary_polling_payloads_for_xhr2_clients() -> None:
    session = v3_session(binary_payloads=True)
    session.outbox.append((SharedMessage("é"),))
    session.outbox.append((SharedMessage(b"\x01"),))
    assert session.take_polling_payload() == b"\x00\x03\xff4\xc3\xa9\x01\x02\xff\x04\x01"


def test_upgrade_releases_polling_with_a_framed_noop() -> None:
    session = v3_session()
    assert session.begin_upgrade() == "3probe"
    assert session.take_polling_payload() == "1:6"
    session.complete_upgrade()
    session.outbox.append((SharedMessage(b"\x01"),))
    session.outbox.append((SharedMessage("x"),))
    assert session.take_websocket_frames() == [b"\x04\x01", "4x"]


def test_v4_sessions_are_unchanged() -> None:
    session = EngineSession("abc", CONFIG, 0.0, POLLING)
    assert session.protocol == 4 and session.next_deadline() == 25.0
    assert session.handshake_payload() == session.handshake_packet()
    assert '"maxPayload":1000000' in session.handshake_packet()


# -- against the real parser ------------------------------------------------------

_NODE_PARSER_SCRIPT = r"""
const parser = require(process.argv[1]);
const ours = JSON.parse(process.argv[2]);
const out = {};
const packets = [
  { type: "message", data: "hello" }, { type: "ping" }, { type: "message", data: "é😀" },
];
parser.encodePayload(packets, false, (s) => (out.text = s));
parser.encodePayload([{ type: "message", data: Buffer.from([1, 2, 3]) }], false, (s) => (out.b64 = s));
parser.encodePayloadAsBinary(
  [{ type: "message", data: "é😀" }, { type: "message", data: Buffer.from([1, 2]) }],
  (b) => (out.binary = b.toString("base64")),
);
out.decoded = [];
parser.decodePayload(ours.text, (packet) => { out.decoded.push([packet.type, packet.data ?? null]); });
parser.decodePayloadAsBinary(Buffer.from(ours.binary, "base64"), (packet) => {
  out.decoded.push([packet.type, Buffer.isBuffer(packet.data) ? [...packet.data] : packet.data]);
});
console.log(JSON.stringify(out));
"""


def test_agrees_with_engine_io_parser_2() -> None:
    """engine.io-parser 2.x (what socket.io-client 2.x and Node's allowEIO3 use)
    encodes what we decode, and decodes what we encode."""
    import base64
    import shutil
    import subprocess
    from pathlib import Path

    parser = Path(__file__).parents[1] / "js/node_modules/socket.io-client-2/node_modules/engine.io-parser"
    node = shutil.which("node")
    if node is None or not parser.is_dir():
        pytest.skip("node or socket.io-client-2 (tests/js: npm install) is missing")
    ours = {
        "text": encode_text_payload(["4hello", "2", "4é😀", SharedMessage(b"\x01").polling_v3]),
        "binary": base64.b64encode(encode_binary_payload(["4é😀", b"\x04\x01\x02"])).decode(),
    }
    result = subprocess.run(
        [node, "-e", _NODE_PARSER_SCRIPT, str(parser), json.dumps(ours)],
        capture_output=True, text=True, timeout=30, check=True,
    )
    theirs = json.loads(result.stdout)
    assert theirs["text"] == "6:4hello1:24:4é😀"
    assert decode_payload_v3(theirs["text"].encode()) == [message("hello"), Packet(PacketType.PING), message("é😀")]
    assert decode_payload_v3(theirs["b64"].encode()) == [message(b"\x01\x02\x03")]
    binary = base64.b64decode(theirs["binary"])
    assert binary == encode_binary_payload(["4é😀", b"\x04\x01\x02"])
    assert theirs["decoded"] == [
        ["message", "hello"], ["ping", None], ["message", "é😀"], ["message", {"type": "Buffer", "data": [1]}],
        ["message", "é😀"], ["message", [1, 2]],
    ]


def test_engine_io_parser_1_double_utf8_text_is_decoded_once_more() -> None:
    # socket.io-client 1.x under Node (no XHR2): "é😀" utf8-encoded into a byte string
    doubled = "4é😀".encode().decode("latin-1")
    assert doubled == "4Ã©ð\x9f\x98\x80"
    body = f"{len(doubled)}:{doubled}".encode()
    assert decode_payload_v3(body) == [message("é😀")]
    # real text stays as it is: Latin-1 letters alone are not UTF-8 as bytes
    assert decode_payload_v3("4:4Zoë".encode()) == [message("Zoë")]
    assert decode_payload_v3("4:4é😀".encode()) == [message("é😀")]
