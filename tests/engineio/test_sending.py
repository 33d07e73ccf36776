"""EngineSocket sending: groups, newest-wins keys, one encode for many sessions."""

from __future__ import annotations

import trio

from eio_client import http
from roomactors.engineio import EngineSocket, SharedMessage


async def test_send_many_and_replace_key_over_polling(start_server) -> None:
    async def handler(sock: EngineSocket) -> None:
        sock.send("rooms v1", replace_key="rooms")
        sock.send_many(["head", b"\x01\x02", "tail"])
        sock.send("rooms v2", replace_key="rooms")
        sock.send("last")
        await trio.sleep_forever()

    started = await start_server(handler)
    sid, _ = await started.handshake()
    await trio.testing.wait_all_tasks_blocked()
    reply = await http(started.port, "GET", started.poll_url(sid))
    assert reply.text.split("\x1e") == ["4head", "bAQI=", "4tail", "4rooms v2", "4last"]


async def test_shared_message_to_polling_and_websocket_sessions(start_server, open_ws) -> None:
    started = await start_server(lambda sock: trio.sleep_forever())
    sid, _ = await started.handshake()
    ws = await open_ws(started.ws_url())
    await ws.get_message()
    await trio.testing.wait_all_tasks_blocked()
    text, binary = SharedMessage("to all"), SharedMessage(b"\xff")
    for sock in started.sockets:
        sock.send(text)
        sock.send(binary)
    assert (await http(started.port, "GET", started.poll_url(sid))).text == "4to all\x1eb/w=="
    assert await ws.get_message() == "4to all"
    assert await ws.get_message() == b"\xff"
    assert text.__dict__.keys() >= {"polling", "websocket"}  # both encodings computed once, cached


async def test_receive_raises_engine_closed_after_buffered_messages(start_server) -> None:
    from roomactors.engineio import EngineClosed

    got: list[object] = []
    done, go = trio.Event(), trio.Event()

    async def handler(sock: EngineSocket) -> None:
        await go.wait()  # the client's messages and close arrived first
        try:
            while True:
                got.append(await sock.receive())
        except EngineClosed as exc:
            got.append(f"closed: {exc.reason}")
        done.set()

    started = await start_server(handler)
    sid, _ = await started.handshake()
    assert (await http(started.port, "POST", started.poll_url(sid), b"4a\x1e4b\x1e1")).body == b"ok"
    go.set()
    with trio.fail_after(5):
        await done.wait()
    assert got == ["a", "b", "closed: client close"]
