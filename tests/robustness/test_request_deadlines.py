"""Finding 5 of issue 10: every request, and every abandoned polling session,
ends at the bound docs/limits.md gives it, exact on the autojump clock (the
server runs in the test's loop, the raw clients too).

A body dribbled a byte at a time used to stay open for ever (the body timeout
was per read); now the whole request, head and body, has
``EngineIOConfig.request_timeout`` seconds from its first byte, as Node's
``requestTimeout``, and is answered 408 when it is late. A polling session
whose client went away without a word is gone ``pingInterval + pingTimeout``
(45 s) after the client's last sign of life, also when the connect timeout
closed it first (it used to wait 20 s more for its close packet to be fetched).
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from robustness.rawclients import RawPolling, open_stream
from robustness.serving import running_server
from support.rawhttp import RawHttp
from support.waiting import wait_until

from roomactors.config import RoomServerConfig
from roomactors.engineio import EngineIOConfig

DEFAULTS = EngineIOConfig()
CONFIG = RoomServerConfig(port=0, shutdown_timeout=1)


async def read_all(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while True:
        try:
            chunk = await stream.receive_some(65536)
        except trio.BrokenResourceError:
            return data
        if not chunk:
            return data
        data += chunk


async def dribble(stream: trio.SocketStream, data: bytes, every: float) -> None:
    """Send ``data`` one byte every ``every`` seconds, until the server stops listening."""
    for byte in data:
        try:
            await stream.send_all(bytes([byte]))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        await trio.sleep(every)


async def test_a_body_dribbled_a_byte_a_second_is_cut_at_the_request_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    assert DEFAULTS.request_timeout == 60.0
    async with running_server(CONFIG) as running:
        client = await RawPolling.open(running.port)
        stream = await open_stream(running.port)
        body = b"4" + b"x" * 999
        head = (
            f"POST {client.url} HTTP/1.1\r\nHost: 127.0.0.1:{running.port}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        started = trio.current_time()
        await stream.send_all(head)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dribble, stream, body, 1.0)
            answer = await read_all(stream)
            cut_at = trio.current_time()
            nursery.cancel_scope.cancel()
        assert cut_at - started == pytest.approx(DEFAULTS.request_timeout, abs=1e-6)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert answer.endswith(b"the request took too long to arrive; send it again, whole")
        await stream.aclose()
        await client.aclose()


async def test_a_head_dribbled_on_a_new_connection_is_cut_at_the_first_request_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    assert DEFAULTS.first_request_timeout == 10.0
    async with running_server(CONFIG) as running:
        stream = await open_stream(running.port)
        opened = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dribble, stream, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 1.0)
            answer = await read_all(stream)
            cut_at = trio.current_time()
            nursery.cancel_scope.cancel()
        assert cut_at - opened == pytest.approx(DEFAULTS.first_request_timeout, abs=1e-6)
        assert answer.startswith(b"HTTP/1.1 408 ")
        await stream.aclose()


async def test_a_keep_alive_connection_waits_for_a_request_then_gives_it_the_request_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    assert DEFAULTS.keepalive_timeout == 120.0
    async with running_server(CONFIG) as running:
        client = await RawHttp.connect(running.port)
        assert (await client.request("GET", "/healthz")).status == 200
        answered = trio.current_time()
        await trio.sleep(DEFAULTS.keepalive_timeout - 1)  # idle, just within the bound
        async with trio.open_nursery() as nursery:
            nursery.start_soon(dribble, client.stream, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 10.0)
            answer = await read_all(client.stream)
            cut_at = trio.current_time()
            nursery.cancel_scope.cancel()
        request_began = answered + DEFAULTS.keepalive_timeout - 1
        assert cut_at - request_began == pytest.approx(DEFAULTS.request_timeout, abs=1e-6)
        assert answer.startswith(b"HTTP/1.1 408 ")
        # ... and one that sends nothing is closed, silently, after keepalive_timeout
        idle = await RawHttp.connect(running.port)
        assert (await idle.request("GET", "/healthz")).status == 200
        answered = trio.current_time()
        assert await read_all(idle.stream) == b""
        assert trio.current_time() - answered == pytest.approx(DEFAULTS.keepalive_timeout, abs=1e-6)
        for each in (client, idle):
            await each.aclose()


@pytest.mark.parametrize("joins", [False, True], ids=["never-joins", "joined-the-lobby"])
async def test_an_abandoned_polling_session_is_gone_45_s_after_its_last_request(
    autojump_clock: trio.testing.MockClock, joins: bool
) -> None:
    async with running_server(CONFIG) as running:
        client = await RawPolling.open(running.port)
        if joins:
            await client.connect_namespace("/lobby")
        last_request = trio.current_time()
        await wait_until(lambda: running.statistics().connections == 0, timeout=200, state=running.statistics)
        assert trio.current_time() - last_request == pytest.approx(
            CONFIG.ping_interval + CONFIG.ping_timeout, abs=0.01
        )
        await client.aclose()
