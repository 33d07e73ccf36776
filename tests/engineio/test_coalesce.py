"""coalesced_writes: a task's marked writes within the block leave at its end, others' at once."""

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


async def test_marked_writes_in_the_block_leave_together_when_it_ends(start_server) -> None:  # type: ignore[no-untyped-def]
    [sock, other], [client, other_client] = await two_clients(start_server)

    async def elsewhere() -> None:  # started inside the block, so it inherits the context: still writes at once
        other.send("not deferred", coalesce=True)

    with coalesced_writes():
        sock.send("first", coalesce=True)
        sock.send("second", coalesce=True)
        other.send("unmarked")  # not marked: written at once
        async with trio.open_nursery() as nursery:
            nursery.start_soon(elsewhere)
        await trio.testing.wait_all_tasks_blocked()
        assert pending_bytes(client) == b""  # nothing written yet
        assert pending_bytes(other_client) == b"\x81\x094unmarked\x81\x0d4not deferred"
    await trio.testing.wait_all_tasks_blocked()
    assert pending_bytes(client) == b"\x81\x064first\x81\x074second"  # both frames, one write


async def test_an_unmarked_write_takes_what_was_deferred_along(start_server) -> None:  # type: ignore[no-untyped-def]
    [sock, _], [client, _] = await two_clients(start_server)
    with coalesced_writes():
        sock.send("deferred", coalesce=True)
        sock.send("now")  # writes the outbox, in order, the deferred message first
        await trio.testing.wait_all_tasks_blocked()
        assert pending_bytes(client) == b"\x81\x094deferred\x81\x044now"
    await trio.testing.wait_all_tasks_blocked()
    assert pending_bytes(client) == b""  # the end of the block found nothing left


async def test_nested_blocks_write_at_the_outermost_end_even_on_error(start_server) -> None:  # type: ignore[no-untyped-def]
    [sock, _], [client, _] = await two_clients(start_server)
    with pytest.raises(RuntimeError), coalesced_writes():
        with coalesced_writes():
            sock.send("inner", coalesce=True)
        await trio.testing.wait_all_tasks_blocked()
        assert pending_bytes(client) == b""
        raise RuntimeError("the block failed; what it queued is still owed")
    await trio.testing.wait_all_tasks_blocked()
    assert pending_bytes(client) == b"\x81\x064inner"


async def test_outside_a_block_a_marked_write_is_at_once(start_server) -> None:  # type: ignore[no-untyped-def]
    [sock, _], [client, _] = await two_clients(start_server)
    sock.send("at once", coalesce=True)
    await trio.testing.wait_all_tasks_blocked()
    assert pending_bytes(client) == b"\x81\x084at once"
