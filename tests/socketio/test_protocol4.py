"""Socket.IO protocol 4 (socket.io-client 1.x/2.x, over Engine.IO v3), sans-IO:
golden strings as socket.io-parser 2.x/3.x writes and reads them."""

from __future__ import annotations

import pytest

from roomactors.socketio.protocol import (
    ConnectRequested,
    DisconnectRequested,
    EventReceived,
    SocketIOConnection,
)
from roomactors.socketio.packets import PacketType, SocketIOPacket, encode_packet

NAMESPACES = {"/", "/lobby"}


def v4(now: float = 0.0) -> SocketIOConnection:
    return SocketIOConnection(namespaces=NAMESPACES, connect_timeout=45.0, now=now, protocol=4)


def test_the_main_namespace_is_joined_at_open_and_acked_without_payload() -> None:
    conn = v4()
    assert conn.open_implicit(0.0) == [ConnectRequested("/", None)]
    assert conn.accept_namespace("/", "s1")
    assert conn.data_to_send() == [("0",)]
    assert conn.next_deadline() is None  # joined: no connect timeout
    with pytest.raises(RuntimeError):
        SocketIOConnection(namespaces=NAMESPACES, connect_timeout=1.0, now=0.0).open_implicit(0.0)


def test_namespace_connect_has_no_auth_and_its_query_is_dropped() -> None:
    conn = v4()
    conn.open_implicit(0.0)
    conn.accept_namespace("/", "s1")
    conn.data_to_send()
    assert conn.receive_message("0/lobby?token=abc", 1.0) == [ConnectRequested("/lobby", None)]
    assert conn.accept_namespace("/lobby", "s2")
    assert conn.data_to_send() == [("0/lobby,",)]
    assert conn.receive_message('2/lobby,["join_lobby",{"id":1}]', 2.0) == [
        EventReceived("/lobby", "join_lobby", [{"id": 1}], None)
    ]
    assert conn.receive_message("1/lobby,", 3.0) == [DisconnectRequested("/lobby")]


def test_connect_errors_are_plain_strings() -> None:
    conn = v4()
    assert conn.receive_message("0/nope,", 1.0) == []
    assert conn.data_to_send() == [('4/nope,"Invalid namespace"',)]
    assert conn.receive_message("0/lobby,", 1.0) == [ConnectRequested("/lobby", None)]
    conn.refuse_namespace("/lobby", "the server is shutting down", {"ignored": True})
    assert conn.data_to_send() == [('4/lobby,"the server is shutting down"',)]
    conn.open_implicit(2.0)
    conn.refuse_namespace("/", "no")
    assert conn.data_to_send() == [('4"no"',)]


def test_binary_events_and_acks_are_the_v5_forms() -> None:
    assert encode_packet(SocketIOPacket(PacketType.EVENT, "/lobby", ["file", b"\x01\x02"])) == [
        '51-/lobby,["file",{"_placeholder":true,"num":0}]', b"\x01\x02"
    ]
    conn = v4()
    conn.open_implicit(0.0)
    conn.accept_namespace("/", "s1")
    assert conn.receive_message('51-["up",{"_placeholder":true,"num":0}]', 1.0) == []
    assert conn.receive_message(b"\xff", 1.0) == [EventReceived("/", "up", [b"\xff"], None)]
    conn.send_ack("/", 7, ["ok"])
    conn.data_to_send()
    conn.send_ack("/", 8, [b"\x00"])
    assert conn.data_to_send() == [('61-8[{"_placeholder":true,"num":0}]', b"\x00")]


def test_protocol_must_be_4_or_5() -> None:
    with pytest.raises(ValueError):
        SocketIOConnection(namespaces=NAMESPACES, connect_timeout=1.0, now=0.0, protocol=3)
