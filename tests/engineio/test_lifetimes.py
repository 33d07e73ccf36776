"""Slow clients, dropped connections and leaks: nothing stays behind."""

from __future__ import annotations

import trio
import trio.testing
from support.waiting import wait_until

from eio_client import RawHttp, http
from roomactors.engineio import EngineIOConfig, EngineSocket, SharedMessage

WS_HANDSHAKE = (
    "GET /socket.io/?EIO=4&transport=websocket&flood=1 HTTP/1.1\r\n"
    "Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


async def test_client_that_stops_reading_is_disconnected_by_overflow(
    start_server, open_ws, autojump_clock: trio.testing.MockClock
) -> None:
    flooded = trio.Event()
    sent = 0

    async def handler(sock: EngineSocket) -> None:
        nonlocal sent
        if "flood" not in sock.query:
            async for message in sock:
                sock.send(message)
            return
        chunk = SharedMessage("x" * 32_768)
        with trio.move_on_after(20):
            while not sock.closed and sent < 5_000:
                sock.send(chunk)
                sent += 1
                await trio.sleep(0.001)  # the flood's pace (trio time: autojump_clock)
        flooded.set()

    config = EngineIOConfig(outbox_max_messages=64, outbox_max_bytes=1_000_000)
    started = await start_server(handler, config)
    stuck = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stuck.send_all(WS_HANDSHAKE.format(port=started.port).encode())

    healthy = await open_ws(started.ws_url())
    await healthy.get_message()
    answered = 0
    while not flooded.is_set():  # the server answers another client while it floods the stuck one
        text = f"4ping {sent}"
        await healthy.send_message(text)
        with trio.fail_after(2):
            assert await healthy.get_message() == text
        answered += 1
        mark = sent + 8  # ping again once the flood went on by 8 chunks (or ended)
        await wait_until(lambda: flooded.is_set() or sent >= mark, timeout=20)  # noqa: B023 (awaited in this iteration)
    stats = started.server.statistics()
    assert sent < 5_000
    assert answered >= 2, f"{answered} pings answered while {sent} chunks flooded the stuck client"
    assert stats.outbox_overflows == 1
    assert stats.sessions == 1 and stats.websocket_sessions == 1
    flood_socket = next(s for s in started.sockets if "flood" in s.query)
    assert flood_socket.close_reason == "outbox overflow"
    await started.settled(sessions=1, connections=1)
    await healthy.send_message("4after")
    assert await healthy.get_message() == "4after"
    await stuck.aclose()


async def test_dropped_pending_get_ends_the_session(start_server) -> None:
    started = await start_server()
    sid, _ = await started.handshake()
    client = await RawHttp.connect(started.port)
    await client.send_request("GET", started.poll_url(sid))
    await trio.testing.wait_all_tasks_blocked()
    assert started.server.statistics().http_connections == 1
    await client.aclose()
    await started.settled(sessions=0, connections=0)


async def test_dropped_probe_leaves_the_polling_session_alone(start_server) -> None:
    started = await start_server()
    sid, _ = await started.handshake()
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stream.send_all(WS_HANDSHAKE.replace("flood=1", f"sid={sid}").format(port=started.port).encode())
    response = await stream.receive_some(4096)
    assert response.startswith(b"HTTP/1.1 101")
    await stream.aclose()
    await started.settled(sessions=1, connections=0)
    sock = started.server.lookup(sid)
    assert sock is not None and sock.transport == "polling" and not sock.session.upgrading
    assert (await http(started.port, "POST", started.poll_url(sid), b"4x")).body == b"ok"


async def test_dropped_mid_request_head(start_server) -> None:
    started = await start_server()
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stream.send_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n")
    await trio.testing.wait_all_tasks_blocked()
    await stream.aclose()
    await started.settled(sessions=0, connections=0)


async def test_dropped_websocket_mid_handshake(start_server) -> None:
    started = await start_server()
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stream.send_all(WS_HANDSHAKE.format(port=started.port).encode()[:-20])
    await trio.testing.wait_all_tasks_blocked()
    await stream.aclose()
    await started.settled(sessions=0, connections=0)


async def test_handler_return_closes_the_session(start_server) -> None:
    async def quick(sock: EngineSocket) -> None:
        sock.send("only")

    started = await start_server(quick)
    sid, _ = await started.handshake()
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "4only\x1e1"
    await started.settled(sessions=0, connections=0)


async def test_handler_error_is_contained(start_server) -> None:
    async def broken(sock: EngineSocket) -> None:
        raise RuntimeError("boom")

    started = await start_server(broken)
    sid, _ = await started.handshake()
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "1"
    other, _ = await started.handshake()
    assert started.server.lookup(other) is not None


async def test_handler_nursery_hosts_the_sessions(nursery) -> None:
    from roomactors.engineio import EngineIOServer

    inside = trio.Event()
    runner_nurseries: list[trio.Nursery] = []

    async def handler(sock: EngineSocket) -> None:
        runner = trio.lowlevel.current_task().parent_nursery.parent_task  # the session's runner task
        runner_nurseries.append(runner.parent_nursery)
        inside.set()
        await sock.receive()

    async with trio.open_nursery() as handlers:
        server = EngineIOServer(handler)
        addresses = await nursery.start(
            lambda task_status: server.serve("127.0.0.1", 0, handler_nursery=handlers, task_status=task_status)
        )
        reply = await http(addresses[0][1], "GET", "/socket.io/?EIO=4&transport=polling")
        assert reply.status == 200
        await inside.wait()
        assert runner_nurseries == [handlers]
        handlers.cancel_scope.cancel()


async def test_server_close_of_a_stuck_websocket_gives_up_after_the_close_timeout(start_server, autojump_clock) -> None:
    from roomactors.engineio.websocket import CLOSE_TIMEOUT

    config = EngineIOConfig(ping_interval=1000.0, outbox_max_messages=100_000, outbox_max_bytes=10**9)
    started = await start_server(lambda sock: trio.sleep_forever(), config)
    stuck = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stuck.send_all(WS_HANDSHAKE.format(port=started.port).encode())
    await trio.testing.wait_all_tasks_blocked()
    (sock,) = started.sockets
    chunk = SharedMessage("y" * 65_536)
    for _ in range(2_000):  # until the kernel buffers are full and the writer blocks
        sock.send(chunk)
        await trio.testing.wait_all_tasks_blocked()
        if sock.session.outbox:
            break
    assert sock.session.outbox, "the writer never blocked"
    closed_at = trio.current_time()
    sock.close()
    await started.settled(sessions=0, timeout=CLOSE_TIMEOUT + 1)
    assert trio.current_time() - closed_at == CLOSE_TIMEOUT  # exact: the wait moves no clock
    await stuck.aclose()
