"""Engine.IO v3 (``EIO=3``) beside v4 on one server: raw HTTP and WebSocket
clients on 127.0.0.1, the wire as engine.io-client 1.x/3.x speaks it. The
heartbeat tests run on ``autojump_clock`` (server and clients share the loop)."""

from __future__ import annotations

import json

import pytest
import trio
from eio_client import RawHttp, Started, http

from roomactors.engineio import EngineIOConfig, EngineSocket

CONFIG = EngineIOConfig(ping_interval=25.0, ping_timeout=20.0, upgrade_timeout=3.0)


def v3_url(query: str, *, b64: bool = True) -> str:
    return f"/socket.io/?EIO=3&{query}" + ("&b64=1" if b64 else "")


def split_payload(text: str) -> list[str]:
    """A v3 text payload's packets (ASCII test payloads: characters are code units)."""
    packets = []
    while text:
        length, _, rest = text.partition(":")
        packets.append(rest[: int(length)])
        text = rest[int(length):]
    return packets


async def v3_handshake(started: Started, *, b64: bool = True) -> tuple[str, dict[str, object]]:
    reply = await http(started.port, "GET", v3_url("transport=polling&t=Lx1", b64=b64))
    assert reply.status == 200, reply
    if b64:
        assert reply.headers["content-type"] == "text/plain; charset=UTF-8"
        (packet,) = split_payload(reply.text)
    else:
        assert reply.headers["content-type"] == "application/octet-stream"
        assert reply.body[0] == 0
        packet = reply.body[reply.body.index(b"\xff") + 1:].decode()
    assert packet[0] == "0"
    handshake = json.loads(packet[1:])
    return str(handshake["sid"]), handshake


def poll(sid: str) -> str:
    return v3_url(f"transport=polling&sid={sid}", b64=False)


class Ended:
    def __init__(self) -> None:
        self.event = trio.Event()
        self.at: float | None = None
        self.reason: str | None = None

    async def __call__(self, sock: EngineSocket) -> None:
        async for message in sock:
            sock.send(message)
        self.at = trio.current_time()
        self.reason = sock.close_reason
        self.event.set()


async def test_v3_and_v4_sessions_side_by_side(start_server) -> None:
    started = await start_server()
    sid3, handshake3 = await v3_handshake(started)
    sid4, handshake4 = await started.handshake()
    assert handshake3 == {"sid": sid3, "upgrades": ["websocket"], "pingInterval": 25000, "pingTimeout": 20000}
    assert "maxPayload" in handshake4
    assert started.server.lookup(sid3).protocol == 3  # type: ignore[union-attr]
    assert started.server.lookup(sid4).protocol == 4  # type: ignore[union-attr]
    assert (await http(started.port, "POST", poll(sid3), "9:4héllo 😀2:4!".encode())).body == b"ok"
    reply = await http(started.port, "GET", poll(sid3))
    assert reply.text == "9:4héllo 😀2:4!"  # lengths in UTF-16 code units, as JavaScript counts
    # a session keeps its protocol: v4 requests for a v3 session are refused
    refused = await http(started.port, "GET", started.poll_url(sid3))
    assert (refused.status, refused.json()["code"]) == (400, 3)


async def test_xhr2_clients_get_binary_payloads(start_server) -> None:
    started = await start_server()
    sid, _ = await v3_handshake(started, b64=False)
    body = b"\x00\x07\xff4h\xc3\xa9llo" + b"\x01\x04\xff\x04\x01\x02\x03"
    assert (await http(started.port, "POST", poll(sid), body, headers=[("Content-Type", "application/octet-stream")])).body == b"ok"
    reply = await http(started.port, "GET", poll(sid))
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.body == body


async def test_b64_clients_get_binary_as_b4_base64(start_server) -> None:
    started = await start_server()
    sid, _ = await v3_handshake(started)
    assert (await http(started.port, "POST", poll(sid), b"6:b4AQID")).body == b"ok"
    assert (await http(started.port, "GET", poll(sid))).text == "6:b4AQID"


async def test_eio3_can_be_refused_with_error_5(start_server) -> None:
    started = await start_server(config=EngineIOConfig(eio3=False))
    reply = await http(started.port, "GET", v3_url("transport=polling"))
    assert (reply.status, reply.json()) == (400, {"code": 5, "message": "Unsupported protocol version"})
    assert (await http(started.port, "GET", started.url("transport=polling"))).status == 200


async def test_jsonp_polling_is_refused_saying_what_to_use(start_server) -> None:
    started = await start_server()
    reply = await http(started.port, "GET", v3_url("transport=polling&j=0"))
    assert reply.status == 400
    assert reply.json() == {
        "code": 3,
        "message": "JSONP polling is not supported; use XHR polling or WebSocket (the default transports)",
    }
    assert started.server.statistics().sessions_opened == 0


async def test_bad_v3_payload_closes_the_session(start_server) -> None:
    started = await start_server()
    sid, _ = await v3_handshake(started)
    reply = await http(started.port, "POST", poll(sid), b"9:4short")
    assert (reply.status, reply.json()["code"]) == (400, 3)
    await started.settled(sessions=0)


async def test_v3_post_over_max_payload_is_413_and_closes(start_server) -> None:
    started = await start_server(config=EngineIOConfig(max_payload=100))
    sid, _ = await v3_handshake(started)
    assert (await http(started.port, "POST", poll(sid), b"97:4" + b"x" * 96)).body  # 100 bytes == b"ok"
    reply = await http(started.port, "POST", poll(sid), b"98:4" + b"x" * 97)  # 101 bytes
    assert reply.status == 413
    sock = started.server.lookup(sid)
    assert sock is None or sock.close_reason == "payload too large"


# -- heartbeat (autojump_clock) ---------------------------------------------------


async def test_the_client_pings_and_the_server_answers(start_server, autojump_clock) -> None:
    ended = Ended()
    started = await start_server(ended, CONFIG)
    sid, _ = await v3_handshake(started)
    opened = started.server.lookup(sid).session.opened_at  # type: ignore[union-attr]
    # the server never pings: a GET stays pending until the client's deadline
    waiting = await RawHttp.connect(started.port)
    await waiting.send_request("GET", poll(sid))
    await trio.sleep(25.0)
    assert (await http(started.port, "POST", poll(sid), b"1:2")).body == b"ok"
    assert (await waiting.read_response()).text == "1:3"
    assert trio.current_time() == opened + 25.0
    for _ in range(3):  # pinging every 25 s keeps it alive well past 45 s
        await trio.sleep(25.0)
        assert (await http(started.port, "POST", poll(sid), b"1:2")).body == b"ok"
        assert (await http(started.port, "GET", poll(sid))).text == "1:3"
    assert not ended.event.is_set()
    last_ping = trio.current_time()
    await ended.event.wait()
    assert ended.reason == "ping timeout"
    assert ended.at == last_ping + 45.0  # ping_interval + ping_timeout after the last ping
    await waiting.aclose()


async def test_a_v3_client_that_never_pings_is_gone_at_its_deadline(start_server, autojump_clock) -> None:
    ended = Ended()
    started = await start_server(ended, CONFIG)
    sid, _ = await v3_handshake(started)
    opened = started.server.lookup(sid).session.opened_at  # type: ignore[union-attr]
    await trio.sleep(30.0)
    assert (await http(started.port, "POST", poll(sid), b"2:4x")).body == b"ok"  # messages don't count
    await ended.event.wait()
    assert (ended.at, ended.reason) == (opened + 45.0, "ping timeout")
    await trio.testing.wait_all_tasks_blocked()
    reply = await http(started.port, "GET", poll(sid))
    assert (reply.status, reply.json()["code"]) == (400, 1)


async def test_websocket_only_v3_client_pings_over_websocket(start_server, open_ws, autojump_clock) -> None:
    ended = Ended()
    started = await start_server(ended, CONFIG)
    ws = await open_ws(f"ws://127.0.0.1:{started.port}" + v3_url("transport=websocket", b64=False))
    handshake = json.loads((await ws.get_message())[1:])
    assert handshake["upgrades"] == [] and handshake["pingTimeout"] == 20000
    await trio.sleep(25.0)
    await ws.send_message("2")
    assert await ws.get_message() == "3"
    await ws.send_message(b"\x04\x01\x02")  # binary: type byte first
    assert await ws.get_message() == b"\x04\x01\x02"
    pinged = trio.current_time()
    await ended.event.wait()
    assert (ended.at, ended.reason) == (pinged + 45.0, "ping timeout")


# -- the upgrade ----------------------------------------------------------------------


async def test_upgrade_as_v3_does_it(start_server, open_ws) -> None:
    started = await start_server()
    sid, _ = await v3_handshake(started)
    pending = await RawHttp.connect(started.port)
    await pending.send_request("GET", poll(sid))
    await trio.testing.wait_all_tasks_blocked()
    ws = await open_ws(f"ws://127.0.0.1:{started.port}" + v3_url(f"transport=websocket&sid={sid}", b64=False))
    await ws.send_message("2probe")
    assert await ws.get_message() == "3probe"
    with trio.fail_after(5):
        assert (await pending.read_response()).text == "1:6"  # the pending poll released with a noop
    await ws.send_message("5")
    await ws.send_message("4upgraded")
    assert await ws.get_message() == "4upgraded"
    await ws.send_message(b"\x04\xff")
    assert await ws.get_message() == b"\x04\xff"
    assert started.server.lookup(sid).transport == "websocket"  # type: ignore[union-attr]
    await pending.aclose()


@pytest.mark.parametrize("garbage", [b"\x02x", b"", "b2AQID", "9"])
async def test_bad_v3_websocket_packets_close_only_that_session(start_server, open_ws, garbage: str | bytes) -> None:
    started = await start_server()
    other, _ = await v3_handshake(started)
    ws = await open_ws(f"ws://127.0.0.1:{started.port}" + v3_url("transport=websocket", b64=False))
    await ws.get_message()
    await ws.send_message(garbage)
    await started.settled(sessions=1)
    assert started.server.lookup(other) is not None
