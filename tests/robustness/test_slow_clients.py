"""A client that stops reading while room lists flow.

One client joins the lobby and then never reads again: a raw WebSocket with a
4 KiB receive buffer (so the server's writer stalls after a few kilobytes), or
a polling session that never sends another GET. Meanwhile a driver creates and
disbands rooms in a loop (bounded in count and time), each change a list of
about 8 KB to every client. What must hold (docs/limits.md):

* the stuck session's outbox never holds more than the newest list ("newest
  wins"), and the Python heap does not grow with the number of lists;
* a client that reads receives the final list, promptly, and so does the stuck
  one when it reads again (before its heartbeat runs out);
* the stuck client is closed by the heartbeat: it cannot answer the ping, so it
  is gone ``ping_interval + ping_timeout`` after it opened (reason ``ping timeout``).

Real time with short heartbeats: the point is the server's behaviour under real
socket back-pressure, which the autojump clock would not model.
"""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
import trio
import trio.testing
from robustness.rawclients import RawHttp, RawPolling, RawWebSocket, ServerClosed
from robustness.serving import running_server
from support.waiting import wait_until

from roomactors.config import RoomServerConfig

PING_INTERVAL = 3.0
PING_TIMEOUT = 2.0
ITERATIONS = 1000  # create + disband: 2000 lists
FLOOD_SECONDS = 3.0  # stop earlier than that, while the stuck client is still connected
DESCRIPTION = "d" * 1000  # the longest allowed: each list with the room is about 1.3 KB


class Watcher:
    """A client that keeps reading (and answering pings), remembering the newest list."""

    def __init__(self, client: RawWebSocket) -> None:
        self.client = client
        self.latest: list[dict[str, Any]] | None = None
        self.lists = 0
        self.changed = trio.Event()

    async def run(self) -> None:
        try:
            while True:
                self.latest = await self.client.next_room_list()
                self.lists += 1
                self.changed.set()
                self.changed = trio.Event()
        except ServerClosed:
            pass

    async def wait_for(self, rooms: list[str]) -> None:
        while [room["name"] for room in self.latest or []] != rooms:
            await self.changed.wait()


async def open_stuck(transport: str, port: int) -> RawWebSocket | RawPolling:
    """Join the lobby as user 99, then never read again (keep the client referenced:
    a collected one closes its socket)."""
    if transport == "websocket":
        ws = await RawWebSocket.open(port, rcvbuf=4096)
        await ws.connect_namespace("/lobby")
        assert (await ws.call("join_lobby", {"id": 99}))["ok"] is True
        return ws
    polling = await RawPolling.open(port)
    await polling.connect_namespace("/lobby")
    await polling.join_lobby(99)
    return polling


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_client_that_stops_reading_costs_one_list_and_is_dropped_by_the_heartbeat(transport: str) -> None:
    # reconnect_grace 0: the stuck client's user leaves when the heartbeat gives up
    # (with a grace its seat would be held; tests/actors/test_seats.py covers that)
    config = RoomServerConfig(
        port=0, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT, command_rate=0, shutdown_timeout=1,
        reconnect_grace=0,
    )
    async with running_server(config) as running, trio.open_nursery() as clients:
        engine = running.server.sio.engineio
        driver = await RawWebSocket.open(running.port)
        watcher = Watcher(await RawWebSocket.open(running.port))
        for client in (driver, watcher.client):
            await client.connect_namespace("/lobby")
        assert (await driver.call("join_lobby", {"id": 1}))["ok"] is True
        await watcher.client.emit("join_lobby", {"id": 2})
        clients.start_soon(watcher.run)

        opened_at = trio.current_time()
        stuck_client = await open_stuck(transport, running.port)
        stuck_sid = stuck_client.sid
        assert stuck_sid is not None
        stuck = engine.lookup(stuck_sid)
        assert stuck is not None

        everyone = [engine.lookup(client.sid) for client in (driver, watcher.client)] + [stuck]
        deck = {"name": "big", "description": DESCRIPTION, "flashcards": [{"id": 1, "problem": "1", "answer": "1"}]}
        most_messages = most_bytes = most_queued_bytes = stalled_samples = iterations = 0

        def sample() -> None:
            nonlocal most_messages, most_bytes, most_queued_bytes, stalled_samples
            messages, size = stuck.session.outbox.held()
            most_messages = max(most_messages, messages)
            most_bytes = max(most_bytes, size)
            queued = sum(sock.session.outbox.held()[1] for sock in everyone if sock is not None)
            most_queued_bytes = max(most_queued_bytes, queued)
            stalled_samples += messages > 0

        tracemalloc.start()
        try:
            heap_before: int | None = None
            with trio.fail_after(30):
                for iterations in range(1, ITERATIONS + 1):
                    reply = await driver.call("create_room", {"name": f"room {iterations}", "deck": deck}, ack=1)
                    assert reply["ok"] is True
                    sample()
                    assert (await driver.call("leave_room", {"id": reply["room"]["id"]}, ack=2))["ok"] is True
                    sample()
                    if iterations == 20:
                        heap_before = tracemalloc.get_traced_memory()[0]
                    if trio.current_time() - opened_at > FLOOD_SECONDS:
                        break
            heap_after = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()

        assert iterations >= 40, f"only {iterations} iterations in {FLOOD_SECONDS} s: the test proves little"
        assert not stuck.closed, f"the stuck client went away before the flood ended: {stuck.close_reason} after {iterations}"
        # The client really was stuck (lists waited for it), and it never cost more than one list.
        assert stalled_samples >= iterations  # of 2 * iterations samples
        assert most_messages == 1
        assert 1000 < most_bytes < 2000
        assert most_queued_bytes < 3 * 2000  # every session's outbox together
        assert heap_before is not None and heap_after - heap_before < 1_000_000

        # Everyone who reads gets the final list, promptly.
        with trio.fail_after(2):
            assert (await driver.call("create_room", {"name": "final", "deck": deck}, ack=3))["ok"] is True
            await watcher.wait_for(["final"])
        assert watcher.lists >= 2
        clients.start_soon(driver.receive_until_closed)  # keep answering its pings from now on

        # A slow client that catches up skips lists, never the newest one.
        with trio.fail_after(1):
            while [room["name"] for room in await stuck_client.next_room_list(answer_pings=False)] != ["final"]:
                pass

        # The stuck client cannot answer the ping: gone at ping_interval + ping_timeout.
        with trio.fail_after(PING_INTERVAL + PING_TIMEOUT + 2):
            await stuck.wait_closed()
        assert stuck.close_reason == "ping timeout"
        assert trio.current_time() - opened_at == pytest.approx(PING_INTERVAL + PING_TIMEOUT, abs=0.5)
        await wait_until(
            lambda: engine.lookup(stuck_sid) is None and running.statistics().users == 2,
            timeout=2,
            state=running.statistics,
        )
        stats = running.statistics()
        assert (stats.connections, stats.users, stats.rooms) == (2, 2, 1)
        assert engine.statistics().outbox_overflows == 0
        await stuck_client.aclose()
        clients.cancel_scope.cancel()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_pings_from_a_client_that_does_not_read_queue_one_pong(transport: str) -> None:
    """Engine.IO v4 clients do not ping, but the server answers pings (as v3 did):
    a client that pings in a loop without reading must not grow its outbox, whose
    limits count messages, not control packets."""
    async with running_server(RoomServerConfig(port=0, shutdown_timeout=1)) as running:
        engine = running.server.sio.engineio
        if transport == "polling":
            polling = await RawPolling.open(running.port)
            await polling.connect_namespace("/lobby")
            assert (await polling.post(*["2"] * 50_000)).status == 200  # 100 KB of pings in one body
            sock = engine.lookup(polling.sid)
            assert sock is not None and len(sock.session.outbox) == 1
            assert await polling.poll() == ["3"]
            await polling.aclose()
            return
        ws = await RawWebSocket.open(running.port, rcvbuf=4096)
        await ws.connect_namespace("/lobby")
        with trio.fail_after(30):
            for _ in range(20_000):
                await ws.send("2")
            await ws.send('42/lobby,["join_lobby",{"id":1}]')  # handled after every ping before it
            await wait_until(lambda: running.statistics().users == 1)
        sock = engine.lookup(ws.sid or "")
        assert sock is not None and not sock.closed
        assert len(sock.session.outbox) <= 2  # one pong, and the list join_lobby sends
        await ws.aclose()


async def test_a_client_that_pongs_blindly_without_reading_holds_one_ping(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A polling client that answers the heartbeat by POSTing pongs on a timer but
    never GETs stays connected (the heartbeat cannot tell it from a live one), so
    what it costs must stay bounded: one queued ping, one list, whatever the time."""
    config = RoomServerConfig(port=0, ping_interval=1.0, ping_timeout=1.0, shutdown_timeout=1)
    async with running_server(config) as running:
        polling = await RawPolling.open(running.port)
        await polling.connect_namespace("/lobby")
        await polling.join_lobby(1)
        sock = running.server.sio.engineio.lookup(polling.sid)
        assert sock is not None
        for _ in range(200):  # 200 heartbeats: a ping 1 s after each pong, answered 0.5 s later
            await trio.sleep(1.5)
            assert (await polling.post("3")).status == 200
        assert not sock.closed
        assert len(sock.session.outbox) == 1  # the newest ping only
        await polling.getter.aclose()  # idle for 300 s: the server closed that keep-alive connection
        polling.getter = await RawHttp.connect(running.port)
        assert await polling.poll() == ["2"]
        await polling.aclose()
