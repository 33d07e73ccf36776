"""Hostile input against the sans-IO layers, directly: Engine.IO packets and
payloads, the EngineSession, Socket.IO packets, SocketIOConnection, the room
protocol's validation and the lobby actor behind it.

The invariant everywhere: what comes out is a value or the layer's documented
error (PacketError, ProtocolViolation / ConnectionClosed, ProtocolError with a
protocol error code), never another exception; and after a refusal the object
is still usable (or cleanly closed).
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from roomactors.actors import COMMANDS, REGISTRY, MemoryClient, RoomLimits, open_lobby
from roomactors.actors.validation import (
    ERROR_CODES,
    ProtocolError,
)
from roomactors.engineio.config import EngineIOConfig
from roomactors.engineio.packets import Packet, PacketError, PacketType, decode_packet, decode_payload
from roomactors.engineio.packets_v3 import decode_payload_v3, decode_websocket_v3
from roomactors.engineio.protocol import (
    BadPacket,
    Closed,
    EngineSession,
    MessageReceived,
    PingReceived,
    PongReceived,
)
from roomactors.socketio.protocol import (
    AckReceived,
    ConnectionClosed,
    ConnectRequested,
    DisconnectRequested,
    EventReceived,
    SocketIOConnection,
)
from roomactors.socketio.errors import ProtocolViolation
from roomactors.socketio.packets import decode_text

# -- strategies -------------------------------------------------------------------

#: Any code point, lone surrogates included: JSON's \ud800 escapes produce them.
any_text = st.text(st.characters(codec=None, categories=None), max_size=40)
huge_ints = st.integers(min_value=-(10**4000), max_value=10**4000)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), huge_ints, st.floats(allow_nan=False), any_text
)


class Nested:
    """``depth`` arrays inside each other, built without recursion; its repr is
    short, so hypothesis can report a failing example without recursing."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        value: Any = []
        for _ in range(depth - 1):
            value = [value]
        self.value = value

    def __repr__(self) -> str:
        return f"Nested({self.depth})"


def nested(depth: int) -> Any:
    return Nested(depth).value


def plain(value: Any) -> Any:
    return value.value if isinstance(value, Nested) else value


deep = st.sampled_from([10, 500, 990, 2000, 10_000]).map(Nested)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4), max_leaves=12
)
hostile_values = st.one_of(json_values, deep)

CARD = {"id": 1, "problem": "1+1", "answer": "2"}
VALID: dict[str, dict[str, Any]] = {
    "join_lobby": {"id": 1, "username": "mia", "auth_level": "teacher"},
    "leave_lobby": {"id": 1},
    "create_room": {
        "name": "Fractions",
        "host": {"id": 1, "username": "mia", "auth_level": None},
        "deck": {
            "name": "Week 3",
            "id": 7,
            "numProblems": 1,
            "description": "d",
            "user_id": 1,
            "user_name": "mia",
            "created": "2020",
            "changed": None,
            "private": False,
            "flashcards": [CARD],
        },
        "listed": True,
    },
    "join_room": {"id": 1},
    "leave_room": {"id": 1},
    "time_sync": {"t0": 1700000000000},
    "watch_rooms": {"filter": {"state": ["waiting", "racing"], "has_seats": True, "name": "fr", "host": 1}, "limit": 10},
    "unwatch_rooms": {},
    "start_race": {"id": 1, "countdown": 0, "time_limit": 60, "shuffle": True, "late_join": False},
    "answer": {"id": 1, "race_id": 1, "card": 0, "answer": "2"},
    "end_race": {"id": 1},
    "race_results": {"id": 1, "race_id": 1},
    "kick_player": {"id": 1, "user": 2},
    "lock_room": {"id": 1, "locked": True},
}
PARSERS: dict[str, Any] = {name: spec.parse for name, spec in REGISTRY.items()}


def field_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a payload a wrong value can go (the root included)."""
    paths = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += field_paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += field_paths(item, (*path, index))
    return paths


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    new = plain(new)
    if not path:
        return new
    copy = json.loads(json.dumps(value))
    holder = copy
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = new
    return copy


ALL_FIELDS = [(command, path) for command, payload in VALID.items() for path in field_paths(payload)]


class Mutated:
    """A command's valid payload with one field replaced (short repr for reports)."""

    def __init__(self, command: str, path: tuple[Any, ...], new: Any) -> None:
        self.command, self.path, self.new = command, path, new
        self.payload = replaced(VALID[command], path, new)

    def __repr__(self) -> str:
        return f"Mutated({self.command!r}, {self.path!r}, {self.new!r:.200})"


@st.composite
def mutated_payloads(draw: st.DrawFn) -> Mutated:
    command, path = draw(st.sampled_from(ALL_FIELDS))
    return Mutated(command, path, draw(hostile_values))


# -- the room protocol's validation -------------------------------------------------


def test_valid_payloads_parse() -> None:
    for command, payload in VALID.items():
        PARSERS[command](payload)


@given(mutated_payloads())
@example(Mutated("join_room", ("id",), Nested(10_000)))
@example(Mutated("create_room", ("deck", "numProblems"), Nested(10_000)))
@example(Mutated("join_room", ("id",), 10**4000))
@example(Mutated("join_lobby", ("username",), "\udfff"))
def test_validation_gives_a_value_or_invalid_payload(case: Mutated) -> None:
    try:
        PARSERS[case.command](case.payload)
    except ProtocolError as error:
        assert error.code == "invalid_payload"
        json.dumps(error.to_ack())  # the refusal itself must be sendable
        assert len(error.message) < 1000, "a refusal must not echo a huge value back"


@given(st.lists(st.tuples(st.sampled_from(COMMANDS), st.sampled_from(["ok", "hostile"]), mutated_payloads()), max_size=12))
async def test_lobby_answers_hostile_commands_and_keeps_its_invariants(
    steps: list[tuple[str, str, Mutated]],
) -> None:
    limits = RoomLimits(command_rate=None, max_rooms=3, max_players=2)
    async with open_lobby(limits) as lobby:
        clients = [MemoryClient(f"c{i}") for i in range(3)]
        for client in clients:
            await lobby.connect(client)
        watching: set[MemoryClient] = set()  # they get roomschanged, not lists
        for i, (command, kind, mutated) in enumerate(steps):
            client = clients[i % len(clients)]
            if kind == "ok":
                reply = await lobby.command(client, command, VALID[command])
            else:
                command = mutated.command
                reply = await lobby.command(client, command, mutated.payload)
            if reply.get("ok") and command in ("watch_rooms", "unwatch_rooms"):
                (watching.add if command == "watch_rooms" else watching.discard)(client)
            assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
            if not reply["ok"]:
                assert reply["error"]["code"] in ERROR_CODES - {"internal"}, reply
            json.dumps(reply)
        snapshot = await lobby.snapshot()  # the lobby is alive and consistent
        seated = [p.id for room in snapshot.rooms.rooms for p in (room.host, *room.players)]
        assert len(seated) == len(set(seated))
        for room in snapshot.rooms.rooms:
            assert snapshot.places.get(room.host.id) == room.id
        for client in clients:
            if client.detached is None and client.room_list is not None and client not in watching:  # replaced ones are out
                assert client.room_list.to_json() == snapshot.rooms.to_json()


# -- Engine.IO ----------------------------------------------------------------------

#: What a received packet may turn into (timers make PingQueued and Closed too).
SESSION_EVENTS = (MessageReceived, PongReceived, PingReceived, Closed, BadPacket)

VALID_EIO = ["0", "1", "2", "2probe", "3", "3probe", "4hello", '42["ev",1]', "5", "6", "bAAEC"]


def mutate(text: str, data: st.DataObject) -> str:
    """Insert, delete or replace a few characters of ``text``."""
    chars = list(text)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        pos = data.draw(st.integers(0, len(chars)))
        if op == "insert" or not chars:
            chars.insert(pos, data.draw(st.characters(codec=None)))
        elif op == "delete":
            del chars[min(pos, len(chars) - 1)]
        else:
            chars[min(pos, len(chars) - 1)] = data.draw(st.characters(codec=None))
    return "".join(chars)


@given(st.one_of(any_text, st.binary(max_size=40)))
def test_decode_packet_gives_a_packet_or_packet_error(raw: str | bytes) -> None:
    try:
        packet = decode_packet(raw)
    except PacketError:
        return
    assert isinstance(packet, Packet) and isinstance(packet.type, PacketType)


@given(st.binary(max_size=200) | st.lists(st.sampled_from(VALID_EIO), max_size=10_000).map(
    lambda packets: "\x1e".join(packets).encode()
))
@example(b"\xff\xfe")
@example(b"4x\x1e\x1e6")  # an empty packet between two
@example("\x1e".join(["4x"] * 10_000).encode())
def test_decode_payload_gives_packets_or_packet_error(body: bytes) -> None:
    try:
        packets = decode_payload(body)
    except PacketError:
        return
    assert packets and all(isinstance(packet, Packet) for packet in packets)


@given(st.lists(st.tuples(st.sampled_from(VALID_EIO) | any_text, st.floats(0, 100)), max_size=30), st.data())
def test_engine_session_takes_any_packet_sequence(steps: list[tuple[str, float]], data: st.DataObject) -> None:
    config = EngineIOConfig(ping_interval=5.0, ping_timeout=3.0)
    session = EngineSession("sid", config, 0.0, data.draw(st.sampled_from(["polling", "websocket"])))
    now = 0.0
    for raw, dt in steps:
        now += dt
        if data.draw(st.booleans()):
            raw = mutate(raw, data)
        session.on_timer(now)
        try:
            packet = decode_packet(raw)
            result = session.receive_packet(packet, now)
        except PacketError:
            session.close("protocol error", notify_peer=False)
            continue
        assert result is None or isinstance(result, SESSION_EVENTS)
        assert not isinstance(result, (Closed, BadPacket)) or session.closed
        payload = session.take_polling_payload(final=session.closed)
        assert payload is None or isinstance(payload, str)
        if payload is not None:
            payload.encode("utf-8")  # what goes on the wire must be encodable
        if session.closed:
            assert session.next_deadline() == math.inf
            assert session.receive_packet(packet, now) is None


# -- Socket.IO ----------------------------------------------------------------------

VALID_SIO = [
    "0",
    "0/lobby,",
    '0/lobby,{"token":1}',
    "1",
    '2["join_lobby",{"id":1}]',
    '2/lobby,7["join_room",{"id":1}]',
    '30["ok"]',
    '51-["up",{"_placeholder":true,"num":0}]',
    '5/lobby,2-3["up",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]',
    '61-0[{"_placeholder":true,"num":0}]',
    '4{"message":"no"}',
]


@given(st.one_of(any_text, st.sampled_from(VALID_SIO)), st.data())
@example('2["x",' + "[" * 10_000 + "]" * 10_000 + "]", None)
@example('51-["x",' + "[" * 990 + '{"_placeholder":true,"num":0}' + "]" * 990 + "]", None)
@example('2["x",' + "1" * 5000 + "]", None)
@example("5" + "9" * 400 + '-["x"]', None)
def test_decode_text_gives_a_packet_or_protocol_violation(text: str, data: st.DataObject | None) -> None:
    if data is not None and data.draw(st.booleans()):
        text = mutate(text, data)
    try:
        decoded = decode_text(text)
    except ProtocolViolation:
        return
    assert decoded.attachments >= 0


EVENT_TYPES = (ConnectRequested, EventReceived, AckReceived, DisconnectRequested, ConnectionClosed)


@given(
    st.lists(
        st.one_of(st.sampled_from(VALID_SIO), any_text, st.binary(max_size=8), st.just('2["x",' + "[" * 3000 + "]" * 3000 + "]")),
        max_size=25,
    ),
    st.data(),
)
def test_connection_takes_any_message_sequence(messages: list[str | bytes], data: st.DataObject) -> None:
    connection = SocketIOConnection(namespaces={"/", "/lobby"}, connect_timeout=45.0, now=0.0)
    closed = False
    for i, message in enumerate(messages):
        if isinstance(message, str) and data.draw(st.booleans()):
            message = mutate(message, data)
        events = connection.receive_message(message, float(i))
        assert all(isinstance(event, EVENT_TYPES) for event in events), events
        if closed:
            assert events == []
        for event in events:
            if isinstance(event, ConnectRequested):
                connection.accept_namespace(event.namespace, f"s{i}")
            elif isinstance(event, EventReceived) and event.ack_id is not None:
                connection.send_ack(event.namespace, event.ack_id, [{"ok": True}])
            elif isinstance(event, ConnectionClosed):
                assert event.reason == "parse error"
                closed = True
        for group in connection.data_to_send():
            for item in group:
                if isinstance(item, str):
                    item.encode("utf-8")  # what goes on the wire must be encodable
    assert connection.on_timer(1000.0) in ([], [ConnectionClosed("connect timeout", "no namespace joined in time")])


def test_attachments_that_never_come_block_nothing_but_that_packet() -> None:
    connection = SocketIOConnection(namespaces={"/"}, connect_timeout=45.0, now=0.0)
    connection.receive_message("0", 0.0)
    connection.accept_namespace("/", "s")
    assert connection.receive_message('52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', 1.0) == []
    assert connection.receive_message(b"one", 2.0) == []
    # Instead of the second attachment, a text packet: the connection closes.
    (closed,) = connection.receive_message('2["x"]', 3.0)
    assert isinstance(closed, ConnectionClosed) and closed.reason == "parse error"
    assert connection.receive_message(b"two", 4.0) == []


# -- Engine.IO v3 and Socket.IO protocol 4 (legacy clients) ------------------------------

VALID_EIO3 = ["6:4hello", "1:2", "6:2probe1:5", "6:b4AQID", "2:4é", "3:4😀", "1:6", "1:1", "1:3"]


@given(st.binary(max_size=200) | st.lists(st.sampled_from(VALID_EIO3), max_size=2000).map(lambda ps: "".join(ps).encode()))
@example(b"\x00\x03\xff4hi\x01\x02\xff\x04\x01")
@example(b"\x00" + b"\x09" * 400 + b"\xff")
@example("".join(["2:4x"] * 10_000).encode())
def test_decode_payload_v3_gives_packets_or_packet_error(body: bytes) -> None:
    try:
        packets = decode_payload_v3(body)
    except PacketError:
        return
    assert packets and all(isinstance(packet, Packet) for packet in packets)


@given(st.one_of(any_text, st.binary(max_size=40)))
def test_decode_websocket_v3_gives_a_packet_or_packet_error(raw: str | bytes) -> None:
    try:
        packet = decode_websocket_v3(raw)
    except PacketError:
        return
    assert isinstance(packet, Packet) and isinstance(packet.type, PacketType)


@given(st.lists(st.tuples(st.sampled_from(VALID_EIO) | any_text, st.floats(0, 100)), max_size=30), st.data())
def test_v3_engine_session_takes_any_packet_sequence(steps: list[tuple[str, float]], data: st.DataObject) -> None:
    config = EngineIOConfig(ping_interval=5.0, ping_timeout=3.0)
    binary = data.draw(st.booleans())
    session = EngineSession(
        "sid", config, 0.0, data.draw(st.sampled_from(["polling", "websocket"])), protocol=3, binary_payloads=binary
    )
    now = 0.0
    for raw, dt in steps:
        now += dt
        if data.draw(st.booleans()):
            raw = mutate(raw, data)
        session.on_timer(now)
        try:
            packet = decode_websocket_v3(raw)
            result = session.receive_packet(packet, now)
        except PacketError:
            session.close("protocol error", notify_peer=False)
            continue
        assert result is None or isinstance(result, SESSION_EVENTS)
        assert not isinstance(result, (Closed, BadPacket)) or session.closed
        payload = session.take_polling_payload(final=session.closed)
        if payload is not None:
            assert isinstance(payload, bytes if binary else str)
            assert decode_payload_v3(payload if binary else payload.encode("utf-8"))  # it reads back
        if session.closed:
            assert session.next_deadline() == math.inf


@given(
    st.lists(st.one_of(st.sampled_from(VALID_SIO + ["0/lobby?x=1", '4"no"']), any_text, st.binary(max_size=8)), max_size=25),
    st.data(),
)
def test_protocol4_connection_takes_any_message_sequence(messages: list[str | bytes], data: st.DataObject) -> None:
    connection = SocketIOConnection(namespaces={"/", "/lobby"}, connect_timeout=45.0, now=0.0, protocol=4)
    assert connection.open_implicit(0.0) == [ConnectRequested("/", None)]
    connection.accept_namespace("/", "s0")
    for i, message in enumerate(messages):
        if isinstance(message, str) and data.draw(st.booleans()):
            message = mutate(message, data)
        events = connection.receive_message(message, float(i))
        assert all(isinstance(event, EVENT_TYPES) for event in events), events
        for event in events:
            if isinstance(event, ConnectRequested):
                assert event.auth is None and "?" not in event.namespace
                connection.accept_namespace(event.namespace, f"s{i}")
        for group in connection.data_to_send():
            for item in group:
                if isinstance(item, str) and item.startswith("4"):
                    assert json.loads(item.partition(",")[2] if item.startswith("4/") else item[1:]) in (
                        "Invalid namespace", "Too many namespace connections; slow down"
                    )
    assert connection.on_timer(1000.0) == []  # in "/" from the start: no connect timeout
