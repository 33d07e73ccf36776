"""Socket.IO protocol 4 with the real old libraries: socket.io-client 1.7 and
2.5 under Node (Engine.IO v3) against the SocketIOServer's test handlers,
on every transport: namespaces, acks both ways, binary both ways, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from support.clientapi import ConnectRefused
from support.nodeclient import LEGACY_LIBRARIES, open_node_clients

pytestmark = pytest.mark.node
LIBRARIES = pytest.mark.parametrize("library", LEGACY_LIBRARIES)
TRANSPORTS = pytest.mark.parametrize(
    "transports", [["polling", "websocket"], ["websocket"], ["polling"]], ids=["upgrade", "websocket", "polling"]
)


@LIBRARIES
@TRANSPORTS
async def test_namespaces_acks_binary_and_calls(served: Any, library: str, transports: list[str]) -> None:
    async with open_node_clients(library) as clients:
        admin = clients.connect(served.url, "/admin", transports=transports)
        await admin.wait_connected()
        assert await admin.call("echo", {"a": [1, None, "x"]}, 2) == [{"a": [1, None, "x"]}, 2]
        assert await admin.call("whoami") == ["/admin"]
        assert await admin.call("reverse", b"\x01\x02\x03") == [b"\x03\x02\x01"]
        admin.emit("push_binary")
        assert await admin.next_event("blob") == [b"\x00\xff", {"nested": [b"\x01\x02"]}]
        admin.reply("question", {"answer": 42})
        assert await admin.call("ask", 21) == [[{"answer": 42}]]
        expected = "polling" if transports == ["polling"] else "websocket"
        if await admin.transport() != expected:
            await admin.next_event("upgrade")
        assert await admin.transport() == expected
        # in "/" implicitly (no auth in protocol 4), then in /admin on request
        await served.record.wait_until(lambda: len(served.record.connects) == 2)
        assert sorted(served.record.connects) == [("/", None), ("/admin", None)]
        (socket,) = [s for s in served.record.sockets.values() if s.namespace == "/admin"]
        assert socket.legacy and socket.eio.protocol == 3


@LIBRARIES
async def test_an_invalid_namespace_is_refused_with_its_message(served: Any, library: str) -> None:
    async with open_node_clients(library) as clients:
        invalid = clients.connect(served.url, "/nope", reconnection=False)
        with pytest.raises(ConnectRefused) as info:
            await invalid.wait_connected()
        assert info.value.message == "Invalid namespace"  # 4/nope,"Invalid namespace"


@LIBRARIES
async def test_kicked_from_a_namespace(served: Any, library: str) -> None:
    async with open_node_clients(library) as clients:
        admin = clients.connect(served.url, "/admin")
        await admin.wait_connected()
        admin.emit("kick")
        await admin.wait_record("disconnect")
        assert admin.received("disconnect") == [["server disconnect"]]  # "io server disconnect", normalized
        await served.record.wait_until(lambda: ("/admin", "server namespace disconnect") in [
            (namespace, reason) for namespace, _, reason in served.record.disconnects
        ])
