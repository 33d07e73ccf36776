"""SocketIOConnection, sans-IO: messages and `now` in, events and messages out."""

from __future__ import annotations

import pytest

from roomactors.socketio.protocol import (
    AckReceived,
    ConnectionClosed,
    ConnectRequested,
    DisconnectRequested,
    EventReceived,
    SocketIOConnection,
)

NAMESPACES = {"/", "/admin"}


def new(now: float = 0.0, timeout: float = 45.0) -> SocketIOConnection:
    return SocketIOConnection(namespaces=NAMESPACES, connect_timeout=timeout, now=now)


def joined(*namespaces: str) -> SocketIOConnection:
    conn = new()
    for ns in namespaces:
        text = "0" if ns == "/" else f"0{ns},"
        assert conn.receive_message(text, 1.0) == [ConnectRequested(ns, None)]
        assert conn.accept_namespace(ns, f"sid{ns}")
    conn.data_to_send()
    return conn


def closed(events: list) -> bool:
    return len(events) == 1 and isinstance(events[0], ConnectionClosed) and events[0].reason == "parse error"


def test_connect_with_auth_and_ack() -> None:
    conn = new()
    assert conn.receive_message('0/admin,{"token":"123"}', 1.0) == [ConnectRequested("/admin", {"token": "123"})]
    assert conn.data_to_send() == []
    assert conn.accept_namespace("/admin", "abc")
    assert conn.data_to_send() == [('0/admin,{"sid":"abc"}',)]
    assert conn.is_connected("/admin")


def test_connect_main_namespace_without_auth() -> None:
    conn = new()
    assert conn.receive_message("0", 1.0) == [ConnectRequested("/", None)]
    conn.accept_namespace("/", "s1")
    assert conn.data_to_send() == [('0{"sid":"s1"}',)]


def test_invalid_namespace_is_answered_without_an_event() -> None:
    conn = new()
    assert conn.receive_message("0/nope,", 1.0) == []
    assert conn.data_to_send() == [('4/nope,{"message":"Invalid namespace"}',)]
    assert not conn.closed
    # It stays usable: the client may connect elsewhere.
    assert conn.receive_message("0", 1.0) == [ConnectRequested("/", None)]


def test_refusal_with_and_without_data() -> None:
    conn = new()
    conn.receive_message("0", 1.0)
    conn.receive_message("0/admin,", 1.0)
    conn.refuse_namespace("/", "go away")
    conn.refuse_namespace("/admin", "nope", {"why": 1})
    assert conn.data_to_send() == [('4{"message":"go away"}',), ('4/admin,{"message":"nope","data":{"why":1}}',)]
    assert not conn.is_connected("/")
    # After a refusal, the namespace may be requested again.
    assert conn.receive_message("0", 2.0) == [ConnectRequested("/", None)]


def test_events_with_and_without_ack() -> None:
    conn = joined("/", "/admin")
    assert conn.receive_message('2["foo",1,{"a":2}]', 2.0) == [EventReceived("/", "foo", [1, {"a": 2}], None)]
    assert conn.receive_message('2/admin,7["bar"]', 2.0) == [EventReceived("/admin", "bar", [], 7)]
    conn.send_ack("/admin", 7, ["ok", 1])
    assert conn.data_to_send() == [('3/admin,7["ok",1]',)]


def test_binary_ack_to_client() -> None:
    conn = joined("/")
    conn.send_ack("/", 3, [b"\x00"])
    assert conn.data_to_send() == [('61-3[{"_placeholder":true,"num":0}]', b"\x00")]


def test_binary_event_from_client() -> None:
    conn = joined("/")
    assert conn.receive_message('52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', 2.0) == []
    assert conn.receive_message(b"one", 2.0) == []
    assert conn.receive_message(b"two", 2.0) == [EventReceived("/", "up", [b"one", b"two"], None)]
    # Back to text afterwards.
    assert conn.receive_message('2["x"]', 2.0) == [EventReceived("/", "x", [], None)]


def test_server_to_client_acks() -> None:
    conn = joined("/", "/admin")
    first = conn.allocate_ack_id("/")
    second = conn.allocate_ack_id("/admin")
    assert first != second
    assert conn.receive_message(f'3/admin,{second}["hi"]', 2.0) == [AckReceived("/admin", second, ["hi"])]
    assert conn.receive_message(f"61-{first}[{{\"_placeholder\":true,\"num\":0}}]", 2.0) == []
    assert conn.receive_message(b"bin", 2.0) == [AckReceived("/", first, [b"bin"])]


def test_late_ack_after_forget_is_dropped() -> None:
    conn = joined("/")
    ack_id = conn.allocate_ack_id("/")
    conn.forget_ack(ack_id)
    assert conn.receive_message(f"3{ack_id}[]", 2.0) == []
    assert not conn.closed


def test_client_disconnect_keeps_the_other_namespace() -> None:
    conn = joined("/", "/admin")
    assert conn.receive_message("1/admin,", 2.0) == [DisconnectRequested("/admin")]
    assert not conn.is_connected("/admin")
    assert conn.is_connected("/")
    assert conn.receive_message('2["still"]', 2.0) == [EventReceived("/", "still", [], None)]


def test_server_disconnect() -> None:
    conn = joined("/", "/admin")
    assert conn.disconnect_namespace("/admin")
    assert conn.data_to_send() == [("1/admin,",)]
    assert not conn.disconnect_namespace("/admin")
    assert conn.data_to_send() == []
    conn.send_ack("/admin", 1, [])
    assert conn.data_to_send() == []


def test_accept_after_client_left_sends_nothing() -> None:
    conn = new()
    conn.receive_message("0", 1.0)
    assert conn.receive_message("1", 1.0) == [DisconnectRequested("/")]
    assert not conn.accept_namespace("/", "s")
    assert conn.data_to_send() == []


def test_events_while_connecting_are_delivered() -> None:
    # The application decides once its connect handler has run.
    conn = new()
    conn.receive_message("0", 1.0)
    assert conn.receive_message('2["early"]', 1.0) == [EventReceived("/", "early", [], None)]


# -- connect timeout ------------------------------------------------------


def test_connect_timeout_fires_exactly_at_the_deadline() -> None:
    conn = new(now=100.0, timeout=45.0)
    assert conn.next_deadline() == 145.0
    assert conn.on_timer(144.999) == []
    events = conn.on_timer(145.0)
    assert events == [ConnectionClosed("connect timeout", "no namespace joined in time")]
    assert conn.closed
    assert conn.next_deadline() is None


def test_pending_connect_does_not_stop_the_timeout() -> None:
    conn = new(now=0.0, timeout=10.0)
    conn.receive_message("0", 5.0)
    assert conn.next_deadline() == 10.0
    conn.refuse_namespace("/", "no")
    assert conn.next_deadline() == 10.0
    assert len(conn.on_timer(10.0)) == 1


def test_join_clears_the_timeout_for_good() -> None:
    conn = new(now=0.0, timeout=10.0)
    conn.receive_message("0", 5.0)
    conn.accept_namespace("/", "s")
    assert conn.next_deadline() is None
    conn.receive_message("1", 6.0)
    assert conn.next_deadline() is None
    assert conn.on_timer(100.0) == []


# -- violations: each closes the connection -------------------------------

VIOLATING = [
    ["9"],
    ['2{"a":1}'],
    ["2[]"],
    ['3["bar"]'],
    ['3999["late"]'],                 # ack for an id never allocated
    ['51-["ev",{"_placeholder":true,"num":0}]', '2["text while pending"]'],
    [b"binary without header"],
    ["0"],                            # CONNECT twice (after the joined one)
    ['2/admin,["never joined"]'],
    ["1/admin,"],                     # disconnect from a namespace never joined
    ['51-/admin,["ev",{"_placeholder":true,"num":0}]'],  # binary for a namespace never joined
    ['4{"message":"x"}'],             # clients don't send CONNECT_ERROR
    ['0["a"]'],
]


@pytest.mark.parametrize("messages", VIOLATING)
def test_violations_close_the_connection(messages: list) -> None:
    conn = joined("/")
    events: list = []
    for message in messages:
        events = conn.receive_message(message, 2.0)
    assert closed(events)
    assert conn.closed
    assert not conn.is_connected("/")
    assert conn.receive_message('2["after"]', 2.0) == []
    assert conn.data_to_send() == []


def test_ack_on_the_wrong_namespace_closes() -> None:
    conn = joined("/", "/admin")
    ack_id = conn.allocate_ack_id("/")
    assert closed(conn.receive_message(f"3/admin,{ack_id}[]", 2.0))


def test_connect_twice_while_connecting_closes() -> None:
    conn = new()
    conn.receive_message("0/admin,", 1.0)
    assert closed(conn.receive_message("0/admin,", 1.0))
    assert not conn.accept_namespace("/admin", "s")


def test_namespace_joins_are_rate_limited_per_connection() -> None:
    conn = SocketIOConnection(namespaces=NAMESPACES, connect_timeout=45.0, now=0.0, connect_rate=0.5, connect_burst=3)
    for _ in range(3):  # join, leave, join again: within the burst
        assert conn.receive_message("0/admin,", 1.0) == [ConnectRequested("/admin", None)]
        assert conn.accept_namespace("/admin", "s")
        assert conn.receive_message("1/admin,", 1.0) == [DisconnectRequested("/admin")]
    conn.data_to_send()
    assert conn.receive_message("0/admin,", 1.0) == []  # the application never hears of it
    assert conn.data_to_send() == [('4/admin,{"message":"Too many namespace connections; slow down"}',)]
    assert conn.receive_message("0/admin,", 2.9) == []  # 0.95 of a token back
    assert conn.receive_message("0/admin,", 3.1) == [ConnectRequested("/admin", None)]  # one whole token
