"""Clients that vanish at every stage leave nothing behind.

Each scenario drops a raw client at one point of its life (RST, like a laptop
lid closing; or FIN right after a command). Afterwards the server must be back
to where it started: no connection, socket, user, seat or room
(``statistics()``, the lobby snapshot), and exactly the tasks it had before
(names of every task under the server's nursery).

Cleanup time is part of the contract: where the server can see the client go
(a WebSocket, a pending poll) it must clean up at once; where it cannot (a
polling client between two requests) the heartbeat decides, within
``ping_interval + ping_timeout``. The autojump clock makes both exact and fast.
A vanished user's seat is held for the reconnect grace (race.md): users and
rooms are gone once the grace is over, and not before.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import trio
import trio.testing
from robustness.rawclients import RawHttp, RawPolling, RawWebSocket, abort, encode_event, open_stream
from robustness.serving import Running, idle, running_server
from support.waiting import wait_until

from roomactors.config import RoomServerConfig
from roomactors.engineio.websocket import CLOSE_TIMEOUT

PING_INTERVAL = 10.0
PING_TIMEOUT = 5.0
GRACE = 7.0
CONFIG = RoomServerConfig(
    port=0, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT, connect_timeout=30.0, shutdown_timeout=1,
    reconnect_grace=GRACE,
)
AT_ONCE = 1.0
BY_HEARTBEAT = PING_INTERVAL + PING_TIMEOUT + 1.0
DECK = {"name": "d", "flashcards": [{"id": 1, "problem": "1", "answer": "1"}]}

Scenario = Callable[[Running], Awaitable[list[Any]]]


async def joined_websocket(running: Running, user_id: int) -> RawWebSocket:
    ws = await RawWebSocket.open(running.port)
    await ws.connect_namespace("/lobby")
    assert (await ws.call("join_lobby", {"id": user_id}))["ok"] is True
    return ws


async def joined_polling(running: Running, user_id: int) -> RawPolling:
    polling = await RawPolling.open(running.port)
    await polling.connect_namespace("/lobby")
    await polling.join_lobby(user_id)
    return polling


async def mid_http_head(running: Running) -> list[Any]:
    http = await RawHttp.connect(running.port)
    await http.stream.send_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    http.vanish()
    return [http]


async def mid_websocket_handshake(running: Running) -> list[Any]:
    stream = await open_stream(running.port)
    await stream.send_all(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    )
    abort(stream)
    return [stream]


async def before_reading_the_open_packet(running: Running) -> list[Any]:
    ws = await RawWebSocket.open(running.port, read_open=False)
    ws.vanish()
    return [ws]


async def before_joining_a_namespace_websocket(running: Running) -> list[Any]:
    ws = await RawWebSocket.open(running.port)
    ws.vanish()
    return [ws]


async def before_joining_a_namespace_polling(running: Running) -> list[Any]:
    polling = await RawPolling.open(running.port)
    polling.vanish()
    return [polling]


async def mid_poll(running: Running) -> list[Any]:
    polling = await joined_polling(running, 1)
    await polling.start_poll()
    sock = running.server.sio.engineio.lookup(polling.sid)
    assert sock is not None
    await wait_until(lambda: sock.get_pending, timeout=AT_ONCE)
    polling.vanish()
    return [polling]


async def between_polls(running: Running) -> list[Any]:
    polling = await joined_polling(running, 1)
    polling.vanish()
    return [polling]


async def mid_upgrade(running: Running) -> list[Any]:
    polling = await joined_polling(running, 1)
    probe = await RawWebSocket.open(running.port, sid=polling.sid)
    await probe.send("2probe")
    assert await probe.receive() == "3probe"
    probe.vanish()
    polling.vanish()
    return [polling, probe]


async def mid_upgrade_before_the_probe_answer(running: Running) -> list[Any]:
    polling = await joined_polling(running, 1)
    await polling.start_poll()  # pending: the probe will release it
    probe = await RawWebSocket.open(running.port, sid=polling.sid)
    await probe.send("2probe")
    sock = running.server.sio.engineio.lookup(polling.sid)
    assert sock is not None
    # "3probe" sent, the pending GET released
    await wait_until(lambda: sock.session.upgrading and not sock.get_pending, timeout=AT_ONCE)
    probe.vanish()
    polling.vanish()
    return [polling, probe]


async def mid_attachment(running: Running) -> list[Any]:
    ws = await joined_websocket(running, 1)
    await ws.send('451-/lobby,["create_room",{"_placeholder":true,"num":0}]')
    ws.vanish()
    return [ws]


async def right_after_create_room(running: Running) -> list[Any]:
    ws = await joined_websocket(running, 1)
    await ws.send(encode_event("create_room", {"name": "r", "deck": DECK}, ack=2))
    await ws.aclose()  # FIN: the server reads the command, then the end
    return [ws]


async def during_create_room_reset(running: Running) -> list[Any]:
    ws = await joined_websocket(running, 1)
    await ws.send(encode_event("create_room", {"name": "r", "deck": DECK}, ack=2))
    ws.vanish()  # RST: the command may or may not be read first
    return [ws]


async def seated_in_a_room(running: Running) -> list[Any]:
    host = await joined_websocket(running, 1)
    polling = await joined_polling(running, 2)
    assert (await host.call("create_room", {"name": "r", "deck": DECK}, ack=2))["ok"] is True
    await polling.post(encode_event("join_room", {"id": 1}, ack=2))
    await polling.poll_until("43/lobby,2[")
    await polling.start_poll()
    polling.vanish()
    host.vanish()
    return [host, polling]


async def polling_for_waiting_packets(running: Running) -> list[Any]:
    polling = await joined_polling(running, 2)
    host = await joined_websocket(running, 1)
    assert (await host.call("create_room", {"name": "r", "deck": DECK}, ack=2))["ok"] is True
    sock = running.server.sio.engineio.lookup(polling.sid)
    assert sock is not None
    await wait_until(lambda: bool(sock.session.outbox), timeout=AT_ONCE)  # the new list waits for the next GET
    await polling.start_poll()
    polling.vanish()  # RST: the server reads the GET, then its answer cannot be delivered
    await host.aclose()
    return [host, polling]


async def legacy_client_that_stops_pinging(running: Running) -> list[Any]:
    """Engine.IO v3 (socket.io-client 1.x/2.x): the client pings; this one, a
    host with a room, stays connected and never does."""
    ws = await RawWebSocket.open(running.port, eio=3)
    assert await ws.receive() == "40"  # in "/" from the open (Socket.IO protocol 4)
    await ws.send("40/lobby")
    assert await ws.next_matching("40/lobby") == "40/lobby,"
    assert (await ws.call("join_lobby", {"id": 1}))["ok"] is True
    assert (await ws.call("create_room", {"name": "r", "deck": DECK}, ack=2))["ok"] is True
    return [ws]


async def legacy_polling_between_polls(running: Running) -> list[Any]:
    getter = await RawHttp.connect(running.port)
    opened = await getter.request("GET", "/socket.io/?EIO=3&transport=polling&b64=1")
    sid = json.loads(opened.text.partition(":")[2][1:])["sid"]
    joined = await getter.request("POST", f"/socket.io/?EIO=3&transport=polling&sid={sid}", b"8:40/lobby")
    assert joined.text == "ok"
    getter.vanish()
    return [getter]


SCENARIOS: list[tuple[Scenario, float]] = [
    (mid_http_head, AT_ONCE),
    (mid_websocket_handshake, AT_ONCE),
    (before_reading_the_open_packet, AT_ONCE),
    (before_joining_a_namespace_websocket, AT_ONCE),
    (before_joining_a_namespace_polling, BY_HEARTBEAT),
    (mid_poll, AT_ONCE),
    (between_polls, BY_HEARTBEAT),
    (mid_upgrade, BY_HEARTBEAT),
    (mid_upgrade_before_the_probe_answer, BY_HEARTBEAT),  # the GET was released: nothing pending
    (mid_attachment, AT_ONCE),
    (right_after_create_room, AT_ONCE),
    (during_create_room_reset, AT_ONCE),
    (seated_in_a_room, AT_ONCE),
    (polling_for_waiting_packets, AT_ONCE),  # the lost answer ends the session
    # no ping for interval + timeout: gone; its WebSocket gets CLOSE_TIMEOUT to say goodbye
    (legacy_client_that_stops_pinging, BY_HEARTBEAT + CLOSE_TIMEOUT),
    (legacy_polling_between_polls, BY_HEARTBEAT),
]


@pytest.mark.parametrize(("scenario", "within"), SCENARIOS, ids=[s.__name__ for s, _ in SCENARIOS])
async def test_a_vanished_client_leaves_nothing_behind(
    autojump_clock: trio.testing.MockClock, scenario: Scenario, within: float
) -> None:
    async with running_server(CONFIG) as running:
        baseline = running.tasks()
        engine = running.server.sio.engineio
        gone = await scenario(running)
        vanished_at = trio.current_time()

        def disconnected() -> bool:
            stats, engine_stats = running.statistics(), engine.statistics()
            rooms_aside = [name for name in running.tasks() if not name.endswith(".run_room")]
            return (stats.connections, stats.clients, engine_stats.http_connections) == (0, 0, 0) \
                and rooms_aside == baseline  # a held host keeps their room's task

        def clean() -> bool:
            return disconnected() and idle(running.statistics())

        try:
            with trio.fail_after(within):
                await wait_until(disconnected)
            seated = running.statistics().users > 0
            with trio.fail_after(GRACE + 0.1):  # a vanished user's seat is held for the grace, no task for it
                await wait_until(clean)
            if seated:
                assert trio.current_time() - vanished_at >= GRACE
        except trio.TooSlowError:
            leftover = sorted(set(running.tasks()) - set(baseline))
            raise AssertionError(
                f"after {within} s: {running.statistics()}, {engine.statistics()}, tasks left: {leftover}"
            ) from None
        snapshot = await running.server.app.lobby.snapshot()
        assert (dict(snapshot.places), dict(snapshot.connections), len(snapshot.rooms)) == ({}, {}, 0)
        if within == BY_HEARTBEAT:  # not earlier either: nothing told the server
            assert trio.current_time() - vanished_at >= PING_INTERVAL
        del gone


async def test_players_of_a_vanished_host_are_told_and_keep_their_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with running_server(CONFIG) as running:
        baseline_tasks = len(running.tasks())
        host = await joined_websocket(running, 1)
        player = await joined_websocket(running, 2)
        assert (await host.call("create_room", {"name": "r", "deck": DECK}, ack=2))["ok"] is True
        assert (await player.call("join_room", {"id": 1}, ack=2))["ok"] is True
        host.vanish()
        vanished_at = trio.current_time()
        with trio.fail_after(AT_ONCE + GRACE):
            closed = await player.next_matching('42/lobby,["roomclosed"')
            assert trio.current_time() - vanished_at >= GRACE  # the host's seat was held
            assert await player.next_room_list() == []
        assert json.loads(closed[len("42/lobby,"):]) == ["roomclosed", {"id": 1, "reason": "host_disconnected"}]
        await wait_until(lambda: running.statistics().connections == 1, timeout=AT_ONCE, state=running.statistics)
        stats = running.statistics()
        assert (stats.clients, stats.users, stats.rooms) == (1, 1, 0)
        snapshot = await running.server.app.lobby.snapshot()
        assert dict(snapshot.places) == {2: None}
        # The player is back in the lobby and can host a room of its own.
        assert (await player.call("create_room", {"name": "mine", "deck": DECK}, ack=3))["ok"] is True
        assert len(running.tasks()) > baseline_tasks
        await player.aclose()


async def test_a_vanished_legacy_host_closes_its_room_at_once(autojump_clock: trio.testing.MockClock) -> None:
    """An Engine.IO v3 client (socket.io-client 1.x/2.x) cannot resume a session, so
    its drop is a goodbye whatever the reconnect grace (race.md)."""
    async with running_server(CONFIG) as running:
        host = await RawWebSocket.open(running.port, eio=3)
        await host.send("40/lobby,")
        await host.next_matching("40/lobby,")  # Socket.IO protocol 4: no sid in the CONNECT ack
        assert (await host.call("join_lobby", {"id": 1}))["ok"] is True
        player = await joined_websocket(running, 2)
        assert (await host.call("create_room", {"name": "r", "deck": DECK}, ack=2))["ok"] is True
        assert (await player.call("join_room", {"id": 1}, ack=2))["ok"] is True
        host.vanish()
        with trio.fail_after(AT_ONCE):
            closed = await player.next_matching('42/lobby,["roomclosed"')
        assert json.loads(closed[len("42/lobby,"):]) == ["roomclosed", {"id": 1, "reason": "host_disconnected"}]
        assert dict((await running.server.app.lobby.snapshot()).held) == {}
        await player.aclose()
