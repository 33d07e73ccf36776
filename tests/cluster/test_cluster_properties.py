"""Random commands spread over three nodes; once quiet, every node shows the same truth.

The multi-node variant of the lobby's property tests: users on three nodes create,
join (on any node: rooms of other nodes are relayed) and leave rooms, and take
their seats over from another node with their token (a second tab landing
elsewhere), in a random order (seeded, so a failure replays). After each command's ack, a model of who
sits where follows the acks and ``roomclosed`` events; once quiet, every
client's newest ``updaterooms`` must be the same list, and that list must be
the model: the same rooms, hosts and players.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import trio
from support.clusternodes import DECK, open_nodes
from support.pyclient import PySocket, open_python_clients
from support.redisserver import RedisServer
from support.waiting import wait_until

USERS_PER_NODE = 2
STEPS = 36


def _view(rooms: list[dict[str, Any]]) -> dict[int, tuple[Any, list[Any]]]:
    return {room["id"]: (room["host"]["id"], [p["id"] for p in room["players"]]) for room in rooms}


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_commands_on_three_nodes_leave_one_consistent_list(
    redis_server: RedisServer, prefix: str, seed: int
) -> None:
    rng = random.Random(seed)
    async with open_nodes(redis_server, prefix, 3) as nodes, open_python_clients() as clients:
        socks: dict[int, PySocket] = {}
        tokens: dict[int, str] = {}
        home: dict[int, int] = {}  # user id -> index of the node holding their socket
        closed_seen: dict[int, int] = {}

        async def connect(user_id: int, node: int, token: str | None = None) -> dict[str, Any]:
            sock = clients.connect(nodes[node].url, "/lobby")
            await sock.wait_connected()
            payload: dict[str, Any] = {"id": user_id, "username": f"user{user_id}"}
            if token is not None:
                payload["token"] = token
            (ack,) = await sock.call("join_lobby", payload)
            assert ack["ok"], ack
            socks[user_id], tokens[user_id], home[user_id], closed_seen[user_id] = sock, ack["token"], node, 0
            return dict(ack)

        for n in range(len(nodes)):
            for k in range(USERS_PER_NODE):
                await connect(n * USERS_PER_NODE + k + 1, n)
        hosts: dict[int, int] = {}  # room id -> host user id
        players: dict[int, list[int]] = {}  # room id -> player ids, in joining order
        seat: dict[int, int | None] = dict.fromkeys(socks)

        def close_room(room_id: int) -> None:
            for uid in players.pop(room_id):
                seat[uid] = None
            seat[hosts.pop(room_id)] = None

        def known_rooms(uid: int) -> list[int]:
            lists = socks[uid].received("updaterooms")
            return [r["id"] for r in lists[-1][0]] if lists else []

        for _ in range(STEPS):
            uid = rng.choice(sorted(socks))
            sock = socks[uid]
            where = seat[uid]
            if rng.random() < 0.2:  # a second tab on another node takes the seat over
                old = sock
                ack = await connect(uid, rng.choice([n for n in range(len(nodes)) if n != home[uid]]), tokens[uid])
                assert ack["room"] == where, (ack, where)
                with trio.fail_after(10):
                    await old.wait_record("replaced")
            elif where is None and (not hosts or rng.random() < 0.3):
                (ack,) = await sock.call("create_room", {"name": f"r{uid}", "deck": DECK})
                assert ack["ok"], ack
                hosts[ack["room"]["id"]], players[ack["room"]["id"]] = uid, []
                seat[uid] = ack["room"]["id"]
            elif where is None:
                target = rng.choice(sorted(hosts))
                if target not in known_rooms(uid):  # not in this node's list yet: wait for it
                    with trio.fail_after(10):
                        await wait_until(lambda: target in known_rooms(uid))  # noqa: B023 (awaited in this iteration)
                (ack,) = await sock.call("join_room", {"id": target})
                assert ack["ok"], ack
                players[target].append(uid)
                seat[uid] = target
            else:
                (ack,) = await sock.call("leave_room", {"id": where})
                assert ack["ok"], ack
                if hosts[where] == uid:
                    gone = list(players[where])
                    close_room(where)
                    for player in gone:  # each player hears it, on whichever node they are
                        with trio.fail_after(10):
                            await wait_until(lambda p=player: len(socks[p].received("roomclosed")) > closed_seen[p])
                        closed_seen[player] += 1
                else:
                    players[where].remove(uid)
                    seat[uid] = None

        expected = {room_id: (hosts[room_id], players[room_id]) for room_id in hosts}

        def newest(uid: int) -> dict[int, tuple[Any, list[Any]]] | None:
            lists = socks[uid].received("updaterooms")
            return _view(lists[-1][0]) if lists else None

        with trio.fail_after(20):
            await wait_until(
                lambda: all(newest(uid) == expected for uid in socks),
                state=lambda: {"expected": expected, "seen": {uid: newest(uid) for uid in socks}},
            )
        lists = [socks[uid].received("updaterooms")[-1][0] for uid in socks]
        assert all(entry == lists[0] for entry in lists)  # the same list, byte for byte
        with trio.fail_after(10):  # every replica caught up to the same stream id
            await wait_until(lambda: len({node.cluster.directory.version for node in nodes}) == 1)
