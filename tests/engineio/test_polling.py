"""Long-polling over raw HTTP/1.1 (an h11 client) on 127.0.0.1."""

from __future__ import annotations

import json

import trio

from roomactors.engineio import EngineIOConfig, EngineSocket


async def test_handshake_over_polling(start_server) -> None:
    started = await start_server(config=EngineIOConfig(ping_interval=1.5, ping_timeout=2.25, max_payload=5000))
    reply = await http_get(started, started.url("transport=polling"))
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; charset=UTF-8"
    assert reply.text.startswith("0{")
    handshake = json.loads(reply.text[1:])
    assert list(handshake) == ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]
    assert handshake["upgrades"] == ["websocket"]
    assert (handshake["pingInterval"], handshake["pingTimeout"], handshake["maxPayload"]) == (1500, 2250, 5000)
    assert started.server.statistics().polling_sessions == 1


async def test_post_and_get_echo_text_and_binary(start_server) -> None:
    started = await start_server()
    sid, _ = await started.handshake()
    client = await raw(started)
    reply = await client.request("POST", started.poll_url(sid), b'4hello\x1ebAQID\x1e4"x"')
    assert (reply.status, reply.body, reply.headers["content-type"]) == (200, b"ok", "text/html")
    received: list[str] = []
    while len(received) < 3:
        reply = await client.request("GET", started.poll_url(sid))
        assert reply.status == 200
        received += reply.text.split("\x1e")
    assert received == ["4hello", "bAQID", '4"x"']
    await client.aclose()


async def test_many_packets_in_one_post(start_server) -> None:
    seen: list[str | bytes] = []
    done = trio.Event()

    async def collect(sock: EngineSocket) -> None:
        async for message in sock:
            seen.append(message)
            if len(seen) == 100:
                done.set()

    started = await start_server(collect)
    sid, _ = await started.handshake()
    body = "\x1e".join(f"4m{i}" for i in range(100)).encode()
    reply = await http_post(started, started.poll_url(sid), body)
    assert (reply.status, reply.body) == (200, b"ok")
    await done.wait()
    assert seen == [f"m{i}" for i in range(100)]


async def test_pending_get_is_answered_when_the_server_sends(start_server) -> None:
    started = await start_server(lambda sock: trio.sleep_forever())
    sid, _ = await started.handshake()
    client = await raw(started)
    await client.send_request("GET", started.poll_url(sid))
    await trio.testing.wait_all_tasks_blocked()
    started.sockets[0].send("late")
    started.sockets[0].send(b"\x01\x02\x03")
    reply = await client.read_response()
    assert reply.text == "4late\x1ebAQID"


async def test_server_close_sends_close_packet(start_server) -> None:
    async def greet_and_close(sock: EngineSocket) -> None:
        sock.send("bye")
        sock.close()

    started = await start_server(greet_and_close)
    sid, _ = await started.handshake()
    reply = await http_get(started, started.poll_url(sid))
    assert reply.text == "4bye\x1e1"
    await started.settled(sessions=0)
    reply = await http_get(started, started.poll_url(sid))
    assert (reply.status, reply.json()) == (400, {"code": 1, "message": "Session ID unknown"})


async def test_client_close_ends_the_session(start_server) -> None:
    ended = trio.Event()
    reasons: list[str] = []

    async def handler(sock: EngineSocket) -> None:
        async for _ in sock:
            pass
        reasons.append(sock.close_reason or "")
        ended.set()

    started = await start_server(handler)
    sid, _ = await started.handshake()
    assert (await http_post(started, started.poll_url(sid), b"1")).body == b"ok"
    await ended.wait()
    assert reasons == ["client close"]
    assert started.server.statistics().sessions == 0


async def test_a_close_packet_posted_during_a_pending_get_answers_it_with_a_noop(start_server) -> None:
    """As the reference servers do ("forcefully closes the session" of the
    Engine.IO protocol suite): the client closed the session itself, so its
    pending GET is released with a noop (``6``), not told ``1``; the session
    is gone for the next request."""
    started = await start_server(lambda sock: trio.sleep_forever())
    sid, _ = await started.handshake()
    getter = await raw(started)
    await getter.send_request("GET", started.poll_url(sid))
    await wait_until(lambda: started.sockets and started.sockets[0].get_pending)
    assert (await http_post(started, started.poll_url(sid), b"1")).body == b"ok"
    reply = await getter.read_response()
    assert (reply.status, reply.text) == (200, "6")
    reply = await getter.request("GET", started.poll_url(sid))
    assert (reply.status, reply.json()) == (400, {"code": 1, "message": "Session ID unknown"})
    await getter.aclose()


async def test_keep_alive_several_requests_on_one_connection(start_server) -> None:
    started = await start_server()
    client = await raw(started)
    sids = []
    for _ in range(3):
        reply = await client.request("GET", started.url("transport=polling"))
        sids.append(json.loads(reply.text[1:])["sid"])
    assert len(set(sids)) == 3
    reply = await client.request("POST", started.poll_url(sids[0]), b"4ping")
    assert reply.body == b"ok"
    reply = await client.request("GET", started.poll_url(sids[0]))
    assert reply.text == "4ping"
    assert started.server.statistics().http_connections == 1
    await client.aclose()


async def test_connection_close_is_honoured(start_server) -> None:
    started = await start_server()
    client = await raw(started)
    reply = await client.request("GET", started.url("transport=polling"), headers=[("Connection", "close")])
    assert reply.status == 200 and reply.headers["connection"] == "close"
    assert await client.stream.receive_some(100) == b""


async def test_http_10_request(start_server) -> None:
    started = await start_server()
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    await stream.send_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n")
    data = b""
    while chunk := await stream.receive_some(4096):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body.startswith(b'0{"sid":')


# helpers --------------------------------------------------------------------

from eio_client import RawHttp, Reply, http  # noqa: E402
from support.waiting import wait_until  # noqa: E402


async def raw(started) -> RawHttp:
    return await RawHttp.connect(started.port)


async def http_get(started, target: str) -> Reply:
    return await http(started.port, "GET", target)


async def http_post(started, target: str, body: bytes) -> Reply:
    return await http(started.port, "POST", target, body)
