"""An echo server on roomactors' own WebSocket, for the Autobahn fuzzingclient
(``tests/autobahn/run``): the same handshake decision (:mod:`.wshandshake`),
frame parser and :class:`ServerWebSocket` as the room server, and pongs
written as the server's pump writes them (at once unless a write is under
way). Not part of the test suite: Autobahn's wstest needs Python 2.7.

Usage: ``python tests/autobahn/echo_server.py PORT`` (127.0.0.1 only).
"""
from __future__ import annotations

import math
import sys

import h11
import trio

from roomactors.engineio.wshandshake import check_websocket_handshake
from roomactors.engineio.wsconnection import WebSocketClosed, accept_server_websocket
from roomactors.engineio.wsframes import binary_frame, text_frame


async def handle(stream: trio.SocketStream) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data:
                return
            conn.receive_data(data)
            continue
        break
    if not isinstance(event, h11.Request):
        return
    headers: dict[str, str] = {}
    for k, v in event.headers:
        key = k.decode("latin-1").lower()
        headers[key] = f"{headers[key]}, {v.decode('latin-1')}" if key in headers else v.decode("latin-1")
    hs = check_websocket_handshake(event.method.decode(), event.http_version.decode(), headers)
    if not hs.accepted:
        await stream.send_all(b"HTTP/1.1 %d Refused\r\nContent-Length: 0\r\n\r\n" % hs.status)
        return
    while conn.next_event() not in (h11.PAUSED,):
        pass
    ws = await accept_server_websocket(stream, hs.response, conn.trailing_data[0], 64 * 1024 * 1024)
    if ws is None:
        return
    send, receive = trio.open_memory_channel[bytes](math.inf)
    state = {"queued": 0}  # frames queued or being written: the writer owns the socket

    def on_control() -> None:
        # as the server's pump: write the pong at once when nobody else is writing
        if state["queued"]:
            return  # the writer writes it before its next frame
        control = ws.take_control()
        try:
            sent = ws.write_now(control)
        except WebSocketClosed:
            return
        if sent < len(control):
            state["queued"] += 1
            send.send_nowait(control[sent:])

    def queue(frame: bytes) -> None:
        state["queued"] += 1
        send.send_nowait(frame)

    ws.on_control = on_control

    async def writer() -> None:
        try:
            async for frame in receive:
                await ws.send_frames(frame)
                state["queued"] -= 1
                if not state["queued"] and ws.pending_control:
                    state["queued"] += 1
                    send.send_nowait(b"")
        except WebSocketClosed:
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        try:
            while True:
                message = await ws.get_message()
                queue(text_frame(message) if isinstance(message, str) else binary_frame(message))
        except WebSocketClosed:
            pass
        nursery.cancel_scope.cancel()
    ws.on_control = None
    with trio.move_on_after(2):
        await ws.aclose()
    await ws.abort()


async def main(port: int) -> None:
    await trio.serve_tcp(handle, port, host="127.0.0.1")


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
