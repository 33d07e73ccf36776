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
    await started.settled(sessions=0, connections=0)


async def test_full_upgrade_sequence(start_server, open_ws) -> None:
    started = await start_server(lambda sock: trio.sleep_forever())
    sid, _ = await started.handshake()
    sock = started.server.lookup(sid)
    poll = await RawHttp.connect(started.port)
    await poll.send_request("GET", started.poll_url(sid))
    await trio.testing.wait_all_tasks_blocked()

    ws = await open_ws(started.ws_url(sid))
    await ws.send_message("2probe")
    assert await ws.get_message() == "3probe"
    with trio.fail_after(5):  # the pending GET is released promptly, with a noop only
        assert (await poll.read_response()).text == "6"
    sock.send("buffered 1")  # sent during the upgrade: must arrive over the WebSocket first
    sock.send(b"\x01")
    assert started.server.statistics().polling_sessions == 1
    await ws.send_message("5")
    assert await ws.get_message() == "4buffered 1"
    assert await ws.get_message() == b"\x01"
    assert sock.transport == "websocket"
    assert started.server.statistics().websocket_sessions == 1

    reply = await poll.request("GET", started.poll_url(sid))
    assert (reply.status, reply.json()) == (400, {"code": 3, "message": "Bad request"})
    reply = await http(started.port, "POST", started.poll_url(sid), b"4x")
    assert (reply.status, reply.json()["code"]) == (400, 3)

    second = await open_ws(started.ws_url(sid))  # accepted, then closed
    with pytest.raises(trio_websocket.ConnectionClosed):
        await second.get_message()
    sock.send("still upgraded")
    assert await ws.get_message() == "4still upgraded"
    await ws.send_message("4from ws")
    assert await sock.receive() == "from ws"


async def test_upgrade_with_echo_and_no_pending_get(start_server, open_ws) -> None:
    started = await start_server()
    sid, _ = await started.handshake()
    ws = await open_ws(started.ws_url(sid))
    await ws.send_message("2probe")
    assert await ws.get_message() == "3probe"
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "6"
    await ws.send_message("5")
    await ws.send_message("4echo")
    assert await ws.get_message() == "4echo"


async def test_probe_on_a_websocket_session_is_closed(start_server, open_ws) -> None:
    started = await start_server()
    ws = await open_ws(started.ws_url())
    sid = json.loads((await ws.get_message())[1:])["sid"]
    probe = await open_ws(started.ws_url(sid))
    with pytest.raises(trio_websocket.ConnectionClosed):
        await probe.get_message()
    await ws.send_message("4alive")
    assert await ws.get_message() == "4alive"
