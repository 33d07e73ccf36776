"""Seats that outlive a connection, end to end (race.md): python-socketio clients
killed at the socket level (a process killed with SIGKILL: no goodbye), coming
back on a new connection with their seat token, and finishing the race with the
answers they gave before. Real sockets on 127.0.0.1, port 0; real time (the
client processes run on the machine's clock), so the grace here is short.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from support.clients import open_clients
from support.killable import start_killable
from support.roomapp import Served, ack_of, serve_room_app

from roomactors.actors import RoomLimits
from roomactors.engineio import EngineIOConfig

GRACE = 3.0
ANSWERS = ("kiwi-ANSWER-zero", "3/4", "lynx-ANSWER-two")
DECK = {"name": "Race", "flashcards": [{"id": i, "problem": f"p{i}", "answer": a} for i, a in enumerate(ANSWERS)]}


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    # a short heartbeat: a polling client killed between two polls is noticed by it
    heartbeat = EngineIOConfig(ping_interval=1.0, ping_timeout=1.0)
    async with serve_room_app(RoomLimits(command_rate=None, reconnect_grace=GRACE), heartbeat) as served:
        yield served


def connected_of(user_id: str, expected: bool) -> Any:
    def check(args: list[Any]) -> bool:
        return any(
            person["id"] == user_id and person["connected"] is expected
            for room in args[0] for person in [room["host"], *room["players"]]
        )
    return check


def progress_shows(user_id: str, connected: bool) -> Any:
    def check(args: list[Any]) -> bool:
        return any(p["id"] == user_id and p["connected"] is connected for p in args[0]["players"])
    return check


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_players_killed_mid_race_come_back_and_finish(served: Served, transport: str) -> None:
    async with open_clients("python") as clients, trio.open_nursery() as nursery:
        host = clients.connect(served.url, "/lobby")
        await host.wait_connected()
        await ack_of(host, "join_lobby", {"id": "teacher", "auth_level": "teacher"})
        room = (await ack_of(host, "create_room", {"name": "R", "deck": DECK}))["room"]["id"]
        pia = await start_killable(nursery, served.url, "pia", transport, str(room), ANSWERS[0])
        bo = await start_killable(nursery, served.url, "bo", transport, str(room), "wrong")
        for player in (pia, bo):
            assert await player.line() == {"ready": True}
        start = await ack_of(host, "start_race", {"id": room, "countdown": 0})
        pia_said, bo_said = await pia.line(), await bo.line()
        assert pia_said["ack"] == {"ok": True, "card": 0, "correct": True, "next": 1}
        assert bo_said["ack"]["correct"] is False

        await pia.kill()
        await bo.kill()
        await host.next_event("updaterooms", where=connected_of("pia", False))
        await host.next_event("raceprogress", where=progress_shows("pia", False))

        back = clients.connect(served.url, "/", transports=[transport])
        await back.wait_connected()
        assert (await ack_of(back, "join_lobby", {"id": "pia"}))["error"]["code"] == "identity_taken"
        ack = await ack_of(back, "join_lobby", {"id": "pia", "token": pia_said["token"]})
        assert ack["ok"] is True and ack["room"] == room
        (state,) = await back.next_event("racestate")
        assert state["next"] == 1 and state["end_at"] == start["end_at"]
        await host.next_event("updaterooms", where=connected_of("pia", True))
        for card in (1, 2):
            await ack_of(back, "answer", {"id": room, "race_id": start["race_id"], "card": card, "answer": ANSWERS[card]})
        # bo never comes back: when its grace ends it leaves, and the race is all done
        (over,) = await back.next_event("raceover", timeout=GRACE + 10)
        assert over["reason"] == "all_done"
        assert [g["given"] for g in over["mine"]] == list(ANSWERS)  # the answer given before the kill kept
        ranking = {r["id"]: (r["correct"], r["left"]) for r in over["ranking"]}
        assert ranking == {"pia": (3, False), "bo": (0, True)}
        assert (await host.next_event("raceover"))[0]["ranking"] == over["ranking"]


async def test_a_host_killed_mid_race_comes_back_and_the_race_runs_on(served: Served) -> None:
    async with open_clients("python") as clients, trio.open_nursery() as nursery:
        teacher = await start_killable(nursery, served.url, "teacher", "websocket", "host", json.dumps(DECK))
        made = await teacher.line()
        room = made["room"]
        player = clients.connect(served.url, "/lobby")
        await player.wait_connected()
        await ack_of(player, "join_lobby", {"id": "sam"})
        await ack_of(player, "join_room", {"id": room})
        await teacher.say("start")
        race_id = (await teacher.line())["ack"]["race_id"]
        await player.next_event("racestart")
        await teacher.kill()
        await player.next_event("updaterooms", where=connected_of("teacher", False))
        # the race runs on while the host is away
        assert (await ack_of(player, "answer", {"id": room, "race_id": race_id, "card": 0, "answer": ANSWERS[0]}))["ok"]
        back = clients.connect(served.url, "/lobby")
        await back.wait_connected()
        ack = await ack_of(back, "join_lobby", {"id": "teacher", "token": made["token"]})
        assert ack["room"] == room
        (state,) = await back.next_event("racestate")
        assert state["next"] is None and state["progress"][0]["answered"] == 1
        await player.next_event("updaterooms", where=connected_of("teacher", True))
        assert (await ack_of(back, "end_race", {"id": room}))["ok"] is True
        (over,) = await player.next_event("raceover")
        assert over["reason"] == "host_ended" and over["mine"][0]["given"] == ANSWERS[0]
        assert player.received("roomclosed") == []


async def test_a_host_who_does_not_come_back_closes_the_room_after_the_grace(served: Served) -> None:
    async with open_clients("python") as clients, trio.open_nursery() as nursery:
        teacher = await start_killable(nursery, served.url, "teacher", "websocket", "host", json.dumps(DECK))
        room = (await teacher.line())["room"]
        player = clients.connect(served.url, "/lobby")
        await player.wait_connected()
        await ack_of(player, "join_lobby", {"id": "sam"})
        await ack_of(player, "join_room", {"id": room})
        await teacher.say("start")
        await teacher.line()
        await teacher.kill()
        killed_at = trio.current_time()
        (over,) = await player.next_event("raceover", timeout=GRACE + 10)
        assert trio.current_time() - killed_at >= GRACE - 0.1
        assert over["reason"] == "host_disconnected"
        assert await player.next_event("roomclosed") == [{"id": room, "reason": "host_disconnected"}]
        names = player.names()
        assert names.index("raceover") < names.index("roomclosed")
