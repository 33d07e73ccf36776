"""python-socketio programs reach our clients on every node through Redis.

``socketio.RedisManager(url, write_only=True).emit(...)`` from an ordinary Python
program, as python-socketio documents it for external processes, against two
nodes on one real redis-server with clients on both. The decoder is also checked
(sans-IO) against messages made by python-socketio's own manager code.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import socketio
import trio
from support.pyclient import PySocket, open_python_clients
from support.clusternodes import open_nodes
from support.redisserver import RedisServer

from roomactors.cluster.interop import CloseRoom, Disconnect, Emit, EnterRoom, LeaveRoom, MessageError, decode_message

class _Captured(socketio.PubSubManager):
    """python-socketio's own pub/sub manager, publishing into a list."""

    def __init__(self) -> None:
        super().__init__(write_only=True)
        self.published: list[str] = []

    def _publish(self, data: Any) -> None:
        self.published.append(self.json.dumps(data))

    # what a server's manager does to its own sockets; a write-only one has none
    def _handle_disconnect(self, message: Any) -> None:
        pass

    def _handle_close_room(self, message: Any) -> None:
        pass


def test_decodes_what_python_socketio_publishes() -> None:
    manager = _Captured()
    manager.emit("announcement", {"text": "hi"}, namespace="/lobby")
    manager.emit("two", ("a", 2), room="abc", skip_sid=["x", "y"])
    manager.emit("bin", {"blob": b"\x00\x01"}, namespace="/lobby")
    manager.disconnect("sid1", namespace="/lobby")
    manager.close_room("r1", namespace="/lobby")
    decoded = [decode_message(raw) for raw in manager.published]
    assert decoded[0] == Emit("announcement", ({"text": "hi"},), "/lobby", None, frozenset(), False)
    assert decoded[1] == Emit("two", ("a", 2), "/", "abc", frozenset({"x", "y"}), False)
    assert decoded[2] == Emit("bin", ({"blob": b"\x00\x01"},), "/lobby", None, frozenset(), False)
    assert decoded[3] == Disconnect("sid1", "/lobby")
    assert decoded[4] == CloseRoom("/lobby", "r1")
    enter = '{"method": "enter_room", "sid": "s", "room": "r", "namespace": "/lobby", "host_id": "h"}'
    leave = '{"method": "leave_room", "sid": "s", "room": "r", "namespace": null, "host_id": "h"}'
    assert decode_message(enter) == EnterRoom("s", "/lobby", "r")
    assert decode_message(leave) == LeaveRoom("s", "/", "r")
    assert decode_message('{"method": "callback", "host_id": "h", "sid": "s"}') is None


@pytest.mark.parametrize("raw", [b"\x80\x04pickle", b"[1]", b'{"method": "explode"}', b'{"method": "emit"}'])
def test_rejects_what_is_not_python_socketio_json(raw: bytes) -> None:
    with pytest.raises(MessageError):
        decode_message(raw)


def _sid(sock: PySocket) -> str:
    return sock._connection.client.get_sid(sock.namespace)


async def test_a_write_only_redis_manager_reaches_clients_on_every_node(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        # (two namespaces on one connection: python-socketio's client cannot take the
        # server's disconnect of its last namespace without a thread error)
        on_a = clients.connect(a.url, "/lobby", namespaces=["/"])
        on_b = clients.connect(b.url, "/lobby")
        main_ns = clients.connect(b.url, "/")
        for sock in (on_a, on_b, main_ns):
            await sock.wait_connected()
        external = socketio.RedisManager(redis_server.url, channel=f"{prefix}socketio", write_only=True)

        def emit(*args: Any, **kwargs: Any) -> None:
            external.emit(*args, **kwargs)

        await trio.to_thread.run_sync(lambda: emit("announcement", {"text": "pencils down"}, namespace="/lobby"))
        for sock in (on_a, on_b):
            assert await sock.next_event("announcement") == [{"text": "pencils down"}]
        # to one client by its sid (every sid is a room of its own), with two arguments
        await trio.to_thread.run_sync(lambda: emit("private", ("for", "you"), room=_sid(on_b), namespace="/lobby"))
        assert await on_b.next_event("private") == ["for", "you"]
        # skip_sid leaves a client out; the main namespace's client got nothing meant for /lobby
        await trio.to_thread.run_sync(lambda: emit("last", 1, namespace="/lobby", skip_sid=_sid(on_a)))
        assert await on_b.next_event("last") == [1]
        await trio.to_thread.run_sync(lambda: emit("main", "hello"))
        assert await main_ns.next_event("main") == ["hello"]
        assert on_a.received("private") == [] and on_a.received("last") == []
        assert main_ns.received("announcement") == []
        # a disconnect by sid (as a python-socketio server's manager publishes it; a
        # write-only manager cannot disconnect) disconnects that client on its node
        message = {"method": "disconnect", "sid": _sid(on_a), "namespace": "/lobby", "host_id": "elsewhere"}
        await trio.to_thread.run_sync(external._publish, message)
        with trio.fail_after(10):
            await on_a.wait_record("disconnect")
        assert on_b.connected and on_a.sibling("/").connected


async def test_the_announce_example_reaches_every_node(redis_server: RedisServer, prefix: str) -> None:
    """examples/redis_announce.py, run as an operator would, against two nodes."""
    example = Path(__file__).resolve().parents[2] / "examples" / "redis_announce.py"
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        socks = [clients.connect(a.url, "/lobby"), clients.connect(b.url, "/lobby")]
        for sock in socks:
            await sock.wait_connected()
        argv = [sys.executable, str(example), "--redis", redis_server.url, "--channel", f"{prefix}socketio",
                "Races end in 5 minutes"]
        result = await trio.run_process(argv, capture_stdout=True)
        assert b"announced" in result.stdout
        for sock in socks:
            assert await sock.next_event("announcement") == [{"text": "Races end in 5 minutes"}]
