"""Per-client limits of the room protocol, configured through RoomServerConfig:
the command rate and the expulsion of a flooding client, the connect timeout,
rooms per server, players per room, and the fixed name and deck sizes."""

from __future__ import annotations

from typing import Any

import trio
import trio.testing
from robustness.rawclients import RawWebSocket
from robustness.serving import running_server
from support.waiting import wait_until

from roomactors.actors import MemoryClient, RoomLimits, open_lobby
from roomactors.config import RoomServerConfig

DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1+1", "answer": "2"}]}


def code(reply: dict[str, Any]) -> str | None:
    return None if reply["ok"] else str(reply["error"]["code"])


async def test_a_flooding_client_is_answered_rate_limited_then_disconnected() -> None:
    config = RoomServerConfig(
        port=0, command_rate=0.001, command_burst=5, flood_limit=3, flood_window=60, shutdown_timeout=1
    )
    async with running_server(config) as running:
        flooder = await RawWebSocket.open(running.port)
        player = await RawWebSocket.open(running.port)
        for client in (flooder, player):
            await client.connect_namespace("/lobby")
        assert code(await flooder.call("join_lobby", {"id": 1}, ack=1)) is None
        assert code(await flooder.call("create_room", {"name": "r", "deck": DECK}, ack=2)) is None
        assert code(await player.call("join_lobby", {"id": 2}, ack=1)) is None
        assert code(await player.call("join_room", {"id": 1}, ack=2)) is None

        # Tokens 3 to 5 of the burst, then three refusals: the client is warned ...
        answers = [code(await flooder.call("join_room", {"id": 99}, ack=ack)) for ack in range(3, 9)]
        assert answers == ["room_not_found"] * 3 + ["rate_limited"] * 3
        # ... and one more refusal than flood_limit allows gets it expelled.
        await flooder.emit("join_room", {"id": 99}, ack=9)
        with trio.fail_after(5):
            rest = await flooder.receive_until_closed()
        assert "41/lobby," in rest  # Socket.IO DISCONNECT: socket.io-client does not reconnect
        assert rest[-1] == "1"  # then the Engine.IO close packet, and the close
        assert not any(str(m).startswith("43/lobby,9") for m in rest)

        # Its seat went with it: the room it hosted is disbanded, as on a disconnect.
        with trio.fail_after(5):
            closed = await player.next_matching('42/lobby,["roomclosed"')
            assert await player.next_room_list() == []
        assert '"reason":"host_disconnected"' in closed
        await wait_until(lambda: running.statistics().connections == 1, timeout=5, state=running.statistics)
        stats = running.statistics()
        assert (stats.clients, stats.users, stats.rooms) == (1, 1, 0)
        await player.aclose()


async def test_flood_refusals_count_per_window(autojump_clock: trio.testing.MockClock) -> None:
    limits = RoomLimits(command_rate=1.0, command_burst=1, flood_limit=3, flood_window=10.0)
    async with open_lobby(limits) as lobby:
        client = MemoryClient("a")
        await lobby.connect(client)
        assert code(await lobby.join_lobby(client, 1)) is None
        for _ in range(3):
            assert code(await lobby.join_room(client, 9)) == "rate_limited"
        assert client.detached is None  # at the limit, not past it
        await trio.sleep(10.5)  # a new window (and a refilled token)
        assert code(await lobby.join_room(client, 9)) == "room_not_found"
        for _ in range(3):
            assert code(await lobby.join_room(client, 9)) == "rate_limited"
        assert client.detached is None
        reply = await lobby.join_room(client, 9)
        assert code(reply) == "rate_limited" and "being closed" in reply["error"]["message"]
        assert client.detached == "flooding"
        assert lobby.statistics() == type(lobby.statistics())(clients=0, users=0, rooms=0)
        assert code(await lobby.join_lobby(client, 1)) == "not_in_lobby"


async def test_flood_limit_zero_never_expels(autojump_clock: trio.testing.MockClock) -> None:
    config = RoomServerConfig(port=0, command_rate=0.001, command_burst=1, flood_limit=0, shutdown_timeout=1)
    async with running_server(config) as running:
        client = await RawWebSocket.open(running.port)
        await client.connect_namespace("/lobby")
        assert code(await client.call("join_lobby", {"id": 1}, ack=1)) is None
        answers = [code(await client.call("join_room", {"id": 1}, ack=ack)) for ack in range(2, 200)]
        assert set(answers) == {"rate_limited"}
        assert running.statistics().users == 1
        await client.aclose()


async def test_connect_timeout_comes_from_the_config(autojump_clock: trio.testing.MockClock) -> None:
    config = RoomServerConfig(port=0, connect_timeout=5.0, shutdown_timeout=1)
    async with running_server(config) as running:
        idle_client = await RawWebSocket.open(running.port)
        opened_at = trio.current_time()
        assert await idle_client.receive_until_closed() == ["1"]
        assert 5.0 <= trio.current_time() - opened_at < 5.1
        await wait_until(lambda: running.statistics().connections == 0, timeout=1, state=running.statistics)


async def test_room_limits_and_sizes_over_the_wire() -> None:
    config = RoomServerConfig(port=0, max_rooms=1, max_players=1, shutdown_timeout=1)
    async with running_server(config) as running:
        clients = [await RawWebSocket.open(running.port) for _ in range(3)]
        for number, client in enumerate(clients, start=1):
            await client.connect_namespace("/lobby")
            assert code(await client.call("join_lobby", {"id": number}, ack=1)) is None
        a, b, c = clients
        long_name = {"name": "x" * 101, "deck": DECK}
        big_deck = {"name": "r", "deck": {"name": "d", "flashcards": [{"id": i, "problem": "p", "answer": "a"}
                                                                     for i in range(1001)]}}
        assert code(await a.call("create_room", long_name, ack=2)) == "invalid_payload"
        assert code(await a.call("create_room", big_deck, ack=3)) == "invalid_payload"
        assert code(await a.call("create_room", {"name": "x" * 100, "deck": DECK}, ack=4)) is None
        assert code(await b.call("create_room", {"name": "second", "deck": DECK}, ack=2)) == "too_many_rooms"
        assert code(await b.call("join_room", {"id": 1}, ack=3)) is None
        assert code(await c.call("join_room", {"id": 1}, ack=2)) == "room_full"
        for client in clients:
            await client.aclose()


async def test_leaving_and_rejoining_the_namespace_does_not_reset_the_rate_limit() -> None:
    """Every socket has its own token bucket; namespace joins are limited per
    connection, so a loop of join, 45 commands, leave cannot get a fresh bucket
    each time: after 10 joins (the burst) the next one gets CONNECT_ERROR, and
    the commands that follow it, for a namespace never joined, close the connection."""
    async with running_server(RoomServerConfig(port=0, shutdown_timeout=1)) as running:
        client = await RawWebSocket.open(running.port)
        with trio.fail_after(10):
            for _ in range(20):
                await client.send("40/lobby,")
                for _ in range(45):
                    await client.emit("join_room", {"id": 99})
                await client.send("41/lobby,")
            received = await client.receive_until_closed()
        answers = [m for m in received if isinstance(m, str) and m.startswith('42/lobby,["rejected"')]
        not_limited = [m for m in answers if '"code":"rate_limited"' not in m]
        assert '44/lobby,{"message":"Too many namespace connections; slow down"}' in received
        assert len([m for m in received if str(m).startswith("40/lobby,{")]) == 10
        # Ten buckets of 40, not twenty (the last cycle's tail may be cut by the close).
        assert 9 * 40 < len(not_limited) <= 10 * 40
        assert received[-1] == "1"
