"""coalesced_writes: a task's writes within the block leave at its end, others' at once."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing
from robustness.rawclients import RawWebSocket

from roomactors.engineio import EngineSocket, coalesced_writes


def pending_bytes(ws: RawWebSocket) -> bytes:
    """What the server wrote and the client has not read yet (without waiting)."""
    try:
        return os.read(ws.stream.socket.fileno(), 65536)  # trio's sockets are non-blocking
    except BlockingIOError:
        return b""


async def two_clients(start_server) -> tuple[list[EngineSocket], list[RawWebSocket]]:  # type: ignore[no-untyped-def]
    started = await start_server(lambda sock: trio.sleep_forever())
    clients = [await RawWebSocket.open(started.port) for _ in range(2)]
    await trio.testing.wait_all_tasks_blocked()
    by_sid = {sock.sid: sock for sock in started.sockets}
    return [by_sid[str(client.sid)] for client in clients], clients


async def test_writes_in_the_block_leave_together_when_it_ends(start_server) -> None:  # type: ignore[no-untyped-def]
    [sock, other], [client, other_client] = await two_clients(start_server)

    async def elsewhere() -> None:  # started inside the block, so it inherits the context: still writes at once
        other.send("not deferred")

    with coalesced_writes():
        sock.send("first")
        sock.send("second")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(elsewhere)
        await trio.testing.wait_all_tasks_blocked()
        assert pending_bytes(client) == b""  # nothing written yet
        got = pending_bytes(other_client)
        assert got.endswith(b"4not deferred"), got
    await trio.testing.wait_all_tasks_blocked()
    assert pending_bytes(client) == b"\x81\x064first\x81\x074second"  # both frames, one write


async def test_nested_blocks_write_at_the_outermost_end_even_on_error(start_server) -> None:  # type: ignore[no-untyped-def]
    [sock, _], [client, _] = await two_clients(start_server)
    with pytest.raises(RuntimeError), coalesced_writes():
        with coalesced_writes():
            sock.send("inner")
        await trio.testing.wait_all_tasks_blocked()
        assert pending_bytes(client) == b""
        raise RuntimeError("the block failed; what it queued is still owed")
    await trio.testing.wait_all_tasks_blocked()
    assert pending_bytes(client) == b"\x81\x064inner"
