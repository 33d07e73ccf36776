"""Relayed messages survive a Redis outage: the inbox is a stream, the outbox waits.

A student on node A races in a teacher's room on node B; Redis is stopped (its
process ends: every connection breaks) and started again, empty, on the same
port, as an operator's restart looks. Real redis-server, real nodes in the test's
nursery, real python-socketio clients; plus the outbox and the inbox reader on
their own (the reader against the real redis-server).
"""

from __future__ import annotations

import json
import time
from typing import Any

import trio
from support.clusternodes import DECK, lists_become, open_nodes, seat_across
from support.pyclient import PySocket, PythonClients, open_python_clients
from support.redisserver import RedisServer
from support.waiting import wait_until

from roomactors.cluster.inbox import InboxReader, Outbox, Queued
from roomactors.cluster.link import connect
from roomactors.server import RoomServer

async def _seated(
    clients: PythonClients, a: RoomServer, b: RoomServer, **race: Any
) -> tuple[PySocket, PySocket, int, int]:
    """A teacher on B with a room racing, a student on A seated in it: (teacher, student, room, race)."""
    teacher, student, room_id = await seat_across(clients, b.url, a.url)
    (started,) = await teacher.call("start_race", {"id": room_id, "countdown": 0, **race})
    assert started["ok"] is True
    await student.next_event("racestart")
    return teacher, student, room_id, started["race_id"]


async def _redis_down(redis: RedisServer, *nodes: RoomServer) -> None:
    await redis.stop()
    with trio.fail_after(10):  # every node has noticed (its pub/sub connection broke)
        await wait_until(lambda: not any(n.cluster.health.reachable for n in nodes))


async def test_events_of_a_race_ended_during_an_outage_reach_the_relayed_player(
    redis_server: RedisServer, prefix: str
) -> None:
    async with open_nodes(redis_server, prefix, 2, node_ttl=1.5) as (a, b), open_python_clients() as clients:
        teacher, student, room_id, race_id = await _seated(clients, a, b)
        (ack,) = await student.call("answer", {"id": room_id, "race_id": race_id, "card": 0, "answer": "2"})
        assert ack["correct"] is True
        await _redis_down(redis_server, a, b)
        # on B (its own clients go on): the host ends the race, then leaves, which closes the room
        assert (await teacher.call("end_race", {"id": room_id}))[0] == {"ok": True}
        (over,) = await teacher.next_event("raceover")
        assert over["reason"] == "host_ended"
        assert (await teacher.call("leave_room", {"id": room_id}))[0] == {"ok": True}
        with trio.fail_after(10):  # B keeps the student's raceover and roomclosed for Redis
            await wait_until(lambda: b.cluster.relay_waiting >= 2)
        assert student.received("raceover") == []
        await redis_server.start()  # empty, on the same port
        (student_over,) = await student.next_event("raceover", timeout=15)
        assert student_over["reason"] == "host_ended" and student_over["race_id"] == race_id
        assert [m["correct"] for m in student_over["mine"]] == [True]
        assert await student.next_event("roomclosed") == [{"id": room_id, "reason": "host_left"}]
        names = [n for n in student.names() if n in ("raceover", "roomclosed")]
        assert names == ["raceover", "roomclosed"]  # in the order B sent them
        # back in A's lobby, still connected, and the lists converge without the room
        await lists_become([student, teacher], [])
        assert student.connected and teacher.connected
        (mine,) = await student.call("create_room", {"name": "Mine", "deck": DECK})
        assert mine["ok"] is True


async def test_a_race_whose_time_runs_out_during_a_long_outage_ends_for_the_relayed_player(
    redis_server: RedisServer, prefix: str
) -> None:
    async with open_nodes(redis_server, prefix, 2, node_ttl=1.5) as (a, b), open_python_clients() as clients:
        teacher, student, room_id, race_id = await _seated(clients, a, b, time_limit=10)
        await _redis_down(redis_server, a, b)
        # The outage lasts until the race's time is up on B (10 s, the shortest
        # limit): longer than the liveness TTL and than any command's deadline.
        (over,) = await teacher.next_event("raceover", timeout=20)
        assert over["reason"] == "time_up"
        await redis_server.start()
        (student_over,) = await student.next_event("raceover", timeout=15)
        assert student_over["reason"] == "time_up" and student_over["race_id"] == race_id
        assert student_over["mine"] == []  # never answered
        # still seated, not node_lost: a command for the room works again
        assert (await student.call("leave_room", {"id": room_id}))[0] == {"ok": True}
        assert student.received("roomclosed") == [] and student.connected


async def test_a_command_sent_during_a_short_outage_succeeds_once_redis_is_back(
    redis_server: RedisServer, prefix: str
) -> None:
    async with open_nodes(redis_server, prefix, 2, node_ttl=1.5) as (a, b), open_python_clients() as clients:
        teacher, student, room_id, race_id = await _seated(clients, a, b)
        await _redis_down(redis_server, a, b)
        replies: list[list[Any]] = []

        async def answer() -> None:
            replies.append(await student.call(
                "answer", {"id": room_id, "race_id": race_id, "card": 0, "answer": "2"}, timeout=10))

        async with trio.open_nursery() as nursery:
            asked_at = trio.current_time()
            nursery.start_soon(answer)
            with trio.fail_after(5):
                await wait_until(lambda: a.cluster.relay_waiting >= 1)  # A holds the command
            # The outage itself must last a while (a few failed retries of A's
            # publisher), yet end well within the command's 5 s deadline.
            await trio.sleep(0.5)
            await redis_server.start()
        assert replies == [[{"ok": True, "card": 0, "correct": True, "next": 1}]]
        assert trio.current_time() - asked_at < a.cluster.relay.timeout
        # B took the answer: the host sees the student's progress
        await teacher.next_event("raceprogress", where=lambda args: any(
            p["id"] == 2 and p["answered"] == 1 and p["correct"] == 1 for p in args[0]["players"]))
        assert student.connected


# --- the outbox, on its own ------------------------------------------------------------


def _event(outbox: Outbox, stream: str, conn: str, event: str, key: str | None, n: int) -> None:
    """An event for one connection, queued as the relay does (relay.py's format)."""
    text = json.dumps({"t": "event", "conn": conn, "event": event, "payload": {"n": n}, "key": key})
    outbox.put(stream, text, conn=conn, key=key)


def _command(outbox: Outbox, deadline: float) -> None:
    text = json.dumps({"t": "cmd", "conn": "c", "req": 1, "name": "answer", "payload": {}, "deadline": deadline})
    outbox.put("in:b", text, deadline=deadline)


def _payloads(batch: list[Queued]) -> list[tuple[str, Any]]:
    return [(json.loads(q.text).get("event", "cmd"), json.loads(q.text).get("payload", {}).get("n")) for q in batch]


def test_the_outbox_keeps_order_and_replaces_superseded_newest_wins_events() -> None:
    outbox = Outbox(limit=100)
    _event(outbox, "in:b", "c1", "raceprogress", "raceprogress", 1)
    _event(outbox, "in:b", "c1", "racestart", None, 2)
    _event(outbox, "in:b", "c2", "raceprogress", "raceprogress", 3)  # another connection: kept
    _event(outbox, "in:b", "c1", "raceprogress", "raceprogress", 4)  # replaces 1
    _event(outbox, "in:b", "c1", "raceover", None, 5)
    assert outbox.replaced == 1 and len(outbox) == 4
    batch = outbox.take()
    assert _payloads(batch) == [("racestart", 2), ("raceprogress", 3), ("raceprogress", 4), ("raceover", 5)]
    assert [q.seq for q in batch] == [1, 2, 3, 4]  # per stream: the reader's duplicate check
    _event(outbox, "in:c", "c9", "raceprogress", "raceprogress", 6)
    _event(outbox, "in:b", "c1", "raceprogress", "raceprogress", 7)  # the taken one is gone: queued anew
    assert [(q.stream, q.seq) for q in outbox.take()] == [("in:c", 1), ("in:b", 5)]


def test_a_full_outbox_drops_expired_commands_then_old_newest_wins_events_then_new_messages() -> None:
    clock = [1000.0]
    outbox = Outbox(limit=4, now=lambda: clock[0], monotonic=lambda: clock[0])
    _command(outbox, deadline=1005)
    _event(outbox, "in:b", "c1", "raceprogress", "raceprogress", 1)
    _event(outbox, "in:b", "c1", "raceover", None, 2)
    _command(outbox, deadline=1010)
    clock[0] = 1006.0  # the first command is past its deadline: it goes first
    _event(outbox, "in:b", "c2", "raceover", None, 3)
    assert _payloads(list(outbox._queue.values())) == [
        ("raceprogress", 1), ("raceover", 2), ("cmd", None), ("raceover", 3)]
    _event(outbox, "in:b", "c3", "roomclosed", None, 4)  # then the oldest newest-wins event
    assert _payloads(list(outbox._queue.values())) == [
        ("raceover", 2), ("cmd", None), ("raceover", 3), ("roomclosed", 4)]
    _event(outbox, "in:b", "c4", "kicked", None, 5)  # nothing left to give up: the new one is dropped
    assert outbox.dropped == 1 and len(outbox) == 4


def _shared(outbox: Outbox, stream: str, source: object, conns: list[str], key: str | None, n: int) -> None:
    """A shared event handed to each member in turn, as a room does (relay.py's RelayedClient)."""
    for conn in conns:
        outbox.put_shared(stream, source, "raceprogress" if key else "racestart", key, conn, json.dumps({"n": n}))


def _fanouts(batch: list[Queued]) -> list[tuple[str, Any, list[str]]]:
    return [(m["event"], m["payload"]["n"], m["conns"]) for m in (json.loads(q.text) for q in batch)]


def test_a_shared_event_goes_to_each_node_once_listing_its_connections() -> None:
    outbox = Outbox(limit=100)
    start, progress = object(), object()  # two events of a room (identity: which members share one)
    _shared(outbox, "in:a", start, ["a1", "a2"], None, 1)
    _shared(outbox, "in:c", start, ["c1"], None, 1)
    _shared(outbox, "in:a", start, ["a3"], None, 1)  # in:a's newest message is still this event's
    _shared(outbox, "in:a", progress, ["a1", "a2", "a3"], "raceprogress", 2)
    assert len(outbox) == 3
    batch = outbox.take()
    assert [q.stream for q in batch] == ["in:a", "in:c", "in:a"]
    assert _fanouts(batch) == [
        ("racestart", 1, ["a1", "a2", "a3"]), ("racestart", 1, ["c1"]), ("raceprogress", 2, ["a1", "a2", "a3"])]
    assert json.loads(batch[2].text)["key"] == "raceprogress"


def test_a_shared_event_queued_after_another_message_starts_a_new_one_and_keeps_the_order() -> None:
    outbox = Outbox(limit=100)
    closed = object()
    _shared(outbox, "in:a", closed, ["a1"], None, 1)
    _event(outbox, "in:a", "a1", "raceover", None, 2)  # something else for that node in between
    _shared(outbox, "in:a", closed, ["a2"], None, 1)
    batch = outbox.take()
    assert [json.loads(q.text).get("conns", json.loads(q.text).get("conn")) for q in batch] == [["a1"], "a1", ["a2"]]


def test_a_newer_shared_event_replaces_each_connections_older_one() -> None:
    outbox = Outbox(limit=100)
    _shared(outbox, "in:a", object(), ["a1", "a2", "a3"], "raceprogress", 1)
    _event(outbox, "in:a", "a1", "racestart", None, 2)
    # a newer progress for a1 and a2 only (a3 left): the older one keeps a3 alone
    _shared(outbox, "in:a", object(), ["a1", "a2"], "raceprogress", 3)
    assert outbox.replaced == 2
    _event(outbox, "in:a", "a3", "raceprogress", "raceprogress", 4)  # and then a3's own newer one
    assert outbox.replaced == 3
    batch = outbox.take()
    assert [(json.loads(q.text)["event"], json.loads(q.text)["payload"]["n"]) for q in batch] == [
        ("racestart", 2), ("raceprogress", 3), ("raceprogress", 4)]
    assert json.loads(batch[1].text)["conns"] == ["a1", "a2"]
    # a full outbox gives up the oldest newest-wins message, fan-out or not
    small = Outbox(limit=2, now=lambda: 0.0, monotonic=lambda: 0.0)
    _shared(small, "in:a", object(), ["a1", "a2"], "raceprogress", 5)
    _event(small, "in:a", "a1", "racestart", None, 6)
    _event(small, "in:a", "a2", "raceover", None, 7)
    assert _payloads(small.take()) == [("racestart", 6), ("raceover", 7)]


# --- the inbox reader, against the real redis-server -------------------------------------


async def test_the_reader_takes_a_stream_restarted_below_its_id_and_skips_duplicates(
    redis_server: RedisServer, prefix: str
) -> None:
    stream = f"{prefix}inbox:x"
    handled: list[str] = []
    reader = InboxReader(stream, handled.append)
    ready = trio.Event()
    async with connect(redis_server.url) as client, trio.open_nursery() as nursery:
        await client.xadd(stream, {"from": "old/1", "n": "1", "m": "before the node started"})
        nursery.start_soon(reader.read, client, ready.set)
        await ready.wait()
        async with connect(redis_server.url) as writer:
            now_ms = int(time.time() * 1000)
            await writer.xadd(stream, {"from": "s/1", "n": "1", "m": "one"}, identifier=f"{now_ms + 60_000}-0")
            with trio.fail_after(10):
                await wait_until(lambda: handled == ["one"])
            # Redis lost the stream and its clock is behind ours: ids below the reader's
            await writer.delete([stream])
            await writer.xadd(stream, {"from": "s/1", "n": "1", "m": "one again"}, identifier="5-0")  # a duplicate
            await writer.xadd(stream, {"from": "s/1", "n": "2", "m": "two"}, identifier="6-0")
            await writer.xadd(stream, {"from": "s/1", "n": "4", "m": "four"}, identifier="7-0")  # 3 was lost
            with trio.fail_after(10):
                await wait_until(lambda: handled == ["one", "two", "four"], state=lambda: handled)
        assert (reader.duplicates, reader.lost) == (1, 1)
        nursery.cancel_scope.cancel()
