"""Half-open connections (connected, first request not sent) of one address:
a budget of their own that closes the oldest idle ones, and spares a burst of
young ones (issue 10, finding 6). Exact on the autojump clock."""

from __future__ import annotations

import trio
import trio.testing
from eio_client import Started
from support.waiting import wait_until

from roomactors.engineio import EngineIOConfig

HANDSHAKE = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def closed(stream: trio.SocketStream) -> bool:
    """True when the server closed the connection without a byte."""
    try:
        return await stream.receive_some(100) == b""
    except trio.BrokenResourceError:
        return True


async def test_a_burst_beyond_the_budget_is_spared_and_served(start_server, autojump_clock) -> None:
    started: Started = await start_server(config=EngineIOConfig(max_half_open_per_address=4))
    burst = [await trio.open_tcp_stream("127.0.0.1", started.port) for _ in range(12)]
    await wait_until(lambda: started.server.statistics().http_connections == 12)
    for stream in burst:  # all younger than the grace: none was closed
        await stream.send_all(HANDSHAKE)
    for stream in burst:
        assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 200 ")
        await stream.aclose()
    assert started.server.statistics().half_open_evicted == 0


async def test_idle_ones_beyond_the_budget_go_oldest_first_once_past_the_grace(
    start_server, autojump_clock: trio.testing.MockClock
) -> None:
    config = EngineIOConfig(max_half_open_per_address=4, half_open_grace=1.0)
    started: Started = await start_server(config=config)
    idle = []
    for _ in range(6):  # one a second: the first ones are past the grace when the last come
        idle.append(await trio.open_tcp_stream("127.0.0.1", started.port))
        await trio.sleep(1.0)
    # at the 5th, the 1st (4 s old) went; at the 6th, the 2nd
    assert await closed(idle[0]) and await closed(idle[1])
    assert started.server.statistics().half_open_evicted == 2
    # the rest are still waiting for their request, and served once it comes
    for stream in idle[2:]:
        await stream.send_all(HANDSHAKE)
        assert (await stream.receive_some(4096)).startswith(b"HTTP/1.1 200 ")
        await stream.aclose()
