"""Malformed Socket.IO packets over a raw WebSocket: each closes only the
connection that sent it, while another connected client keeps working; and the
connect timeout, on the autojump clock with a raw client in the test's loop."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import trio
import trio.testing
from support.tasks import task_names

from roomactors.engineio import EngineIOConfig
from roomactors.socketio import SocketIOConfig

MALFORMED: list[list[str | bytes]] = [
    ["9"],                                                   # unknown packet type
    ['2{"a":1}'],                                            # EVENT payload not an array
    ["2[]"],                                                 # EVENT payload empty
    ["2[1]"],                                                # event name not a string
    ['2["disconnect"]'],                                     # reserved event name
    ['3["x"]'],                                              # ACK without an id
    ['377["x"]'],                                            # ACK for a call never made
    ['299999999999999999["x"]'],                             # ack id out of range
    ['51-["ev",{"_placeholder":true,"num":0}]', '2["x"]'],   # text while attachments pending
    ['52-["ev",{"_placeholder":true,"num":0}]'],             # attachment count mismatch
    ['51-["ev",{"_placeholder":true,"num":3}]'],             # placeholder out of range
    [b"\x01\x02"],                                           # binary with no packet
    ["0"],                                                   # CONNECT twice
    ['2/admin,["never joined"]'],                            # namespace never joined
    ['0admin,{}'],                                           # namespace without "/"
    ['0/admin,["auth"]'],                                    # CONNECT payload not an object
    ['4{"message":"x"}'],                                    # CONNECT_ERROR from a client
    ['2["echo"'],                                            # truncated JSON
]


@pytest.mark.parametrize("packets", MALFORMED, ids=[repr(p)[:40] for p in MALFORMED])
async def test_malformed_packet_closes_only_that_connection(served: Any, open_raw: Any, packets: list[str | bytes]) -> None:
    async with open_raw(served.port) as good, open_raw(served.port) as bad:
        await good.join()
        await bad.join()
        for packet in packets:
            await bad.send(packet)
        frames = await bad.closed_by_server()
        assert frames[-1:] == ["1"]  # the Engine.IO close packet, then the close
        await good.send('21["echo","still here"]')
        assert await good.receive() == '31["still here"]'


async def test_malformed_packet_closes_a_polling_session_too(served: Any) -> None:
    import socketio

    def run() -> Any:
        client = socketio.Client(reconnection=False, request_timeout=5)
        closed: list[Any] = []
        disconnected = threading.Event()  # the client's own report, set in its thread

        def on_disconnect(*reason: Any) -> None:
            closed.append(reason)
            disconnected.set()

        client.on("disconnect", on_disconnect)
        client.connect(served.url, transports=["polling"], wait_timeout=5)
        try:
            client._send_packet(client.packet_class(socketio.packet.EVENT, data=[]))
            disconnected.wait(timeout=5)
            return list(closed)  # a copy: disconnect() below reports our own close into `closed`
        finally:
            client.disconnect()

    closed = await trio.to_thread.run_sync(run)
    assert closed == [("server disconnect",)], f"the server did not close the session: {closed}"


async def test_connect_timeout_closes_at_exactly_the_deadline(
    autojump_clock: trio.abc.Clock, start_served: Any, open_raw: Any
) -> None:
    # Default heartbeat: the first ping (25 s) comes after the timeout (10 s).
    served = await start_served(SocketIOConfig(connect_timeout=10.0), EngineIOConfig())
    async with open_raw(served.port) as idle, open_raw(served.port) as joined:
        opened = trio.current_time()
        await joined.join()
        frames = await idle.closed_by_server(timeout=60)
        assert trio.current_time() - opened == pytest.approx(10.0, abs=0.01)
        assert frames == ["1"]
        await joined.send('21["echo",1]')
        assert await joined.receive() == "31[1]"


async def test_joined_idle_connections_hold_three_tasks_each(served: Any, open_raw: Any) -> None:
    """No reader or timer task of the Socket.IO layer's own: the transport
    hands it messages and the heartbeat applies its connect timeout (the
    memory of 10,000 idle connections depends on it, issue 4)."""
    before = task_names()
    async with open_raw(served.port) as first, open_raw(served.port) as second:
        for client in (first, second):
            await client.join()
            await client.send('21["echo","hi"]')
            assert await client.receive() == '31["hi"]'
        await trio.testing.wait_all_tasks_blocked()
        new = task_names()
        for name in before:
            new.remove(name)
        server_side = [name for name in new if name.startswith(("roomactors.", "trio._highlevel_serve", "engineio session"))]
        # per connection: the TCP connection's, the session runner's, the handler's (the dispatcher)
        assert len(server_side) == 2 * 3, server_side
