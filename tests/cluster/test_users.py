"""Users across nodes: one user id lives in one place across the cluster, and the
takeover and reconnect-grace rules of race.md hold when the new connection lands
on another node (docs/cluster.md, "Users across nodes").

Real redis-server, real nodes in the test's nursery (and real ``roomserver``
processes where one is killed), real python-socketio clients; players that drop
are client processes killed with SIGKILL (support/killable.py): no goodbye.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import coredis
import jwt
import pytest
import trio
from support.clusternodes import join, lists_become, open_nodes, roomserver_process
from support.killable import start_killable
from support.clients import Clients, ClientSocket, client_params, open_clients
from support.pyclient import open_python_clients
from support.redisserver import RedisServer
from support.waiting import wait_until

GRACE = 5.0
DECK = {"name": "Sums", "flashcards": [
    {"id": 1, "problem": "1+1", "answer": "2"}, {"id": 2, "problem": "2+2", "answer": "4"},
]}
SECRET = "the-school-and-the-server-share-this-secret"


async def ack_of(sock: ClientSocket, event: str, payload: Any) -> dict[str, Any]:
    (ack,) = await sock.call(event, payload)
    assert isinstance(ack, dict)
    return ack


async def joined(clients: Clients, url: str, payload: dict[str, Any]) -> tuple[ClientSocket, dict[str, Any]]:
    sock = clients.connect(url, "/lobby")
    await sock.wait_connected()
    return sock, await ack_of(sock, "join_lobby", payload)


def shows(user_id: object, connected: bool) -> Any:
    """An ``updaterooms`` whose rooms show ``user_id`` with ``connected``."""
    def check(args: list[Any]) -> bool:
        return any(
            person["id"] == user_id and person["connected"] is connected
            for room in args[0] for person in [room["host"], *room["players"]]
        )
    return check


async def test_a_user_connected_on_one_node_is_taken_on_another(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        sam, first = await joined(clients, a.url, {"id": 7, "username": "sam"})
        assert first["ok"] is True
        other, refused = await joined(clients, b.url, {"id": 7, "username": "imposter"})
        assert refused["ok"] is False and refused["error"]["code"] == "identity_taken"
        assert "token" in refused["error"]["message"]
        wrong = await ack_of(other, "join_lobby", {"id": 7, "token": "A" * 24})
        assert wrong["error"]["code"] == "identity_taken"
        # nor does an anonymous create_room that names sam as its host
        anonymous = clients.connect(b.url, "/lobby")
        await anonymous.wait_connected()
        hosted = await ack_of(anonymous, "create_room", {"name": "Mine", "deck": DECK, "host": {"id": 7}})
        assert hosted["ok"] is False and hosted["error"]["code"] == "identity_taken"
        # the string "7" is another user: free
        assert (await ack_of(other, "join_lobby", {"id": "7"}))["ok"] is True
        # sam on A is undisturbed
        made = await ack_of(sam, "create_room", {"name": "Mine", "deck": DECK})
        assert made["ok"] is True and made["room"]["host"]["username"] == "sam"
        assert sam.connected and sam.received("replaced") == []
        # sam leaves the lobby: the id is free on every node
        assert (await ack_of(sam, "leave_lobby", {"id": 7}))["ok"] is True
        third, again = await joined(clients, b.url, {"id": 7, "username": "sam2"})
        assert again["ok"] is True


@pytest.mark.parametrize("room_node", [0, 1], ids=["room-on-the-old-node", "room-on-a-third-node"])
async def test_a_second_tab_on_another_node_takes_a_player_s_seat_over(
    redis_server: RedisServer, prefix: str, room_node: int
) -> None:
    async with open_nodes(redis_server, prefix, 3) as nodes, open_python_clients() as clients:
        a, c = nodes[0], nodes[2]
        teacher = await join(clients, nodes[room_node].url, 1, "mia")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        student, first = await joined(clients, a.url, {"id": 2, "username": "sam"})
        await lists_become([student], ["Sums"])
        assert (await ack_of(student, "join_room", {"id": room_id}))["ok"] is True
        started = await ack_of(teacher, "start_race", {"id": room_id, "countdown": 0})
        race_id = started["race_id"]
        await student.next_event("racestart")
        card0 = await ack_of(student, "answer", {"id": room_id, "race_id": race_id, "card": 0, "answer": "2"})
        assert card0["correct"] is True
        # the second tab, on node C, with the token: takes the seat over
        tab, ack = await joined(clients, c.url, {"id": 2, "token": first["token"]})
        assert ack["ok"] is True and ack["room"] == room_id and ack["user"]["username"] == "sam"
        assert isinstance(ack["token"], str) and ack["token"] != first["token"]
        (state,) = await tab.next_event("racestate")
        assert state["race_id"] == race_id and state["next"] == 1 and state["end_at"] == started["end_at"]
        (replaced,) = await student.next_event("replaced")
        assert "another connection" in replaced["reason"]
        with trio.fail_after(10):
            await student.next_event("disconnect")
        # the race goes on from node C and ends for everyone
        card1 = await ack_of(tab, "answer", {"id": room_id, "race_id": race_id, "card": 1, "answer": "4"})
        assert card1 == {"ok": True, "card": 1, "correct": True, "next": None}
        (over,) = await tab.next_event("raceover")
        assert over["reason"] == "all_done" and [m["correct"] for m in over["mine"]] == [True, True]
        assert (await teacher.next_event("raceover"))[0]["ranking"] == over["ranking"]
        # the old token no longer works anywhere; the new one does
        late, stale = await joined(clients, a.url, {"id": 2, "token": first["token"]})
        assert stale["error"]["code"] == "identity_taken"
        # the player is in the room once: leaving from node C works
        assert (await ack_of(tab, "leave_room", {"id": room_id}))["ok"] is True
        await teacher.next_event("updaterooms", where=lambda args: any(
            r["id"] == room_id and r["players"] == [] for r in args[0]))


@pytest.mark.parametrize("client_kind", client_params())
async def test_a_host_takes_their_room_over_from_another_node(
    redis_server: RedisServer, prefix: str, client_kind: str
) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_clients(client_kind) as clients:
        teacher, first = await joined(clients, a.url, {"id": "mia", "auth_level": "teacher"})
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        player = await join(clients, a.url, 2, "sam")
        assert (await ack_of(player, "join_room", {"id": room_id}))["ok"] is True
        started = await ack_of(teacher, "start_race", {"id": room_id, "countdown": 0})
        await player.next_event("racestart")
        assert (await ack_of(player, "answer", {"id": room_id, "race_id": started["race_id"], "card": 0,
                                                "answer": "2"}))["ok"] is True
        tab, ack = await joined(clients, b.url, {"id": "mia", "token": first["token"]})
        assert ack["ok"] is True and ack["room"] == room_id
        (state,) = await tab.next_event("racestate")
        assert state["race_id"] == started["race_id"] and state["next"] is None
        await teacher.next_event("replaced")
        # the host's commands, from node B, reach the room on node A
        assert (await ack_of(tab, "end_race", {"id": room_id}))["ok"] is True
        (over,) = await player.next_event("raceover")
        assert over["reason"] == "host_ended" and over["mine"][0]["given"] == "2"
        assert (await tab.next_event("raceover"))[0]["mine"] == []
        results = await ack_of(tab, "race_results", {"id": room_id})
        assert results["ok"] is True and results["results"]["race_id"] == started["race_id"]
        assert player.received("roomclosed") == []
        # the host leaves from node B: the room closes for its player on node A
        assert (await ack_of(tab, "leave_room", {"id": room_id}))["ok"] is True
        assert await player.next_event("roomclosed") == [{"id": room_id, "reason": "host_left"}]


async def test_a_relayed_player_who_drops_keeps_the_seat_for_the_grace(redis_server: RedisServer, prefix: str) -> None:
    """Players on node A in a room on node B, killed mid-race: B shows them
    ``connected: false``; one comes back on node C with the token and finishes,
    the other does not and leaves the race (``left: true``) when the grace ends."""
    async with (
        open_nodes(redis_server, prefix, 3, reconnect_grace=GRACE) as (a, b, c),
        open_python_clients() as clients,
        trio.open_nursery() as nursery,
    ):
        teacher = await join(clients, b.url, 1, "mia")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        await lists_become([teacher], ["Sums"])
        with trio.fail_after(10):  # A's replica has the room before the players ask for it
            await wait_owner(a, room_id)
        pia = await start_killable(nursery, a.url, "pia", "websocket", str(room_id), "2")
        bo = await start_killable(nursery, a.url, "bo", "websocket", str(room_id), "3")
        for killable in (pia, bo):
            assert await killable.line() == {"ready": True}
        started = await ack_of(teacher, "start_race", {"id": room_id, "countdown": 0})
        pia_said, bo_said = await pia.line(), await bo.line()
        assert pia_said["ack"]["correct"] is True and bo_said["ack"]["correct"] is False
        await pia.kill()
        await bo.kill()
        # one list shows both held (both drops may come in one list: wait for that one)
        await teacher.next_event("updaterooms", where=lambda args: shows("pia", False)(args) and shows("bo", False)(args))
        # pia comes back on node C: the seat is hers again, the race carries on
        back, ack = await joined(clients, c.url, {"id": "pia", "token": pia_said["token"]})
        assert ack["ok"] is True and ack["room"] == room_id
        (state,) = await back.next_event("racestate")
        assert state["next"] == 1 and state["end_at"] == started["end_at"]
        await teacher.next_event("updaterooms", where=shows("pia", True))
        card1 = await ack_of(back, "answer", {"id": room_id, "race_id": started["race_id"], "card": 1, "answer": "4"})
        assert card1["next"] is None
        # bo never comes back: his grace ends, he leaves the race, which is then all done
        (over,) = await back.next_event("raceover", timeout=GRACE + 10)
        assert over["reason"] == "all_done"
        ranking = {r["id"]: (r["correct"], r["left"]) for r in over["ranking"]}
        assert ranking == {"pia": (2, False), "bo": (0, True)}
        assert [m["given"] for m in over["mine"]] == ["2", "4"]
        # bo's id is free again on every node once his grace is over
        bo_again, again = await joined(clients, c.url, {"id": "bo"})
        assert again["ok"] is True and again["room"] is None


async def wait_owner(node: Any, room_id: int) -> None:
    await wait_until(lambda: node.cluster.directory.owner_of(room_id) is not None)


async def test_a_host_who_drops_comes_back_on_another_node(redis_server: RedisServer, prefix: str) -> None:
    async with (
        open_nodes(redis_server, prefix, 2, reconnect_grace=GRACE * 4) as (a, b),
        open_python_clients() as clients,
        trio.open_nursery() as nursery,
    ):
        teacher = await start_killable(nursery, a.url, "teacher", "websocket", "host", json.dumps(DECK))
        made = await teacher.line()
        room_id = made["room"]
        player = await join(clients, a.url, 2, "sam")
        assert (await ack_of(player, "join_room", {"id": room_id}))["ok"] is True
        await teacher.say("start")
        race_id = (await teacher.line())["ack"]["race_id"]
        await player.next_event("racestart")
        await teacher.kill()
        await player.next_event("updaterooms", where=shows("teacher", False))
        # without the token, nobody else takes the held host seat, on any node
        thief, refused = await joined(clients, b.url, {"id": "teacher"})
        assert refused["error"]["code"] == "identity_taken"
        back, ack = await joined(clients, b.url, {"id": "teacher", "token": made["token"]})
        assert ack["ok"] is True and ack["room"] == room_id
        (state,) = await back.next_event("racestate")
        assert state["race_id"] == race_id
        await player.next_event("updaterooms", where=shows("teacher", True))
        assert (await ack_of(back, "end_race", {"id": room_id}))["ok"] is True
        (over,) = await player.next_event("raceover")
        assert over["reason"] == "host_ended"
        assert player.received("roomclosed") == []


async def test_players_of_a_killed_node_come_back_on_another(redis_server: RedisServer, prefix: str) -> None:
    """A node is killed (``kill -9``): its players seated in rooms of other nodes
    keep their seats for the grace, and come back through another node."""
    ttl = 1.5
    async with (
        open_nodes(redis_server, prefix, 1, node_ttl=ttl, reconnect_grace=30.0) as (b,),
        open_python_clients() as clients,
    ):
        teacher = await join(clients, b.url, 1, "mia")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        async with roomserver_process(redis_server, prefix, "doomed", ttl) as (url, process):
            student, first = await joined(clients, url, {"id": 2, "username": "sam"})
            idle, _ = await joined(clients, url, {"id": 3, "username": "kim"})  # in no room
            await lists_become([student], ["Sums"])
            assert (await ack_of(student, "join_room", {"id": room_id}))["ok"] is True
            os.kill(process.pid, signal.SIGKILL)
            await teacher.next_event("updaterooms", where=shows(2, False), timeout=ttl * 4 + 5)
        # a user of the dead node in no room is nobody's any more: free to claim
        kim, free = await joined(clients, b.url, {"id": 3, "username": "kim"})
        assert free["ok"] is True and free["room"] is None
        # one seated in a room of a living node is held there, for the token's holder
        thief, taken = await joined(clients, b.url, {"id": 2})
        assert taken["error"]["code"] == "identity_taken"
        back, ack = await joined(clients, b.url, {"id": 2, "token": first["token"]})
        assert ack["ok"] is True and ack["room"] == room_id, ack
        await teacher.next_event("updaterooms", where=shows(2, True))
        assert (await ack_of(back, "leave_room", {"id": room_id}))["ok"] is True


def credential(sub: str, name: str, role: str) -> str:
    claims = {"sub": sub, "name": name, "role": role, "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_signed_identities_across_nodes(redis_server: RedisServer, prefix: str) -> None:
    async with (
        open_nodes(redis_server, prefix, 3, identity_secret=SECRET, teachers_only_create=True) as (a, b, c),
        open_python_clients() as clients,
    ):
        teacher, t_ack = await joined(clients, b.url, {"credential": credential("t-1", "Mia", "teacher")})
        assert t_ack["ok"] is True and "token" not in t_ack
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        sam = credential("s-1", "Sam", "student")
        student, s_ack = await joined(clients, a.url, {"credential": sam})
        assert s_ack["ok"] is True
        await lists_become([student], ["Sums"])
        # a relayed join: the room's node takes the identity its node verified
        joined_room = await ack_of(student, "join_room", {"id": room_id})
        assert joined_room["ok"] is True and joined_room["room"]["players"][0]["username"] == "Sam"
        started = await ack_of(teacher, "start_race", {"id": room_id, "countdown": 0})
        await student.next_event("racestart")
        # the same signed identity takes its seat over from a third node
        tab, ack = await joined(clients, c.url, {"credential": sam})
        assert ack["ok"] is True and ack["room"] == room_id
        await tab.next_event("racestate")
        await student.next_event("replaced")
        for card, answer in ((0, "2"), (1, "4")):
            reply = await ack_of(tab, "answer", {"id": room_id, "race_id": started["race_id"], "card": card,
                                                  "answer": answer})
            assert reply["correct"] is True
        (over,) = await teacher.next_event("raceover")
        assert over["reason"] == "all_done" and over["ranking"][0]["id"] == "s-1"
        # a student's credential may not create rooms (teachers_only_create), on any node
        refused = await ack_of(tab, "create_room", {"name": "Mine", "deck": DECK})
        assert refused["error"]["code"] in ("already_in_room", "forbidden")


async def test_the_registry_is_written_again_after_a_redis_restart(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        sam, first = await joined(clients, a.url, {"id": 7, "username": "sam"})
        assert a.cluster is not None and b.cluster is not None
        await redis_server.restart()  # empty: --save ""
        with trio.fail_after(15):
            await wait_until(lambda: a.cluster.users.sessions >= 2 and b.cluster.users.sessions >= 2)  # type: ignore[union-attr]
        other, refused = await joined(clients, b.url, {"id": 7})
        assert refused["error"]["code"] == "identity_taken"
        tab, ack = await joined(clients, b.url, {"id": 7, "token": first["token"]})
        assert ack["ok"] is True and ack["user"]["username"] == "sam"
        await sam.next_event("replaced")


async def test_without_redis_each_node_checks_its_own_users(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Availability first: while Redis is unreachable, joins work (checked by each
    node alone, as without a cluster), and the log says so once."""
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        sam, first = await joined(clients, a.url, {"id": 7, "username": "sam"})
        await redis_server.stop()
        with trio.fail_after(10):
            await wait_until(lambda: not a.cluster.health.reachable)  # type: ignore[union-attr]
        kim, ack = await joined(clients, a.url, {"id": 8, "username": "kim"})
        assert ack["ok"] is True
        # the node's own rule still holds: sam is held on A
        other, taken = await joined(clients, a.url, {"id": 7})
        assert taken["error"]["code"] == "identity_taken"
        lines = [r.getMessage() for r in caplog.records if r.name == "roomactors.cluster"]
        assert sum("checked by each node alone" in line for line in lines) == 1, lines
        await redis_server.start()


async def test_a_relayed_player_comes_back_on_their_own_node(redis_server: RedisServer, prefix: str) -> None:
    """A player of node A seated in a room of node B drops and comes back on A;
    then a second tab on A takes the seat over: the seat on B follows each time."""
    async with (
        open_nodes(redis_server, prefix, 2, reconnect_grace=30.0) as (a, b),
        open_python_clients() as clients,
        trio.open_nursery() as nursery,
    ):
        teacher = await join(clients, b.url, 1, "mia")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        with trio.fail_after(10):
            await wait_owner(a, room_id)
        pia = await start_killable(nursery, a.url, "pia", "websocket", str(room_id), "2")
        assert await pia.line() == {"ready": True}
        started = await ack_of(teacher, "start_race", {"id": room_id, "countdown": 0})
        said = await pia.line()
        await pia.kill()
        await teacher.next_event("updaterooms", where=shows("pia", False))
        back, ack = await joined(clients, a.url, {"id": "pia", "token": said["token"]})
        assert ack["ok"] is True and ack["room"] == room_id
        (state,) = await back.next_event("racestate")
        assert state["next"] == 1
        await teacher.next_event("updaterooms", where=shows("pia", True))
        # a second tab on the same node: the seat follows it, the first tab goes
        tab, again = await joined(clients, a.url, {"id": "pia", "token": ack["token"]})
        assert again["ok"] is True and again["room"] == room_id
        await tab.next_event("racestate")
        await back.next_event("replaced")
        card1 = await ack_of(tab, "answer", {"id": room_id, "race_id": started["race_id"], "card": 1, "answer": "4"})
        assert card1["correct"] is True and card1["next"] is None
        (over,) = await tab.next_event("raceover")
        assert over["reason"] == "all_done" and [m["given"] for m in over["mine"]] == ["2", "4"]
        assert tab.received("roomclosed") == [] and teacher.received("roomclosed") == []
        # the seat is the tab's alone: leaving the room from it works, once
        assert (await ack_of(tab, "leave_room", {"id": room_id}))["ok"] is True
        await teacher.next_event("updaterooms", where=lambda args: any(
            r["id"] == room_id and r["players"] == [] for r in args[0]))


async def test_a_flushed_registry_is_written_again(redis_server: RedisServer, prefix: str) -> None:
    """Redis loses its data without dropping the connection (FLUSHALL): the node
    notices its marker is gone and writes its users again."""
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        sam, first = await joined(clients, a.url, {"id": 7, "username": "sam"})
        assert a.cluster is not None
        sessions = a.cluster.users.sessions
        async with coredis.Redis.from_url(redis_server.url) as admin:
            await admin.flushall()
        with trio.fail_after(10):
            await wait_until(lambda: a.cluster.users.sessions > sessions)  # type: ignore[union-attr]
        other, refused = await joined(clients, b.url, {"id": 7})
        assert refused["error"]["code"] == "identity_taken"


async def entries(admin: Any, prefix: str) -> dict[str, dict[str, str]]:
    """Every user entry in Redis: JSON id -> its hash."""
    found: dict[str, dict[str, str]] = {}
    async for key in admin.scan_iter(match=f"{prefix}user:*"):
        raw = await admin.hgetall(key)
        found[key.decode()[len(f"{prefix}user:"):]] = {k.decode(): v.decode() for k, v in raw.items()}
    return found


async def members(admin: Any, key: str) -> set[str]:
    return {m.decode() for m in await admin.smembers(key)}


async def test_a_killed_node_s_user_entries_are_deleted(redis_server: RedisServer, prefix: str) -> None:
    """``kill -9`` of a node: once it stayed missing long enough, the living node
    deletes the entries of its users, except those a living node still holds."""
    ttl = 1.5
    async with (
        open_nodes(redis_server, prefix, 1, node_ttl=ttl, reconnect_grace=GRACE) as (b,),
        open_python_clients() as clients,
        coredis.Redis.from_url(redis_server.url) as admin,
    ):
        assert b.cluster is not None
        teacher = await join(clients, b.url, 1, "mia")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        guest = await join(clients, b.url, 6, "gus")
        async with roomserver_process(redis_server, prefix, "doomed", ttl) as (url, process):
            student = await join(clients, url, 2, "sam")  # seated on b: held there for the grace
            for user_id in (3, 4):
                await join(clients, url, user_id, f"idle{user_id}")
            host = await join(clients, url, 5, "hal")
            (theirs,) = await host.call("create_room", {"name": "Doomed", "deck": DECK})
            for sock in (student, guest):  # lists are in room id order: the nodes' blocks decide
                await sock.next_event("updaterooms", where=lambda args: {r["name"] for r in args[0]} == {"Sums", "Doomed"})
            assert (await ack_of(student, "join_room", {"id": room_id}))["ok"] is True
            assert (await ack_of(guest, "join_room", {"id": theirs["room"]["id"]}))["ok"] is True
            await teacher.next_event("updaterooms", where=shows(2, True))
            with trio.fail_after(10):
                await wait_until(lambda: b.cluster.users.pending == 0)  # type: ignore[union-attr]
            assert await members(admin, f"{prefix}users:of:doomed") >= {"2", "3", "4", "5", "6"}
            assert await members(admin, f"{prefix}users:nodes") == {"n0", "doomed"}
            os.kill(process.pid, signal.SIGKILL)
            await guest.next_event("roomclosed", timeout=ttl * 4 + 5)
        with trio.fail_after(ttl * 4 + 20):
            await wait_until(lambda: b.cluster.users.reaped >= 3)  # type: ignore[union-attr]
        # sam's seat on b is held for the grace (b holds sam's entry), then given up
        await teacher.next_event("updaterooms", where=lambda args: any(
            r["id"] == room_id and r["players"] == [] for r in args[0]), timeout=GRACE + 10)
        with trio.fail_after(10):
            await wait_until(lambda: b.cluster.users.pending == 0 and not b.cluster.users._reaping)  # type: ignore[union-attr]
        left = await entries(admin, prefix)
        assert set(left) == {"1", "6"}, left
        assert left["6"]["h"] == "n0" and left["6"]["s"] == "n0"
        assert await admin.exists([f"{prefix}users:of:doomed"]) == 0
        assert await members(admin, f"{prefix}users:of:n0") == {"1", "6"}
        assert await members(admin, f"{prefix}users:nodes") == {"n0"}
        # the dead node's users are free on the living node, without a token
        again, ack = await joined(clients, b.url, {"id": 5, "username": "hal"})
        assert ack["ok"] is True and ack["room"] is None


async def test_a_dead_node_s_many_entries_go_in_chunks(redis_server: RedisServer, prefix: str) -> None:
    """A node that died before any living node started (its index is all that is
    left of it): 1,200 entries, deleted in chunks; entries claimed since by a
    living node, or seated on one, stay (compared before deleted)."""
    count = 1200
    async with coredis.Redis.from_url(redis_server.url) as admin:
        seed = """
        for i = 0, tonumber(ARGV[2]) - 1 do
          redis.call('HSET', ARGV[1] .. 'user:' .. i, 'h', 'ghost', 's', 'ghost', 'd', '', 'u', '')
          redis.call('SADD', ARGV[1] .. 'users:of:ghost', tostring(i))
        end
        redis.call('SADD', ARGV[1] .. 'users:nodes', 'ghost')
        """
        await admin.eval(seed, keys=[], args=[prefix, str(count)])
        await admin.hset(f"{prefix}user:0", {"h": "ghost", "s": "n0"})  # seated on a living node
        async with open_nodes(redis_server, prefix, 1, node_ttl=1.5) as (a,), open_python_clients() as clients:
            assert a.cluster is not None
            # id 1 was claimed by a living node since the ghost died
            sock, ack = await joined(clients, a.url, {"id": 1, "username": "one"})
            assert ack["ok"] is True
            with trio.fail_after(30):
                await wait_until(lambda: a.cluster.users.reaped >= count - 2)  # type: ignore[union-attr]
                await wait_until(lambda: not a.cluster.users._reaping)  # type: ignore[union-attr]
            left = await entries(admin, prefix)
            assert set(left) == {"0", "1"}
            assert left["0"]["h"] == "" and left["0"]["s"] == "n0"
            assert left["1"]["h"] == "n0"
            assert await admin.exists([f"{prefix}users:of:ghost"]) == 0
            assert await members(admin, f"{prefix}users:nodes") == {"n0"}
            assert a.cluster.users.reaped == count - 2


async def test_a_node_started_again_with_its_id_lets_its_old_users_go(redis_server: RedisServer, prefix: str) -> None:
    """A node killed and started again at once with the same ``--node-id`` (its
    liveness key never expired): the users of its previous process are not held by
    it; another node lets them join without a token."""
    ttl = 10.0
    async with (
        open_nodes(redis_server, prefix, 1, node_ttl=ttl) as (b,),
        open_python_clients() as clients,
        coredis.Redis.from_url(redis_server.url) as admin,
    ):
        async with roomserver_process(redis_server, prefix, "phoenix", ttl) as (url, process):
            sam, first = await joined(clients, url, {"id": 2, "username": "sam"})
            assert first["ok"] is True
            taken, refused = await joined(clients, b.url, {"id": 2})
            assert refused["error"]["code"] == "identity_taken"
            os.kill(process.pid, signal.SIGKILL)
        async with roomserver_process(redis_server, prefix, "phoenix", ttl) as (url, process):
            # The new process clears what its predecessor left in its first session
            # with Redis, which may come a moment after it listens: another process's
            # progress in Redis, with no event to wait on, so it is looked at.
            with trio.fail_after(10):
                while "2" in await members(admin, f"{prefix}users:of:phoenix"):
                    await trio.sleep(0.05)
            back, ack = await joined(clients, b.url, {"id": 2, "username": "sam"})
            assert ack["ok"] is True and ack["room"] is None


async def test_after_the_new_tab_s_ack_the_old_tab_speaks_for_nobody(redis_server: RedisServer, prefix: str) -> None:
    """A user in the lobby of node A (in no room) takes over from node B: by the
    time the new tab has its ack, A has let the old tab go (as one server does it:
    the takeover and ``replaced`` come before the new ack), so nothing the old tab
    sends from then on acts for the user."""
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        teacher = await join(clients, a.url, 1, "mia")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        old, first = await joined(clients, a.url, {"id": 2, "username": "sam"})
        await lists_become([old], ["Sums"])
        local = {cid for cid, uid in (await a.app.lobby.snapshot()).connections.items() if uid == 2}
        assert len(local) == 1
        tab, ack = await joined(clients, b.url, {"id": 2, "token": first["token"]})
        assert ack["ok"] is True and ack["room"] is None
        # at the ack (no waiting): A's lobby no longer has the old tab speak for sam
        now = {cid for cid, uid in (await a.app.lobby.snapshot()).connections.items() if uid == 2}
        assert not now & local, now
        (replaced,) = await old.next_event("replaced")
        assert "another connection" in replaced["reason"]
        # the new tab acts for sam: it joins the room on A (relayed), once
        assert (await ack_of(tab, "join_room", {"id": room_id}))["ok"] is True
        await teacher.next_event("updaterooms", where=lambda args: any(
            r["id"] == room_id and [p["id"] for p in r["players"]] == [2] for r in args[0]))


async def test_create_room_with_the_token_takes_the_user_over_from_another_node(
    redis_server: RedisServer, prefix: str
) -> None:
    """race.md: ``create_room``'s ``host`` may carry ``token``. As on one server: a
    user in no room moves to the new connection (the old one gets ``replaced``) and
    hosts the new room; a user sitting in a room gets ``already_in_room``, and
    nothing changes; a failed create_room changes nothing either."""
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        teacher = await join(clients, a.url, 1, "mia")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK})
        room_id = created["room"]["id"]
        sam, first = await joined(clients, a.url, {"id": 7, "username": "sam"})
        kim, kim_first = await joined(clients, a.url, {"id": 8, "username": "kim"})
        assert (await ack_of(kim, "join_room", {"id": room_id}))["ok"] is True
        await lists_become([sam], ["Sums"])
        with trio.fail_after(10):
            await wait_until(lambda: b.cluster.directory.room_of_user(8, "n0") == room_id)  # type: ignore[union-attr]
        anonymous = clients.connect(b.url, "/lobby")
        await anonymous.wait_connected()
        # kim sits in a room (on node A): already_in_room, and her tab stays hers
        seated = await ack_of(anonymous, "create_room",
                              {"name": "Mine", "deck": DECK, "host": {"id": 8, "token": kim_first["token"]}})
        assert seated["ok"] is False and seated["error"]["code"] == "already_in_room", seated
        assert f"room {room_id}" in seated["error"]["message"]
        # a create_room that fails (an invalid deck) changes nothing
        bad = await ack_of(anonymous, "create_room",
                           {"name": "Mine", "deck": {"name": "x"}, "host": {"id": 7, "token": first["token"]}})
        assert bad["ok"] is False and bad["error"]["code"] == "invalid_payload", bad
        # a wrong token: identity_taken
        wrong = await ack_of(anonymous, "create_room",
                             {"name": "Mine", "deck": DECK, "host": {"id": 7, "token": kim_first["token"]}})
        assert wrong["error"]["code"] == "identity_taken"
        assert (await ack_of(kim, "answer", {"id": room_id, "race_id": 1, "card": 0, "answer": "2"}))["ok"] is False
        assert (await ack_of(sam, "leave_room", {"id": room_id}))["error"]["code"] != "not_in_lobby"
        assert sam.received("replaced") == [] and kim.received("replaced") == []
        # sam, in no room, with his token: moves to node B and hosts the room there
        hosted = await ack_of(anonymous, "create_room",
                              {"name": "Mine", "deck": DECK, "host": {"id": 7, "token": first["token"]}})
        assert hosted["ok"] is True, hosted
        assert hosted["room"]["host"]["id"] == 7 and hosted["room"]["host"]["username"] == "sam"
        assert isinstance(hosted["token"], str) and hosted["token"] != first["token"]
        (replaced,) = await sam.next_event("replaced")
        assert "another connection" in replaced["reason"]
        await teacher.next_event("updaterooms", where=lambda args: any(
            r["name"] == "Mine" and r["host"]["id"] == 7 for r in args[0]))
        # the old token is spent; the new one takes sam over (from node A, with his room)
        stale, refused = await joined(clients, a.url, {"id": 7, "token": first["token"]})
        assert refused["error"]["code"] == "identity_taken"
        back, ack = await joined(clients, a.url, {"id": 7, "token": hosted["token"]})
        assert ack["ok"] is True and ack["room"] == hosted["room"]["id"]
        await anonymous.next_event("replaced")
