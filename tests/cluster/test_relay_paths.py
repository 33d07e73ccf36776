"""What a relayed command and a relayed shared event cost, and that they still arrive.

- A shared event (``racestart``, ``raceprogress``...) that a room on node B sends
  to several players of node A crosses Redis once, as one ``shared`` message
  listing their connections, and every one of them receives it: real
  redis-server, two nodes in the test's nursery, real python-socketio clients.
- The deadlines of relayed commands wait in one heap with one task (no task per
  command): a command unanswered for ``timeout`` gets ``node_unavailable``
  exactly then, an answered one never does. On trio's ``autojump_clock``,
  without Redis or sockets (the relay's outbox is read directly: it is what the
  node's publisher would write to B's inbox).
"""

from __future__ import annotations

import json
from typing import Any, cast

import trio
import trio.testing
from support.clusternodes import join, lists_become, open_nodes
from support.pyclient import open_python_clients
from support.redisserver import RedisServer

from roomactors.actors import Lobby
from roomactors.cluster.relay import NODE_UNAVAILABLE, Relay
from roomactors.socketio import Socket

DECK3 = {"name": "Sums", "flashcards": [
    {"id": 1, "problem": "1+1", "answer": "2"}, {"id": 2, "problem": "2+2", "answer": "4"},
]}


async def test_a_shared_event_for_two_players_of_a_node_crosses_redis_once_and_reaches_both(
    redis_server: RedisServer, prefix: str
) -> None:
    async with open_nodes(redis_server, prefix, 2) as (a, b), open_python_clients() as clients:
        teacher = await join(clients, b.url, 1, "mia")
        students = [await join(clients, a.url, 2, "sam"), await join(clients, a.url, 3, "ada")]
        (created,) = await teacher.call("create_room", {"name": "Sums", "deck": DECK3})
        room_id = created["room"]["id"]
        await lists_become(students, ["Sums"])
        for student in students:
            assert (await student.call("join_room", {"id": room_id}))[0]["ok"] is True
        relay = a.cluster.relay
        assert relay.shared_received.get("racestart") is None
        (started,) = await teacher.call("start_race", {"id": room_id, "countdown": 0})
        assert started["ok"] is True
        starts = [(await student.next_event("racestart"))[0] for student in students]
        assert starts[0] == starts[1] and [c["problem"] for c in starts[0]["cards"]] == ["1+1", "2+2"]
        assert relay.shared_received["racestart"] == 1  # one message for both
        assert relay.shared_delivered["racestart"] == 2
        # progress (newest-wins on the way) reaches both too, and each player's own
        # events (the answer's ack, raceover's "mine") stay their own
        (ack,) = await students[0].call("answer", {"id": room_id, "race_id": started["race_id"], "card": 0,
                                                   "answer": "2"})
        assert ack["correct"] is True
        for student in students:
            await student.next_event("raceprogress", where=lambda args: any(
                p["id"] == 2 and p["answered"] == 1 for p in args[0]["players"]))
        assert relay.shared_delivered["raceprogress"] >= 2
        assert relay.shared_received["raceprogress"] * 2 == relay.shared_delivered["raceprogress"]
        (ended,) = await teacher.call("end_race", {"id": room_id})
        assert ended == {"ok": True}
        overs = [(await student.next_event("raceover"))[0] for student in students]
        assert [[m["correct"] for m in over["mine"]] for over in overs] == [[True], []]


class _Socket:
    """What the relay reads of a socket that submits a command: its namespace and sid."""

    def __init__(self, sid: str) -> None:
        self.namespace = "/lobby"
        self.sid = sid


async def test_relayed_commands_time_out_at_their_deadlines_from_one_task(
    autojump_clock: trio.testing.MockClock,
) -> None:
    relay = Relay(
        "a", "t:", cast(Lobby, None), socket_of=lambda namespace, sid: None, owner_of=lambda room: "b",
        room_of_code=lambda code: None, timeout=5.0,
    )
    answers: list[tuple[str, float, dict[str, Any]]] = []

    def answer(name: str) -> Any:
        return lambda reply: answers.append((name, trio.current_time() - t0, reply))

    async with trio.open_nursery() as nursery:
        await nursery.start(relay.run)
        (relay_nursery,) = [task.child_nurseries[0] for task in nursery.child_tasks]
        tasks = len(relay_nursery.child_tasks)
        t0 = trio.current_time()
        for n, name in enumerate(("first", "second", "third")):
            relay.submit(cast(Socket, _Socket(f"s{n}")), "join_room", {"id": 7}, answer(name))
            await trio.sleep(1)
        for n in range(100):  # more in flight: still no task of their own
            relay.submit(cast(Socket, _Socket(f"more{n}")), "join_room", {"id": 7}, lambda reply: None)
        assert len(relay_nursery.child_tasks) == tasks
        sent = [json.loads(q.text) for q in relay.outbox.take()]
        assert [m["t"] for m in sent] == ["cmd"] * 103 and sent[0]["name"] == "join_room"
        # node b answers the second in time (at 3 s)
        relay.handle_inbox(json.dumps(
            {"t": "reply", "conn": sent[1]["conn"], "req": sent[1]["req"], "reply": {"ok": True, "room": {"id": 7}}}
        ))
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert [(name, when, reply.get("ok"), reply.get("error", {}).get("code")) for name, when, reply in answers] == [
        ("second", 3.0, True, None),
        ("first", 5.0, False, NODE_UNAVAILABLE),
        ("third", 7.0, False, NODE_UNAVAILABLE),
    ]
    assert "did not answer within 5 s" in answers[1][2]["error"]["message"]
