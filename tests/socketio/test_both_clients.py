"""The same scenarios with both real clients through the shared harnesses
(tests/support): python-socketio and socket.io-client 4 under Node (``node``
marker; skipped when tests/js/node_modules is missing)."""

from __future__ import annotations

from typing import Any

import pytest

from support.clientapi import ConnectRefused
from support.clients import client_params, open_clients

KINDS = pytest.mark.parametrize("kind", client_params())
TRANSPORTS = pytest.mark.parametrize(
    "transports", [["polling", "websocket"], ["websocket"], ["polling"]], ids=["upgrade", "websocket", "polling"]
)


@KINDS
@TRANSPORTS
async def test_namespaces_auth_acks_binary_and_calls(served: Any, kind: str, transports: list[str]) -> None:
    async with open_clients(kind) as clients:
        main = clients.connect(served.url, "/", namespaces=["/admin"], auth={"name": "n"}, transports=transports)
        admin = main.sibling("/admin")
        await main.wait_connected()
        await admin.wait_connected()
        assert await main.call("echo", {"a": [1, None, "x"]}, 2) == [{"a": [1, None, "x"]}, 2]
        assert await admin.call("whoami") == ["/admin"]
        assert await admin.call("reverse", b"\x01\x02\x03") == [b"\x03\x02\x01"]
        admin.emit("push_binary")
        assert await admin.next_event("blob") == [b"\x00\xff", {"nested": [b"\x01\x02"]}]
        admin.reply("question", {"answer": 42})
        assert await admin.call("ask", 21) == [[{"answer": 42}]]
        expected = "polling" if transports == ["polling"] else "websocket"
        if await main.transport() != expected:
            await main.next_event("upgrade")  # Node reports the upgrade; python has done it
        assert await main.transport() == expected
        assert ("/", {"name": "n"}) in served.record.connects
        assert ("/admin", {"name": "n"}) in served.record.connects


@KINDS
async def test_refusal_and_invalid_namespace(served: Any, kind: str) -> None:
    async with open_clients(kind) as clients:
        refused = clients.connect(served.url, "/admin", auth={"token": "bad"}, reconnection=False)
        with pytest.raises(ConnectRefused) as info:
            await refused.wait_connected()
        assert info.value.message == "bad token"
        invalid = clients.connect(served.url, "/nope", reconnection=False)
        with pytest.raises(ConnectRefused) as info:
            await invalid.wait_connected()
        assert info.value.message == "Invalid namespace"
    assert served.record.connects == []


@KINDS
async def test_leaving_or_kicked_from_one_namespace_keeps_the_other(served: Any, kind: str) -> None:
    async with open_clients(kind) as clients:
        main = clients.connect(served.url, "/", namespaces=["/admin"], auth={"name": "k"})
        admin = main.sibling("/admin")
        await main.wait_connected()
        await admin.wait_connected()
        admin.emit("kick")
        assert await admin.next_event("disconnect") == ["server disconnect"]
        assert await main.call("echo", "after kick") == ["after kick"]
        await served.record.wait_until(lambda: len(served.record.disconnects) == 1)
        assert served.record.disconnects[0][0::2] == ("/admin", "server namespace disconnect")

        again = clients.connect(served.url, "/", namespaces=["/admin"], auth={"name": "l"})
        again_admin = again.sibling("/admin")
        await again_admin.wait_connected()
        await again_admin.disconnect()
        await served.record.wait_until(lambda: len(served.record.disconnects) == 2)
        assert served.record.disconnects[1][0::2] == ("/admin", "client namespace disconnect")
        assert await again.call("echo", "still") == ["still"]
