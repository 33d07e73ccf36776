"""End to end with python-socketio's real clients on 127.0.0.1, over each
transport setting: default (polling, then the upgrade), WebSocket only,
polling only.

The sync clients run in worker threads (``trio.to_thread``); every wait in
them has a timeout, so a broken server fails the test instead of hanging it.
"""

from __future__ import annotations

import queue
from typing import Any

import pytest
import socketio
import trio

TRANSPORTS = pytest.mark.parametrize(
    "transports", [None, ["websocket"], ["polling"]], ids=["upgrade", "websocket", "polling"]
)
WAIT = 5


def new_client() -> socketio.Client:
    return socketio.Client(reconnection=False, request_timeout=WAIT)


def disconnect(client: socketio.Client) -> None:
    """Disconnect once the client's writer has sent everything queued.

    python-engineio's writer stops as soon as disconnect() changes the state,
    even with packets (the close among them) still queued; waiting for its
    queue first lets the server see a clean close in almost every run.
    """
    if client.eio.state == "connected":
        client.eio.queue.join()
    client.disconnect()


@TRANSPORTS
async def test_two_namespaces_auth_events_and_acks(served: Any, transports: list[str] | None) -> None:
    def run() -> dict[str, Any]:
        client = new_client()
        try:
            client.connect(served.url, namespaces=["/", "/admin"], auth={"token": "123", "name": "a"},
                           transports=transports, wait_timeout=WAIT)
            return {
                "echo": client.call("echo", {"x": [1, "two"]}, timeout=WAIT),
                "echo_admin": client.call("echo", "hi", namespace="/admin", timeout=WAIT),
                "whoami": client.call("whoami", namespace="/admin", timeout=WAIT),
                "sid": client.get_sid("/admin"),
                "transport": client.transport(),
            }
        finally:
            disconnect(client)

    result = await trio.to_thread.run_sync(run)
    assert result["echo"] == {"x": [1, "two"]}
    assert result["echo_admin"] == "hi"
    assert result["whoami"] == "/admin"
    assert result["transport"] == ("polling" if transports == ["polling"] else "websocket")
    assert sorted(served.record.connects) == [("/", {"token": "123", "name": "a"}), ("/admin", {"token": "123", "name": "a"})]
    assert result["sid"] == served.record.sockets["a/admin"].sid
    assert result["sid"] != served.record.sockets["a/"].eio.sid  # namespace sids are not the engine's
    await served.record.wait_until(lambda: len(served.record.disconnects) == 2)
    assert {reason for _, _, reason in served.record.disconnects} <= {
        "client namespace disconnect", "transport close", "ping timeout"}


@TRANSPORTS
async def test_binary_both_directions(served: Any, transports: list[str] | None) -> None:
    def run() -> tuple[Any, Any]:
        received: queue.Queue[Any] = queue.Queue()
        client = new_client()
        client.on("blob", lambda *args: received.put(args))
        try:
            client.connect(served.url, transports=transports, wait_timeout=WAIT)
            reversed_ = client.call("reverse", bytes(range(256)), timeout=WAIT)
            client.emit("push_binary")
            return reversed_, received.get(timeout=WAIT)
        finally:
            disconnect(client)

    reversed_, blob = await trio.to_thread.run_sync(run)
    assert reversed_ == bytes(range(256))[::-1]
    assert blob == (b"\x00\xff", {"nested": [b"\x01\x02"]})


@TRANSPORTS
async def test_server_calls_the_client_and_gets_its_ack(served: Any, transports: list[str] | None) -> None:
    def run() -> Any:
        client = new_client()
        client.on("question", lambda q: {"answer": q * 2}, namespace="/admin")
        try:
            client.connect(served.url, namespaces=["/admin"], transports=transports, wait_timeout=WAIT)
            return client.call("ask", 21, namespace="/admin", timeout=WAIT)
        finally:
            disconnect(client)

    assert await trio.to_thread.run_sync(run) == [{"answer": 42}]


@TRANSPORTS
async def test_refusal_and_invalid_namespace(served: Any, transports: list[str] | None) -> None:
    def attempt(namespace: str, auth: Any) -> Any:
        errors: list[Any] = []
        client = new_client()
        client.on("connect_error", lambda *data: errors.append(data), namespace=namespace)
        try:
            client.connect(served.url, namespaces=[namespace], auth=auth, transports=transports, wait_timeout=WAIT)
        except socketio.exceptions.ConnectionError:
            return errors
        finally:
            disconnect(client)
        return "connected"

    refused = await trio.to_thread.run_sync(attempt, "/admin", {"token": "bad"})
    invalid = await trio.to_thread.run_sync(attempt, "/nope", None)
    assert refused == [({"message": "bad token", "data": {"hint": "ask again"}},)]
    assert invalid == [({"message": "Invalid namespace"},)]
    assert served.record.connects == []


@TRANSPORTS
async def test_client_leaving_one_namespace_keeps_the_other(served: Any, transports: list[str] | None) -> None:
    def run() -> Any:
        client = new_client()
        try:
            client.connect(served.url, namespaces=["/", "/admin"], transports=transports, wait_timeout=WAIT)
            # python-socketio has no per-namespace disconnect: send the packet itself.
            client._send_packet(client.packet_class(socketio.packet.DISCONNECT, namespace="/admin"))
            del client.namespaces["/admin"]
            trio.from_thread.run(served.record.wait_until, lambda: len(served.record.disconnects) == 1)
            return client.call("echo", "alive", timeout=WAIT)
        finally:
            disconnect(client)

    assert await trio.to_thread.run_sync(run) == "alive"
    assert served.record.disconnects[0][0::2] == ("/admin", "client namespace disconnect")


@TRANSPORTS
async def test_server_side_disconnect(served: Any, transports: list[str] | None) -> None:
    def run() -> Any:
        events: queue.Queue[Any] = queue.Queue()
        client = new_client()
        client.on("disconnect", lambda *reason: events.put(("disconnect", "/admin", reason)), namespace="/admin")
        try:
            client.connect(served.url, namespaces=["/", "/admin"], transports=transports, wait_timeout=WAIT)
            client.emit("kick", namespace="/admin")
            seen = events.get(timeout=WAIT)
            return seen, client.call("echo", "still here", timeout=WAIT)
        finally:
            disconnect(client)

    (event, namespace, reason), echo = await trio.to_thread.run_sync(run)
    assert (event, namespace) == ("disconnect", "/admin")
    assert reason == (socketio.Client.reason.SERVER_DISCONNECT,)
    assert echo == "still here"
    await served.record.wait_until(lambda: len(served.record.disconnects) >= 1)
    assert served.record.disconnects[0][0::2] == ("/admin", "server namespace disconnect")


async def test_simple_client(served: Any) -> None:
    def run() -> Any:
        with socketio.SimpleClient() as client:
            client.connect(served.url, namespace="/admin", auth={"name": "s"}, wait_timeout=WAIT)
            client.emit("push_binary")
            event = client.receive(timeout=WAIT)
            answer = client.call("echo", (1, 2), timeout=WAIT)
            return event, answer

    event, answer = await trio.to_thread.run_sync(run)
    assert event == ["blob", b"\x00\xff", {"nested": [b"\x01\x02"]}]
    assert answer == (1, 2)
