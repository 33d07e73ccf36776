"""A student on node A joins a teacher's room on node B and races in it.

Real redis-server, two nodes in the test's nursery (and a real ``roomserver``
process for ``kill -9``), real python-socketio clients.
"""

from __future__ import annotations

import os
import signal

import trio
from support.clusternodes import DECK, SUMS, join, lists_become, open_nodes, roomserver_process, seat_across
from support.pyclient import open_python_clients
from support.redisserver import RedisServer
from support.waiting import wait_until



async def test_a_student_on_one_node_races_in_a_room_on_another(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        teacher = await join(clients, b.url, 1, "mia")
        student = await join(clients, a.url, 2, "sam")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": SUMS})
        room_id = created["room"]["id"]
        await lists_become([student], ["Sums"])
        (joined,) = await student.call("join_room", {"id": room_id})
        assert joined["ok"] is True and [p["id"] for p in joined["room"]["players"]] == [2]
        # both nodes list the player (the room's node wrote it, the other replicated it)
        for sock in (teacher, student):
            with trio.fail_after(10):
                await wait_until(lambda s=sock: any(
                    r["id"] == room_id and [p["id"] for p in r["players"]] == [2]
                    for r in s.received("updaterooms")[-1][0]))
        # a seated student cannot create a room or join another while there
        (refused,) = await student.call("create_room", {"name": "Mine", "deck": DECK})
        assert refused["error"]["code"] == "already_in_room"
        # the race: started on B, answered from A, over for both
        (started,) = await teacher.call("start_race", {"id": room_id, "countdown": 0})
        assert started["ok"] is True
        (racestart,) = await student.next_event("racestart")
        assert [c["problem"] for c in racestart["cards"]] == ["1+1", "2+2"]
        race_id = started["race_id"]
        (first,) = await student.call("answer", {"id": room_id, "race_id": race_id, "card": 0, "answer": "2"})
        assert first == {"ok": True, "card": 0, "correct": True, "next": 1}
        (second,) = await student.call("answer", {"id": room_id, "race_id": race_id, "card": 1, "answer": "5"})
        assert second["ok"] is True and second["correct"] is False and second["next"] is None
        (over,) = await student.next_event("raceover")
        assert over["reason"] == "all_done" and over["ranking"][0]["id"] == 2
        assert [m["correct"] for m in over["mine"]] == [True, False]
        (teacher_over,) = await teacher.next_event("raceover")
        assert teacher_over["mine"] == []
        # the student leaves: back in A's lobby, free to create a room there
        (left,) = await student.call("leave_room", {"id": room_id})
        assert left == {"ok": True}
        with trio.fail_after(10):
            await wait_until(lambda: any(
                r["id"] == room_id and r["players"] == [] for r in teacher.received("updaterooms")[-1][0]))
        (mine,) = await student.call("create_room", {"name": "Mine", "deck": DECK})
        assert mine["ok"] is True


async def test_the_host_leaving_closes_the_room_for_players_on_other_nodes(
    redis_server: RedisServer, prefix: str
) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        teacher, student, room_id = await seat_across(clients, b.url, a.url)
        assert (await teacher.call("leave_room", {"id": room_id}))[0]["ok"] is True
        assert await student.next_event("roomclosed") == [{"id": room_id, "reason": "host_left"}]
        await lists_become([student], [])
        # back in A's lobby: joining anything else works as usual
        (mine,) = await student.call("create_room", {"name": "Mine", "deck": DECK})
        assert mine["ok"] is True


async def test_a_killed_node_s_players_elsewhere_get_node_lost(redis_server: RedisServer, prefix: str) -> None:
    ttl = 2.0
    async with open_nodes(redis_server, prefix, 1, node_ttl=ttl) as (a,), open_python_clients() as clients:
        student = await join(clients, a.url, 2, "sam")
        async with roomserver_process(redis_server, prefix, "doomed", ttl) as (url, process):
            teacher, _, room_id = await seat_across(clients, url, a.url, "Doomed", student=student)
            os.kill(process.pid, signal.SIGKILL)
            with trio.fail_after(ttl * 4):
                assert await student.next_event("roomclosed") == [{"id": room_id, "reason": "node_lost"}]
            await lists_become([student], [])
            # the node is gone: a command for its room fails at once, clearly
            (gone,) = await student.call("join_room", {"id": room_id})
            assert gone["ok"] is False and gone["error"]["code"] == "room_not_found"


async def test_a_command_for_a_silent_node_fails_after_its_deadline(redis_server: RedisServer, prefix: str) -> None:
    """The room's node was killed but is not yet counted dead (a long TTL): the
    command does not hang; it fails with node_unavailable after the deadline."""
    ttl = 30.0
    async with open_nodes(redis_server, prefix, 1, node_ttl=ttl) as (a,), open_python_clients() as clients:
        student = await join(clients, a.url, 2, "sam")
        async with roomserver_process(redis_server, prefix, "silent", ttl) as (url, process):
            teacher, _, room_id = await seat_across(clients, url, a.url, "Silent", student=student)
            os.kill(process.pid, signal.SIGKILL)
            asked_at = trio.current_time()
            (reply,) = await student.call("race_results", {"id": room_id}, timeout=a.cluster.relay.timeout + 5)
            assert reply["ok"] is False and reply["error"]["code"] == "node_unavailable"
            assert "try again" in reply["error"]["message"]
            assert a.cluster.relay.timeout <= trio.current_time() - asked_at < a.cluster.relay.timeout + 2
            assert student.connected


async def test_a_redis_restart_mid_race_and_the_race_still_finishes(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2, node_ttl=1.5) as (a, b), open_python_clients() as clients:
        teacher = await join(clients, b.url, 1, "mia")
        local = await join(clients, b.url, 3, "kim")
        remote = await join(clients, a.url, 2, "sam")
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": SUMS})
        room_id = created["room"]["id"]
        await lists_become([remote], ["Sums"])
        for player in (local, remote):
            assert (await player.call("join_room", {"id": room_id}))[0]["ok"] is True
        (started,) = await teacher.call("start_race", {"id": room_id, "countdown": 0})
        race_id = started["race_id"]
        for player in (local, remote):
            (ack,) = await player.call("answer", {"id": room_id, "race_id": race_id, "card": 0, "answer": "2"})
            assert ack["correct"] is True
        await redis_server.restart()
        with trio.fail_after(15):  # both nodes have reconnected (their inbox streams too)
            await wait_until(lambda: a.cluster.subscriptions >= 2 and b.cluster.subscriptions >= 2)
        for player in (local, remote):
            (ack,) = await player.call("answer", {"id": room_id, "race_id": race_id, "card": 1, "answer": "4"})
            assert ack == {"ok": True, "card": 1, "correct": True, "next": None}
        for sock in (teacher, local, remote):
            (over,) = await sock.next_event("raceover")
            assert over["reason"] == "all_done" and {r["id"] for r in over["ranking"]} == {2, 3}
        # the lists converge again: both nodes list the room with both players
        for sock in (teacher, remote):
            with trio.fail_after(15):
                await wait_until(lambda s=sock: any(
                    r["id"] == room_id and {p["id"] for p in r["players"]} == {2, 3} and r["state"] == "finished"
                    for r in s.received("updaterooms")[-1][0]))
        assert all(s.connected for s in (teacher, local, remote))
        assert remote.received("roomclosed") == []  # a Redis restart is no lost node


async def test_a_graceful_shutdown_of_the_room_s_node(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2, node_ttl=1.5) as (a, b), open_python_clients() as clients:
        teacher, student, room_id = await seat_across(clients, b.url, a.url)
        with trio.fail_after(10):
            await b.shutdown()
        (closed,) = await student.next_event("roomclosed")
        assert closed["id"] == room_id and closed["reason"] in ("shutdown", "node_lost")
        await lists_become([student], [])
        assert student.connected


async def test_joining_an_unlisted_room_of_another_node_by_its_code(redis_server: RedisServer, prefix: str) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        teacher = await join(clients, b.url, 1, "mia")
        student = await join(clients, a.url, 2, "sam")
        (created,) = await teacher.call("create_room", {"name": "Secret", "deck": SUMS, "listed": False})
        room_id, code = created["room"]["id"], created["room"]["code"]
        with trio.fail_after(10):  # A's replica has it (though no list shows it)
            await wait_until(lambda: a.cluster.directory.room_of_code(code) == (room_id, "n1"))
        (joined,) = await student.call("join_room", {"code": code.lower()})
        assert joined["ok"] is True and joined["room"]["id"] == room_id
        (update,) = await student.next_event("roomupdated")
        assert update["room"]["code"] == code and [p["id"] for p in update["room"]["players"]] == [2]
        assert all(room["id"] != room_id for lst in student.received("updaterooms") for room in lst[0])
        # an unlisted room's id says nothing from another node either
        other = await join(clients, a.url, 3, "kim")
        (refused,) = await other.call("join_room", {"id": room_id})
        assert refused["error"]["code"] == "room_not_found"
        (unknown,) = await other.call("join_room", {"code": "ZZZZZZ"})
        assert unknown["error"]["code"] == "room_not_found"
