"""Heartbeat and upgrade deadlines, exact to the virtual microsecond
(``autojump_clock``; server and raw clients share the test's trio loop)."""

from __future__ import annotations

import pytest
import trio
import trio_websocket

from eio_client import RawHttp, Started, http
from roomactors.engineio import EngineIOConfig, EngineSocket

CONFIG = EngineIOConfig(ping_interval=25.0, ping_timeout=20.0, upgrade_timeout=3.0)


class Ended:
    """A handler that records when its session ended."""

    def __init__(self) -> None:
        self.event = trio.Event()
        self.at: float | None = None
        self.reason: str | None = None

    async def __call__(self, sock: EngineSocket) -> None:
        async for _ in sock:
            pass
        self.at = trio.current_time()
        self.reason = sock.close_reason
        self.event.set()


def opened_at(started: Started, sid: str) -> float:
    sock = started.server.lookup(sid)
    assert sock is not None
    return sock.session.opened_at


async def test_ping_at_open_plus_interval_over_polling(start_server, autojump_clock) -> None:
    started = await start_server(config=CONFIG)
    sid, _ = await started.handshake()
    opened = opened_at(started, sid)
    reply = await http(started.port, "GET", started.poll_url(sid))
    assert reply.text == "2"
    assert trio.current_time() == opened + 25.0


async def test_session_gone_at_deadline_without_pending_get(start_server, autojump_clock) -> None:
    ended = Ended()
    started = await start_server(ended, CONFIG)
    sid, _ = await started.handshake()
    opened = opened_at(started, sid)
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "2"
    await ended.event.wait()
    assert ended.at == opened + 45.0 and ended.reason == "ping timeout"
    await trio.testing.wait_all_tasks_blocked()
    assert trio.current_time() == opened + 45.0
    assert started.server.statistics().sessions == 0
    reply = await http(started.port, "GET", started.poll_url(sid))
    assert (reply.status, reply.json()["code"]) == (400, 1)


async def test_pending_get_answered_with_close_at_deadline(start_server, autojump_clock) -> None:
    started = await start_server(config=CONFIG)
    sid, _ = await started.handshake()
    opened = opened_at(started, sid)
    client = await RawHttp.connect(started.port)
    assert (await client.request("GET", started.poll_url(sid))).text == "2"
    reply = await client.request("GET", started.poll_url(sid))
    assert reply.text == "1"
    assert trio.current_time() == opened + 45.0
    assert started.server.statistics().sessions == 0


async def test_next_ping_is_interval_after_the_pong(start_server, autojump_clock) -> None:
    started = await start_server(config=CONFIG)
    sid, _ = await started.handshake()
    opened = opened_at(started, sid)
    client = await RawHttp.connect(started.port)
    assert (await client.request("GET", started.poll_url(sid))).text == "2"
    await trio.sleep(7.5)
    assert (await http(started.port, "POST", started.poll_url(sid), b"3")).body == b"ok"
    pong_at = trio.current_time()
    assert pong_at == opened + 32.5
    assert (await client.request("GET", started.poll_url(sid))).text == "2"
    assert trio.current_time() == pong_at + 25.0
    assert started.server.statistics().sessions == 1


async def test_websocket_heartbeat(start_server, open_ws, autojump_clock) -> None:
    ended = Ended()
    started = await start_server(ended, CONFIG)
    ws = await open_ws(started.ws_url())
    await ws.get_message()
    opened = trio.current_time()
    assert await ws.get_message() == "2"
    assert trio.current_time() == opened + 25.0
    await trio.sleep(1.0)
    await ws.send_message("3")
    assert await ws.get_message() == "2"
    assert trio.current_time() == opened + 51.0
    # no pong this time: gone at ping + pingTimeout, and the WebSocket is closed
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.get_message()
    assert ended.at == opened + 71.0 and ended.reason == "ping timeout"


async def test_upgrade_timeout_closes_the_probe_and_polling_goes_on(start_server, open_ws, autojump_clock) -> None:
    started = await start_server(config=EngineIOConfig(ping_interval=100.0, upgrade_timeout=3.0))
    sid, _ = await started.handshake()
    ws = await open_ws(started.ws_url(sid))
    probe_at = trio.current_time()
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.get_message()
    assert trio.current_time() == probe_at + 3.0
    sock = started.server.lookup(sid)
    assert sock is not None and sock.transport == "polling" and not sock.session.upgrading
    assert (await http(started.port, "POST", started.poll_url(sid), b"4still here")).body == b"ok"
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "4still here"


async def test_upgrade_timeout_after_probe(start_server, open_ws, autojump_clock) -> None:
    started = await start_server(config=EngineIOConfig(ping_interval=100.0, upgrade_timeout=3.0))
    sid, _ = await started.handshake()
    ws = await open_ws(started.ws_url(sid))
    await ws.send_message("2probe")
    assert await ws.get_message() == "3probe"
    # while upgrading, GETs are released with a noop
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "6"
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.get_message()
    started.server.lookup(sid).send("after")
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "4after"
