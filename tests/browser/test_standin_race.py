"""The browser test's stand-in server (``standin_server.mjs``) keeps race.md.

Why: the lobby page is proven against this stand-in as well as against roomserver,
so the stand-in must itself follow the contract the page is written to; a stand-in
that scored ``PARIS`` differently from the room actor would let the page drift.
Checked with python-socketio clients: the answer-matching rule as a table of
given/expected pairs, the race's error codes in race.md's order, a ranking tie,
that nothing sent before ``raceover`` carries an answer, and seat tokens with the
reconnect grace (race.md, "Identity", "Seats that outlive a connection").
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support.killable import start_killable
from support.pyclient import open_python_clients
from support.refservers import open_subprocess_server

HERE = Path(__file__).resolve().parent
STANDIN_SERVER = HERE / "standin_server.mjs"

#: (given, expected, correct): race.md's matching rule.
MATCHING = [
    ("42", "42", True),
    (" 42 ", "42", True),
    ("4.0", "4", True),
    ("8/2", "4", True),
    (4, "4", True),
    ("4", 4, True),
    ("0.75", "3/4", True),
    (0.1, "1/10", True),
    ("1E1", "10", True),
    ("-1/2", "-0.5", True),
    ("3/4", "0.7", False),
    ("PARIS", "Paris", True),
    ("  New   York ", "new york", True),
    ("Straße", "STRASSE", True),
    ("ＡＢＣ", "abc", True),  # NFKC: fullwidth letters
    ("１２", "12", True),  # NFKC: fullwidth digits, then a rational
    ("1e999999999", "1e999999999", True),  # as text: too big an exponent to parse
    ("1e21", "1000000000000000000000", False),  # beyond ±20: text only
    ("1/0", "1/0", True),  # not a rational, equal as text
    ("", "0", False),
    ("paris!", "Paris", False),
]


@pytest.fixture
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Node 20 is needed for the stand-in server)")
    if not (HERE.parent / "js" / "node_modules" / "socket.io").is_dir():
        pytest.skip("socket.io is not installed: run tests/browser/setup.sh (npm install in tests/js)")
    return node


async def ok(sock: Any, event: str, payload: dict[str, Any]) -> dict[str, Any]:
    (reply,) = await sock.call(event, payload)
    assert reply["ok"] is True, (event, payload, reply)
    return reply


async def code(sock: Any, event: str, payload: Any) -> str:
    (reply,) = await sock.call(event, payload)
    assert reply["ok"] is False, (event, payload, reply)
    return str(reply["error"]["code"])


class Room:
    """A teacher's room with players, over python-socketio clients."""

    def __init__(self, clients: Any, url: str) -> None:
        self.clients = clients
        self.url = url

    async def person(self, user_id: int, name: str) -> Any:
        sock = self.clients.connect(self.url, "/lobby", transports=["websocket"])
        await sock.wait_connected()
        await ok(sock, "join_lobby", {"id": user_id, "username": name})
        return sock


@pytest.fixture
async def standin(node: str) -> AsyncIterator[str]:
    async with open_subprocess_server([node, str(STANDIN_SERVER)], cwd=HERE) as url:
        yield url


async def test_the_matching_rule(standin: str) -> None:
    async with open_python_clients() as clients:
        room = Room(clients, standin)
        teacher = await room.person(1, "T")
        player = await room.person(2, "P")
        cards = [{"id": i + 1, "problem": f"card {i}", "answer": expected} for i, (_, expected, _) in enumerate(MATCHING)]
        created = await ok(teacher, "create_room", {"name": "Match", "deck": {"name": "d", "flashcards": cards}})
        room_id = created["room"]["id"]
        await ok(player, "join_room", {"id": room_id})
        race = await ok(teacher, "start_race", {"id": room_id, "countdown": 0})
        verdicts = []
        for index, (given, _, _) in enumerate(MATCHING):
            reply = await ok(player, "answer", {"id": room_id, "race_id": race["race_id"], "card": index, "answer": given})
            verdicts.append((given, reply["correct"]))
        assert verdicts == [(given, correct) for given, _, correct in MATCHING]
        (over,) = await player.next_event("raceover")
        assert over["reason"] == "all_done"
        assert [a["correct"] for a in over["mine"]] == [correct for _, _, correct in MATCHING]
        # Nothing before raceover carried an answer: racestart and raceprogress hold problems only.
        for name in ("racestart", "raceprogress", "updaterooms"):
            for args in player.received(name):
                assert "'answer':" not in repr(args), name


async def test_error_codes_in_order(standin: str) -> None:
    async with open_python_clients() as clients:
        room = Room(clients, standin)
        teacher = await room.person(1, "T")
        alice = await room.person(2, "Alice")
        bob = await room.person(3, "Bob")
        anon = clients.connect(standin, "/lobby", transports=["websocket"])
        await anon.wait_connected()
        deck = {"name": "d", "flashcards": [{"id": 1, "problem": "1+1", "answer": "2"}, {"id": 2, "problem": "2+2", "answer": "4"}]}
        room_id = (await ok(teacher, "create_room", {"name": "R", "deck": deck}))["room"]["id"]

        assert (await ok(anon, "time_sync", {"t0": 12.5}))["t0"] == 12.5
        assert await code(anon, "time_sync", {}) == "invalid_payload"
        assert await code(teacher, "start_race", {"id": room_id, "countdown": 11}) == "invalid_payload"
        assert await code(teacher, "start_race", {"id": room_id, "time_limit": 9}) == "invalid_payload"
        assert await code(teacher, "start_race", {"id": room_id, "shuffle": "yes"}) == "invalid_payload"
        assert await code(anon, "start_race", {"id": room_id}) == "not_in_lobby"
        assert await code(teacher, "start_race", {"id": 99}) == "room_not_found"
        assert await code(alice, "start_race", {"id": room_id}) == "not_host"
        assert await code(teacher, "start_race", {"id": room_id}) == "no_players"
        assert await code(teacher, "end_race", {"id": room_id}) == "not_racing"
        assert await code(teacher, "race_results", {"id": room_id}) == "race_not_found"
        assert await code(teacher, "kick_player", {"id": room_id, "user": 2}) == "not_in_room"

        await ok(alice, "join_room", {"id": room_id})
        await ok(bob, "join_room", {"id": room_id})
        race = await ok(teacher, "start_race", {"id": room_id, "countdown": 10})
        race_id = race["race_id"]
        assert race["end_at"] - race["start_at"] == 3600 * 1000
        answer = {"id": room_id, "race_id": race_id, "card": 0, "answer": "2"}
        assert await code(teacher, "start_race", {"id": room_id}) == "race_in_progress"
        assert await code(teacher, "race_results", {"id": room_id}) == "race_in_progress"
        assert await code(teacher, "answer", answer) == "not_racing"
        assert await code(alice, "answer", {**answer, "race_id": race_id + 1}) == "not_racing"
        assert await code(alice, "answer", answer) == "race_not_started"
        late = await room.person(4, "Late")
        assert await code(late, "join_room", {"id": room_id}) == "room_locked"
        await ok(teacher, "lock_room", {"id": room_id, "locked": False})
        assert await code(late, "join_room", {"id": room_id}) == "race_in_progress"
        await ok(teacher, "end_race", {"id": room_id})
        (over,) = await alice.next_event("raceover")
        assert over["reason"] == "host_ended"
        assert await code(alice, "answer", answer) == "race_over"

        # A tie: both answer both cards right at the same server millisecond is not
        # something a test can arrange, so the tie is on never answering.
        assert [(r["place"], r["answered"]) for r in over["ranking"]] == [(1, 0), (1, 0)]

        race_id = (await ok(teacher, "start_race", {"id": room_id, "countdown": 0}))["race_id"]
        answer = {"id": room_id, "race_id": race_id, "card": 0, "answer": "2"}
        assert await code(alice, "answer", {**answer, "card": 1}) == "wrong_card"
        assert (await ok(alice, "answer", answer)) == {"ok": True, "card": 0, "correct": True, "next": 1}
        await ok(teacher, "kick_player", {"id": room_id, "user": 2})
        (kicked,) = await alice.next_event("kicked")
        assert kicked == {"id": room_id}
        assert await code(alice, "answer", {**answer, "card": 1}) == "not_racing"
        assert await code(alice, "join_room", {"id": room_id}) == "banned"
        await ok(bob, "answer", {**answer, "answer": "3"})
        await ok(bob, "answer", {**answer, "card": 1, "answer": "4"})
        (over,) = await bob.next_event("raceover", where=lambda args: args[0]["race_id"] == race_id)
        assert over["reason"] == "all_done"
        # Alice's one right answer came first: she still ranks, removed or not.
        assert [(r["username"], r["place"], r["correct"], r["left"]) for r in over["ranking"]] == [
            ("Alice", 1, 1, True), ("Bob", 2, 1, False)]
        assert over["mine"] == [
            {"index": 0, "given": "3", "correct": False, "ms": over["mine"][0]["ms"]},
            {"index": 1, "given": "4", "correct": True, "ms": over["mine"][1]["ms"]},
        ]
        results = (await ok(teacher, "race_results", {"id": room_id}))["results"]
        assert results["race_id"] == race_id
        assert "mine" not in results
        assert [a["username"] for a in results["answers"]] == ["Alice", "Bob"]
        assert (await ok(teacher, "race_results", {"id": room_id, "race_id": race_id - 1}))["results"]["reason"] == "host_ended"
        assert await code(teacher, "race_results", {"id": room_id, "race_id": 99}) == "race_not_found"


async def test_seat_tokens_and_the_reconnect_grace(node: str) -> None:
    """A held id needs its token; a killed player's seat waits (connected: false),
    the token brings it back mid-race with racestate; a host who does not come back
    within the grace closes the room."""
    deck = {"name": "d", "flashcards": [{"id": 1, "problem": "1+1", "answer": "2"}, {"id": 2, "problem": "2+2", "answer": "4"}]}
    async with (
        open_subprocess_server([node, str(STANDIN_SERVER), "--reconnect-grace", "2"], cwd=HERE) as url,
        open_python_clients() as clients,
        trio.open_nursery() as nursery,
    ):
        room = Room(clients, url)
        teacher = await room.person(1, "T")
        room_id = (await ok(teacher, "create_room", {"name": "R", "deck": deck}))["room"]["id"]
        pia = await start_killable(nursery, url, "pia", "websocket", str(room_id), "2")
        assert await pia.line() == {"ready": True}
        race = await ok(teacher, "start_race", {"id": room_id, "countdown": 0})
        said = await pia.line()
        assert said["ack"]["correct"] is True and isinstance(said["token"], str) and len(said["token"]) >= 22

        def pia_as(connected: bool) -> dict[str, Any]:
            return {"id": "pia", "username": "pia", "auth_level": None, "connected": connected}

        await pia.kill()
        await teacher.next_event("roomupdated", where=lambda a: a[0]["room"]["players"] == [pia_as(False)])
        back = clients.connect(url, "/lobby", transports=["websocket"])
        await back.wait_connected()
        assert await code(back, "join_lobby", {"id": "pia"}) == "identity_taken"
        reply = await ok(back, "join_lobby", {"id": "pia", "token": said["token"]})
        assert reply["room"] == room_id and reply["token"] != said["token"]
        (state,) = await back.next_event("racestate")
        assert (state["race_id"], state["next"]) == (race["race_id"], 1)
        await teacher.next_event("roomupdated", where=lambda a: a[0]["room"]["players"] == [pia_as(True)])

        # a second tab with the token takes over; the first is told
        tab = clients.connect(url, "/lobby", transports=["websocket"])
        await tab.wait_connected()
        await ok(tab, "join_lobby", {"id": "pia", "token": reply["token"]})
        await back.next_event("replaced")

        host = await start_killable(nursery, url, "teacher2", "websocket", "host", json.dumps(deck))
        made = await host.line()
        sam = await room.person(3, "Sam")
        await ok(sam, "join_room", {"id": made["room"]})
        await host.kill()
        await sam.next_event("roomupdated", where=lambda a: a[0]["room"]["host"]["connected"] is False)
        with trio.fail_after(15):  # the grace (2 s), then the room closes
            assert await sam.next_event("roomclosed") == [{"id": made["room"], "reason": "host_disconnected"}]
