"""WebSocket-only sessions and the polling -> WebSocket upgrade, raw clients."""

from __future__ import annotations

import json

import pytest
import trio
import trio_websocket

from eio_client import RawHttp, http
from roomactors.engineio import EngineIOConfig, EngineSocket


async def test_websocket_only_session_echoes_text_and_binary(start_server, open_ws) -> None:
    started = await start_server(config=EngineIOConfig(max_payload=1234))
    ws = await open_ws(started.ws_url())
    opened = await ws.get_message()
    assert opened[0] == "0"
    handshake = json.loads(opened[1:])
    assert list(handshake) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert (handshake["upgrades"], handshake["pingInterval"], handshake["maxPayload"]) == ([], 25000, 1234)
    assert started.server.statistics().websocket_sessions == 1
    await ws.send_message('4"x"')
    await ws.send_message(b"\x01\x02\x03")
    assert await ws.get_message() == '4"x"'
    assert await ws.get_message() == b"\x01\x02\x03"
    await ws.aclose()


async def test_client_close_packet_over_websocket(start_server, open_ws) -> None:
    reasons: list[str | None] = []
    ended = trio.Event()

    async def handler(sock: EngineSocket) -> None:
        async for _ in sock:
            pass
        reasons.append(sock.close_reason)
        ended.set()

    started = await start_server(handler)
    ws = await open_ws(started.ws_url())
    await ws.get_message()
    await ws.send_message("1")
    await ended.wait()
    assert reasons == ["client close"]
    with pytest.raises(trio_websocket.ConnectionClosed):
        while True:
            await ws.get_message()


async def test_server_close_over_websocket(start_server, open_ws) -> None:
    async def handler(sock: EngineSocket) -> None:
        sock.send("bye")
        sock.close()

    started = await start_server(handler)
    ws = await open_ws(started.ws_url())
    await ws.get_message()
    assert await ws.get_message() == "4bye"
    assert await ws.get_message() == "1"
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.get_message()
    assert ws.closed.code == 1000


async def test_dropped_websocket_ends_the_session(start_server, open_ws) -> None:
    started = await start_server()
    ws = await open_ws(started.ws_url())
    await ws.get_message()
    await ws._stream.aclose()  # no close frame: the TCP connection just goes
    with trio.fail_after(5):
        while started.server.statistics().sessions or started.server.statistics().http_connections:
            await trio.sleep(0.01)
