"""The client harnesses against Node's socket.io 4 (tests/js/echo-server.mjs).

Why: every end-to-end test of roomactors trusts these harnesses, so they are
proven first against the reference server, on both clients, with the same test.
"""

from __future__ import annotations

import pytest
import trio

from support.clientapi import ConnectRefused
from support.clients import Clients

pytestmark = pytest.mark.node


async def test_echo_then_upgrade_with_default_transports(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    await sock.wait_connected()
    sock.emit("echo", "hello", 1, {"nested": [True, None]})
    assert await sock.next_event("echo") == ["hello", 1, {"nested": [True, None]}]
    assert await sock.next_event("upgrade") == ["websocket"]
    assert await sock.transport() == "websocket"


async def test_emits_before_connect_are_sent_in_order(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    for n in range(5):
        sock.emit("echo", n)
    assert [(await sock.next_event("echo"))[0] for _ in range(5)] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_single_transport(clients: Clients, echo_url: str, transport: str) -> None:
    sock = clients.connect(echo_url, transports=[transport])
    await sock.wait_connected()
    assert (await sock.call("whoami"))[0]["transport"] == transport
    assert await sock.call("ack", "a", 2) == ["a", 2]
    assert await sock.transport() == transport
    assert "upgrade" not in sock.names()


async def test_ack_with_several_args_and_binary(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    blob = bytes(range(256))
    assert await sock.call("ack", blob, {"inner": [b"\x00", 3]}, "s") == [blob, {"inner": [b"\x00", 3]}, "s"]
    assert await sock.call("ack") == []


async def test_binary_event_from_server(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url, transports=["polling"])
    sock.emit("echo", {"blob": b"\xff\x00\x10"}, b"")
    assert await sock.next_event("echo") == [{"blob": b"\xff\x00\x10"}, b""]


async def test_two_namespaces_share_one_connection(clients: Clients, echo_url: str) -> None:
    root = clients.connect(echo_url, "/", namespaces=["/other"])
    other = root.sibling("/other")
    await root.wait_connected()
    await other.wait_connected()
    (me_root,) = await root.call("whoami")
    (me_other,) = await other.call("whoami")
    assert (me_root["namespace"], me_other["namespace"]) == ("/", "/other")
    assert me_root["engine"] == me_other["engine"]
    assert me_root["sid"] != me_other["sid"]
    other.emit("echo", "from other")
    assert await other.next_event("echo") == ["from other"]
    assert root.received("echo") == []


async def test_separate_connects_are_separate_connections(clients: Clients, echo_url: str) -> None:
    a = clients.connect(echo_url, "/other")
    b = clients.connect(echo_url, "/other")
    (me_a,) = await a.call("whoami")
    (me_b,) = await b.call("whoami")
    assert me_a["engine"] != me_b["engine"]


async def test_server_to_client_ack_with_canned_reply(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    sock.reply("question", 42, {"b": b"\x01"})
    sock.emit("ask", "question", "what?")
    assert await sock.next_event("answer") == [42, {"b": b"\x01"}]
    (question,) = [e for e in sock.events if e.event == "question"]
    assert (question.args, question.ack) == (["what?"], True)


async def test_server_to_client_ack_without_reply_is_empty(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    sock.emit("ask", "question")
    assert await sock.next_event("answer") == []


async def test_plain_events_are_not_acked(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    sock.emit("echo", 1)
    await sock.next_event("echo")
    assert [e.ack for e in sock.events if e.event == "echo"] == [False]


async def test_refused_namespace_raises_with_message_and_data(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url, "/refuse")
    with pytest.raises(ConnectRefused) as refused:
        await sock.wait_connected()
    assert refused.value.message == "not allowed"
    assert refused.value.data == {"code": 7}


async def test_server_disconnect_reason(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    await sock.wait_connected()
    sock.emit("disconnect_me")
    assert await sock.next_event("disconnect") == ["server disconnect"]
    assert not sock.connected


async def test_client_disconnect(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    await sock.wait_connected()
    await sock.disconnect()
    assert sock.events[-1].event == "disconnect"
    assert sock.events[-1].args == ["client disconnect"]
    assert not sock.connected


async def test_call_times_out_when_server_never_acks(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    await sock.wait_connected()
    with pytest.raises(trio.TooSlowError):
        await sock.call("unhandled", "no ack for this", timeout=0.5)


async def test_next_event_times_out_naming_what_arrived(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    sock.emit("echo", 1)
    await sock.next_event("echo")
    with pytest.raises(trio.TooSlowError, match="echo"):
        await sock.next_event("never", timeout=0.3)


async def test_next_event_where_skips_to_a_match(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    for n in range(4):
        sock.emit("echo", n)
    assert await sock.next_event("echo", where=lambda args: args[0] >= 2) == [2]
    assert await sock.next_event("echo") == [3]


async def test_node_process_ends_with_the_block(echo_url: str) -> None:
    from support.nodeclient import open_node_clients

    async with open_node_clients() as clients:
        sock = clients.connect(echo_url)
        await sock.wait_connected()
        process = clients._process
    assert process.returncode is not None


async def test_assertion_in_the_block_surfaces_unwrapped(echo_url: str) -> None:
    from support.nodeclient import open_node_clients
    from support.pyclient import open_python_clients

    for opener in (open_node_clients, open_python_clients):
        with pytest.raises(AssertionError, match="plain"):
            async with opener() as clients:
                clients.connect(echo_url)
                raise AssertionError("plain")


async def test_many_events_arrive_in_the_order_sent(clients: Clients, echo_url: str) -> None:
    sock = clients.connect(echo_url)
    for n in range(200):
        sock.emit("echo", n, b"\x00" if n % 7 == 0 else "t")
    with trio.fail_after(20):
        await sock.next_event("echo", where=lambda args: args[0] == 199)
    assert [args[0] for args in sock.received("echo")] == list(range(200))
    assert all((args[1] == b"\x00") == (args[0] % 7 == 0) for args in sock.received("echo"))
