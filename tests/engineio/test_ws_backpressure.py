"""A real socket whose client reads late: the direct writes fill the kernel
buffer, a writer task takes over mid-frame, and every frame still arrives
whole and in order."""

from __future__ import annotations

import trio
import trio.testing
from support.tasks import task_names
from wsproto.connection import Connection, ConnectionType
from wsproto.events import TextMessage

from roomactors.engineio import EngineIOConfig, EngineSocket, SharedMessage

HANDSHAKE = (
    "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
COUNT = 200
SIZE = 40_000  # 8 MB in all: far more than loopback's socket buffers


async def test_late_reader_gets_every_frame_whole_and_in_order(start_server) -> None:
    queued = trio.Event()

    async def handler(sock: EngineSocket) -> None:
        for i in range(COUNT):
            sock.send(SharedMessage(f"{i:06d}" + "x" * SIZE))
            if i % 10 == 0:
                await trio.sleep(0)  # let a writer task run between bursts
        queued.set()
        async for _ in sock:
            pass

    config = EngineIOConfig(outbox_max_messages=COUNT + 10, outbox_max_bytes=20_000_000)
    started = await start_server(handler, config)
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stream.send_all(HANDSHAKE.format(port=started.port).encode())
    with trio.fail_after(10):
        await queued.wait()
    sock = started.sockets[0]
    assert sock.session.outbox, "the client's buffer should be full by now"

    client = Connection(ConnectionType.CLIENT)
    head = b""
    while b"\r\n\r\n" not in head:
        head += await stream.receive_some()
    response, rest = head.split(b"\r\n\r\n", 1)
    assert response.startswith(b"HTTP/1.1 101")
    client.receive_data(rest)
    messages: list[str] = []
    part = ""
    with trio.fail_after(20):
        while len(messages) < COUNT + 1:
            for event in client.events():
                assert isinstance(event, TextMessage)
                part += event.data
                if event.message_finished:
                    messages.append(part)
                    part = ""
            if len(messages) < COUNT + 1:
                client.receive_data(await stream.receive_some())
    assert messages[0].startswith("0{")
    assert [m[1:7] for m in messages[1:]] == [f"{i:06d}" for i in range(COUNT)]
    assert all(m == "4" + m[1:7] + "x" * SIZE for m in messages[1:])
    assert not sock.closed and not sock.session.outbox
    await stream.aclose()


async def test_idle_websocket_sessions_run_no_transport_task_of_their_own(start_server, open_ws) -> None:
    """The connection's own task reads; writes need no task while clients
    keep up (the memory of 10,000 idle connections depends on it)."""
    started = await start_server()
    before = task_names()
    clients = [await open_ws(started.ws_url()) for _ in range(3)]
    for ws in clients:
        assert (await ws.get_message()).startswith("0{")
        await ws.send_message("4hi")
        assert await ws.get_message() == "4hi"  # written straight from the handler's send()
    await trio.testing.wait_all_tasks_blocked()
    new = task_names()
    for name in before:
        new.remove(name)
    server_side = [name for name in new if name.startswith("roomactors.")]
    assert not [name for name in server_side if "websocket" in name], server_side
    assert len(server_side) <= 3 * 3, server_side  # connection, session runner (the heartbeat), handler
    for ws in clients:
        await ws.aclose()
