"""One room list across nodes: clients spread over three nodes see the same lists.

Real redis-server, nodes as servers in the test's nursery (and one as a real
``roomserver`` process for ``kill -9``), real python-socketio clients.
"""

from __future__ import annotations

import os
import signal
from typing import Any

import trio
from support.clusternodes import DECK, join, lists_become, open_nodes, roomserver_process
from support.pyclient import PySocket, open_python_clients
from support.redisserver import RedisServer
from support.waiting import wait_until


async def test_clients_on_three_nodes_see_the_same_lists(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 3) as nodes, open_python_clients() as clients:
        socks = [await join(clients, node.url, i + 1, f"user{i + 1}") for i, node in enumerate(nodes)]
        await lists_become(socks, [])
        (ack,) = await socks[0].call("create_room", {"name": "Fractions", "deck": DECK})
        assert ack["ok"] is True
        lists = await lists_become(socks, ["Fractions"])
        assert lists[0] == lists[1] == lists[2]  # the same entry, byte for byte, on every node
        assert lists[1][0]["id"] == ack["room"]["id"] and lists[1][0]["host"]["id"] == 1
        (ack2,) = await socks[2].call("create_room", {"name": "Decimals", "deck": DECK})
        assert ack2["ok"] is True and ack2["room"]["id"] != ack["room"]["id"]
        order = [r["name"] for r in sorted([ack["room"], ack2["room"]], key=lambda room: room["id"])]
        lists = await lists_become(socks, order)
        assert lists[0] == lists[1] == lists[2]
        # a player joins a room on its own node: every node lists the player
        player = await join(clients, nodes[0].url, 9, "sam")
        (joined,) = await player.call("join_room", {"id": ack["room"]["id"]})
        assert joined["ok"] is True

        def fractions_players(sock: PySocket) -> list[Any]:
            rooms = sock.received("updaterooms")[-1][0]
            return [p["id"] for r in rooms if r["name"] == "Fractions" for p in r["players"]]

        with trio.fail_after(15):
            await wait_until(lambda: all(fractions_players(s) == [9] for s in socks))
        # the host leaves: the room leaves every list
        (left,) = await socks[0].call("leave_room", {"id": ack["room"]["id"]})
        assert left["ok"] is True
        await lists_become(socks, ["Decimals"])
        versions = {node.cluster.directory.version for node in nodes}
        assert len(versions) == 1  # every replica caught up to the same stream id


async def test_a_stopped_node_s_rooms_leave_every_list(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2, node_ttl=1.5) as (a, b), open_python_clients() as clients:
        watcher = await join(clients, a.url, 1, "mia")
        async with open_nodes(redis_server, prefix, 1, first=2, node_ttl=1.5) as (c,):
            host = await join(clients, c.url, 2, "tom")
            (ack,) = await host.call("create_room", {"name": "On C", "deck": DECK})
            assert ack["ok"]
            await lists_become([watcher], ["On C"])
        await lists_become([watcher], [])


async def test_a_killed_node_s_rooms_leave_every_list_within_the_ttl(redis_server: RedisServer, prefix: str) -> None:
    ttl = 2.0
    async with open_nodes(redis_server, prefix, 2, node_ttl=ttl) as (a, b), open_python_clients() as clients:
        watchers = [await join(clients, a.url, 1, "mia"), await join(clients, b.url, 2, "sam")]
        async with roomserver_process(redis_server, prefix, "doomed", ttl) as (url, process):
            host = await join(clients, url, 3, "tom")
            (ack,) = await host.call("create_room", {"name": "Doomed", "deck": DECK})
            assert ack["ok"]
            await lists_become(watchers, ["Doomed"])
            os.kill(process.pid, signal.SIGKILL)
            killed_at = trio.current_time()
            await lists_become(watchers, [], timeout=ttl * 4)
            # the bound: the TTL, plus one liveness refresh of the watching nodes
            assert trio.current_time() - killed_at <= ttl + ttl / 3 + 2.0  # (+ slack for a busy machine)


async def test_lists_converge_after_a_redis_restart(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2, node_ttl=1.5) as (a, b), open_python_clients() as clients:
        socks = [await join(clients, a.url, 1, "mia"), await join(clients, b.url, 2, "sam")]
        (ack,) = await socks[0].call("create_room", {"name": "Before", "deck": DECK})
        assert ack["ok"]
        await lists_become(socks, ["Before"])
        await redis_server.restart()  # empty: --save ""
        (ack2,) = await socks[1].call("create_room", {"name": "After", "deck": DECK})
        assert ack2["ok"]
        order = [r["name"] for r in sorted([ack["room"], ack2["room"]], key=lambda room: room["id"])]
        await lists_become(socks, order, timeout=20)
        assert all(s.connected for s in socks)


async def test_a_feed_watcher_sees_rooms_of_other_nodes(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        host = await join(clients, a.url, 1, "mia")
        watcher = clients.connect(b.url, "/lobby")
        await watcher.wait_connected()
        (ack,) = await watcher.call("watch_rooms", {"filter": {"name": "frac"}})
        assert ack["ok"] is True and ack["rooms"] == []
        (created,) = await host.call("create_room", {"name": "Fractions", "deck": DECK})
        (frame,) = await watcher.next_event("roomschanged", where=lambda args: args[0].get("upsert"))
        assert [room["id"] for room in frame["upsert"]] == [created["room"]["id"]]
        assert frame["upsert"][0]["code"] == created["room"]["code"]


def test_a_list_entry_survives_the_trip_through_redis() -> None:
    from roomactors.actors.records import DeckInfo, RoomSummary, User
    from roomactors.cluster.directory import summary_from_json

    summary = RoomSummary(
        id=7, name="Fractions", host=User(1, "mia", "teacher"),
        deck=DeckInfo(name="Week 3", num_problems=4, id="d1", private=False),
        players=(User(2, "sam", None), User("x", None, "student")), max_players=30,
        state="racing", locked=True, offline=frozenset({2}), late_join=True,
    )
    assert summary_from_json(summary.to_json(), late_join=True) == summary
