"""Error answers as the reference server gives them, limits, and CORS."""

from __future__ import annotations

import pytest
import trio
import trio_websocket

from eio_client import RawHttp, http
from roomactors.engineio import EngineIOConfig, EngineSocket, HttpRequest, HttpResponse


def error(code: int, message: str) -> dict[str, object]:
    return {"code": code, "message": message}


@pytest.mark.parametrize(
    ("method", "query", "status", "body"),
    [
        ("GET", "EIO=4&transport=carrier-pigeon", 400, error(0, "Transport unknown")),
        ("GET", "EIO=4", 400, error(0, "Transport unknown")),
        ("GET", "EIO=4&transport=polling&sid=nope", 400, error(1, "Session ID unknown")),
        ("POST", "EIO=4&transport=polling&sid=nope", 400, error(1, "Session ID unknown")),
        ("POST", "EIO=4&transport=polling", 400, error(2, "Bad handshake method")),
        ("PUT", "EIO=4&transport=polling", 400, error(2, "Bad handshake method")),
        ("GET", "EIO=4&transport=websocket", 400, error(3, "Bad request")),
        ("GET", "EIO=2&transport=polling", 400, error(5, "Unsupported protocol version")),
        ("GET", "transport=polling", 400, error(5, "Unsupported protocol version")),
    ],
)
async def test_error_answers(start_server, method: str, query: str, status: int, body: dict) -> None:
    started = await start_server()
    reply = await http(started.port, method, f"/socket.io/?{query}")
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == body
    assert started.server.statistics().sessions == 0


async def test_forbidden_origin_is_400_code_4(start_server) -> None:
    started = await start_server()
    reply = await http(
        started.port, "GET", "/socket.io/?EIO=4&transport=polling", headers=[("Origin", "http://evil.example")]
    )
    assert (reply.status, reply.json()) == (400, error(4, "Forbidden"))
    assert "access-control-allow-origin" not in reply.headers
    assert started.server.statistics().sessions_opened == 0


async def test_same_origin_is_allowed_by_default(start_server) -> None:
    started = await start_server()
    origin = f"http://127.0.0.1:{started.port}"
    reply = await http(started.port, "GET", started.url("transport=polling"), headers=[("Origin", origin)])
    assert reply.status == 200 and reply.text.startswith("0{")
    assert reply.headers["access-control-allow-origin"] == origin
    assert reply.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(
    ("allowed", "origin", "ok"),
    [
        (("http://game.example",), "http://game.example", True),
        (("http://game.example",), "http://other.example", False),
        (("*",), "http://anything.example", True),
    ],
)
async def test_configured_origins(start_server, allowed, origin: str, ok: bool) -> None:
    started = await start_server(config=EngineIOConfig(cors_origins=allowed))
    reply = await http(started.port, "GET", started.url("transport=polling"), headers=[("Origin", origin)])
    if ok:
        assert reply.status == 200
        assert reply.headers["access-control-allow-origin"] == origin
        assert reply.headers["access-control-allow-credentials"] == "true"
    else:
        assert (reply.status, reply.json()) == (400, error(4, "Forbidden"))


async def test_preflight(start_server) -> None:
    started = await start_server(config=EngineIOConfig(cors_origins=("http://game.example",)))
    reply = await http(
        started.port,
        "OPTIONS",
        started.url("transport=polling"),
        headers=[
            ("Origin", "http://game.example"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type"),
        ],
    )
    assert reply.status == 204 and reply.body == b""
    assert reply.headers["access-control-allow-origin"] == "http://game.example"
    assert reply.headers["access-control-allow-credentials"] == "true"
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert reply.headers["access-control-allow-headers"] == "content-type"
    refused = await http(started.port, "OPTIONS", started.url("transport=polling"), headers=[("Origin", "http://x.example")])
    assert refused.status == 400


async def test_bad_post_body_is_400_code_3_and_closes_only_that_session(start_server) -> None:
    started = await start_server()
    sid, _ = await started.handshake()
    other, _ = await started.handshake()
    reply = await http(started.port, "POST", started.poll_url(sid), b"4fine\x1e9garbage")
    assert (reply.status, reply.json()) == (400, error(3, "Bad request"))
    assert started.server.lookup(sid) is None
    assert (await http(started.port, "POST", started.poll_url(other), b"4x")).body == b"ok"
    assert (await http(started.port, "GET", started.poll_url(other))).text == "4x"


async def test_upgrade_packet_over_polling_is_400_code_3(start_server) -> None:
    started = await start_server()
    sid, _ = await started.handshake()
    reply = await http(started.port, "POST", started.poll_url(sid), b"5")
    assert (reply.status, reply.json()["code"]) == (400, 3)
    assert started.server.statistics().sessions == 0


async def test_post_over_max_payload_is_413_and_closes(start_server) -> None:
    started = await start_server(config=EngineIOConfig(max_payload=100))
    sid, _ = await started.handshake()
    assert (await http(started.port, "POST", started.poll_url(sid), b"4" + b"x" * 99)).body == b"ok"
    reply = await http(started.port, "POST", started.poll_url(sid), b"4" + b"x" * 100)
    assert reply.status == 413
    sock = started.server.lookup(sid)
    assert sock is None or sock.close_reason == "payload too large"


async def test_second_concurrent_get_closes_the_session(start_server) -> None:
    started = await start_server(lambda sock: trio.sleep_forever())
    sid, _ = await started.handshake()
    first = await RawHttp.connect(started.port)
    await first.send_request("GET", started.poll_url(sid))
    await trio.testing.wait_all_tasks_blocked()
    second = await http(started.port, "GET", started.poll_url(sid))
    assert (second.status, second.json()["code"]) == (400, 3)
    with trio.fail_after(5):
        reply = await first.read_response()
    assert (reply.status, reply.text) == (200, "1")
    assert started.server.statistics().sessions == 0


async def test_websocket_with_unknown_sid_is_refused_before_upgrade(start_server) -> None:
    started = await start_server()
    with pytest.raises(trio_websocket.HandshakeError) as info:
        async with trio_websocket.open_websocket_url(started.ws_url("nope")):
            pass  # pragma: no cover
    assert isinstance(info.value, trio_websocket.ConnectionRejected)
    assert info.value.status_code == 400
    assert b'"code":1' in info.value.body


async def test_big_websocket_frame_closes_with_1009(start_server, open_ws) -> None:
    started = await start_server(config=EngineIOConfig(max_payload=1000))
    ws = await open_ws(started.ws_url())
    await ws.get_message()
    await ws.send_message("4" + "x" * 999)
    assert await ws.get_message() == "4" + "x" * 999
    await ws.send_message("4" + "x" * 1000)
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.get_message()
    assert ws.closed.code == 1009
    await started.settled(sessions=0)


@pytest.mark.parametrize("garbage", ["9", "", "0", "2probe", "5", "bnot-base64!"])
async def test_websocket_garbage_closes_that_session(start_server, open_ws, garbage) -> None:
    ended = trio.Event()

    async def handler(sock: EngineSocket) -> None:
        async for _ in sock:
            pass
        ended.set()

    started = await start_server(handler)
    ws = await open_ws(started.ws_url())
    await ws.get_message()
    await ws.send_message(garbage)
    with trio.fail_after(5):
        await ended.wait()
    with pytest.raises(trio_websocket.ConnectionClosed):
        await ws.get_message()


async def test_http_fallback(start_server) -> None:
    seen: list[HttpRequest] = []

    async def route(request: HttpRequest) -> HttpResponse | None:
        seen.append(request)
        if request.path == "/healthz":
            return HttpResponse(200, [("Content-Type", "text/plain")], "ok")
        return None

    started = await start_server(http_fallback=route)
    client = await RawHttp.connect(started.port)
    reply = await client.request("GET", "/healthz?verbose=1", headers=[("X-Test", "yes")])
    assert (reply.status, reply.body, reply.headers["content-length"]) == (200, b"ok", "2")
    reply = await client.request("GET", "/nothing")
    assert reply.status == 404
    assert seen[0].method == "GET" and seen[0].query == {"verbose": "1"} and seen[0].headers["x-test"] == "yes"
    assert seen[0].target == "/healthz?verbose=1"
    no_route = await start_server()
    assert (await http(no_route.port, "GET", "/healthz")).status == 404


async def test_overlapping_post_closes_the_session(start_server) -> None:
    release = trio.Event()

    async def slow(sock: EngineSocket) -> None:
        await release.wait()
        async for _ in sock:
            pass

    started = await start_server(slow)
    sid, _ = await started.handshake()
    first = await RawHttp.connect(started.port)
    # more messages than the inbound buffer: the POST waits for the handler
    await first.send_request("POST", started.poll_url(sid), "\x1e".join(["4m"] * 40).encode())
    await trio.testing.wait_all_tasks_blocked()
    reply = await http(started.port, "POST", started.poll_url(sid), b"4x")
    assert (reply.status, reply.json()["code"]) == (400, 3)
    assert started.server.lookup(sid) is None or started.server.lookup(sid).close_reason == "transport error"
    release.set()
    assert (await first.read_response()).status == 200


@pytest.mark.parametrize(
    "extra",
    [
        "Connection: Upgrade\r\n",  # no key, no version
        "Connection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        "Connection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",  # not 16 bytes
    ],
)
async def test_broken_websocket_handshake_is_400_code_3_at_once(start_server, extra: str) -> None:
    started = await start_server()
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    request = f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n{extra}\r\n"
    await stream.send_all(request.encode())
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert body == b'{"code":3,"message":"Bad request"}'
    await stream.aclose()


@pytest.mark.parametrize("version", ["8", "", "13, 8"])
async def test_unsupported_websocket_version_is_426_with_the_version_we_speak(start_server, version: str) -> None:
    """RFC 6455 §4.4: a version the server does not speak is refused with 426
    and ``Sec-WebSocket-Version: 13``, so the client knows what to retry with."""
    started = await start_server()
    stream = await trio.open_tcp_stream("127.0.0.1", started.port)
    header = f"Sec-WebSocket-Version: {version}\r\n" if version else ""
    request = (
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{header}\r\n"
    )
    await stream.send_all(request.encode())
    data = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some(4096):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 426")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in head + b"\r\n"
    assert b"13" in body  # the body says what to use
    assert started.server.statistics().sessions == 0
    await stream.aclose()
