"""Pings from a client that does not read (issue 10, finding 1): the server
owes a pong per ping, and used to append each to an unbounded buffer while the
client's socket was full. Now at most the latest pong waits (RFC 6455 §5.5.3),
and a client whose pongs keep being superseded unwritten is closed (1008).

No socket here: the pings reach :class:`ServerWebSocket` as bytes already
received, and nothing takes the pending pong, exactly as when the writer is
stuck on a full socket."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from roomactors.engineio.wsconnection import (
    MAX_UNANSWERED_PINGS,
    ServerWebSocket,
    WebSocketClosed,
)
from roomactors.engineio.wsframes import encode_frame


def masked(first: int, payload: bytes) -> bytes:
    mask = b"\x01\x02\x03\x04"
    return bytes((first, 0x80 | len(payload))) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def ping(n: int) -> bytes:
    return masked(0x89, n.to_bytes(4, "big") + b"p" * 121)  # 125 bytes: the largest control payload


def server_websocket(received: bytes) -> ServerWebSocket:
    _, server_end = trio.testing.memory_stream_pair()
    return ServerWebSocket(server_end, 1000, received)


async def test_only_the_latest_pong_waits() -> None:
    count = MAX_UNANSWERED_PINGS  # the first queues a pong, each later one replaces it
    ws = server_websocket(b"".join(ping(n) for n in range(count)) + masked(0x81, b"4hi"))
    calls = []
    ws.on_control = lambda: calls.append(len(ws.pending_control))
    assert await ws.get_message() == "4hi"
    assert ws.pending_control == encode_frame(0xA, (count - 1).to_bytes(4, "big") + b"p" * 121)
    assert set(calls) == {127} and len(calls) == count  # the writer was told each time; it held one pong
    assert ws.take_control() == encode_frame(0xA, (count - 1).to_bytes(4, "big") + b"p" * 121)
    assert ws.pending_control == b""


async def test_a_written_pong_resets_the_count() -> None:
    """A client that reads now and then may ping as much as it likes."""
    ws = server_websocket(b"")
    for _round in range(5):
        ws._parser.receive_data(b"".join(ping(n) for n in range(MAX_UNANSWERED_PINGS)) + masked(0x81, b"4x"))
        assert await ws.get_message() == "4x"
        assert len(ws.take_control()) == 127  # the writer wrote it: the client reads


async def test_pongs_that_pile_up_unwritten_close_the_client_with_1008() -> None:
    flood = b"".join(ping(n) for n in range(MAX_UNANSWERED_PINGS + 2)) + masked(0x81, b"4never")
    ws = server_websocket(flood)
    with pytest.raises(WebSocketClosed) as info:
        await ws.get_message()
    assert info.value.reason is not None and info.value.reason.code == 1008
    assert "read" in (info.value.reason.reason or "")  # says what to do
    assert len(ws.pending_control) == 127  # bounded all along
