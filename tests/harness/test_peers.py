"""The benchmark peers (bench/peers) follow the room protocol: the worked example of
protocol.md, the rules a benchmark run leans on, and the race of race.md (a whole
race, the error order, the matching rule), through both client harnesses.

Why: the benchmark compares roomactors with these peers, which is only fair if
they do the same work; these tests pin them to the contract.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from support.clientapi import ConnectRefused
from support.clients import Clients, ClientSocket, client_params, open_clients
from support.killable import start_killable
from support.refservers import open_node_peer, open_pysocketio_peer

pytestmark = pytest.mark.node

MIA = {"id": 1, "username": "mia", "auth_level": "teacher"}
SAM = {"id": 2, "username": "sam", "auth_level": "student"}
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
DECK = {"name": "Week 3", "flashcards": [{"id": 1, "problem": "1/2+1/4", "answer": "3/4"}]}


@pytest.fixture(params=["node", "pysocketio"])
async def peer_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    opener = open_node_peer if request.param == "node" else open_pysocketio_peer
    async with opener() as url:
        yield url


SEAT_TOKEN = re.compile(r"[A-Za-z0-9_-]{24}")  # 18 random bytes, base64url (race.md asks >= 128 bits)


async def joined(clients: Clients, url: str, user: dict[str, Any], namespace: str = "/lobby") -> ClientSocket:
    sock, _ = await joined_with_token(clients, url, user, namespace)
    return sock


async def joined_with_token(
    clients: Clients, url: str, user: dict[str, Any], namespace: str = "/lobby"
) -> tuple[ClientSocket, str]:
    """A connection that joined the lobby as ``user``, and the seat token of its ack."""
    sock = clients.connect(url, namespace)
    (reply,) = await sock.call("join_lobby", user)
    token = reply.pop("token", None)
    assert isinstance(token, str) and SEAT_TOKEN.fullmatch(token), token
    assert reply == {"ok": True, "user": {"username": None, "auth_level": None, **user}, "room": None}
    (rooms,) = await sock.next_event("updaterooms")
    assert isinstance(rooms, list)
    return sock, token


def error_code(reply: list[Any]) -> str:
    assert reply[0]["ok"] is False, reply
    return str(reply[0]["error"]["code"])


@pytest.mark.parametrize("client_kind", client_params())
async def test_worked_example(peer_url: str, client_kind: str) -> None:
    await run_worked_example(peer_url, client_kind)


@pytest.mark.parametrize("transport", ["polling", "websocket"])
async def test_worked_example_on_one_transport(peer_url: str, transport: str) -> None:
    await run_worked_example(peer_url, "python", transports=[transport])


async def run_worked_example(peer_url: str, client_kind: str, **options: Any) -> None:
    async with open_clients(client_kind) as clients:
        a = clients.connect(peer_url, "/lobby", **options)
        b = clients.connect(peer_url, "/lobby", **options)
        a.emit("join_lobby", MIA)
        assert await a.next_event("updaterooms") == [[]]
        b.emit("join_lobby", SAM)
        assert await b.next_event("updaterooms") == [[]]

        (reply,) = await a.call("create_room", {"name": "Fractions", "deck": DECK})
        assert reply["ok"] is True
        room = reply["room"]
        assert re.fullmatch(f"[{CODE_ALPHABET}]{{6}}", room["code"])
        assert {k: v for k, v in room.items() if k != "code"} == {
            "id": 1,
            "name": "Fractions",
            "host": {**MIA, "connected": True},
            "deck": {
                "id": None, "name": "Week 3", "description": None, "numProblems": 1, "user_id": None,
                "user_name": None, "created": None, "changed": None, "private": None,
            },
            "players": [],
            "max_players": 50,
            "state": "waiting",
            "locked": False,
        }  # fmt: skip
        assert room["host"] == {**MIA, "connected": True}
        for sock in (a, b):
            assert await sock.next_event("updaterooms", where=lambda args: len(args[0]) == 1) == [[room]]

        b.emit("join_room", {"id": 1})
        with_sam = {**room, "players": [{**SAM, "connected": True}]}
        for sock in (a, b):
            assert await sock.next_event("updaterooms", where=lambda args: args[0][0]["players"]) == [[with_sam]]

        a.emit("leave_room", {"id": 1})
        assert await b.next_event("roomclosed") == [{"id": 1, "reason": "host_left"}]
        for sock in (a, b):
            assert await sock.next_event("updaterooms", where=lambda args: args[0] == []) == [[]]
        names = b.names()
        assert names.index("roomclosed") < len(names) - 1 - names[::-1].index("updaterooms")
        assert "roomclosed" not in a.names()
        assert "rejected" not in a.names() + b.names()


async def test_errors_in_contract_order(peer_url: str) -> None:
    async with open_clients("node") as clients:
        anon = clients.connect(peer_url, "/")
        assert error_code(await anon.call("join_room", "not an object")) == "invalid_payload"
        assert error_code(await anon.call("join_room", {"id": 0})) == "invalid_payload"
        assert error_code(await anon.call("join_room", {"id": 1})) == "not_in_lobby"
        assert error_code(await anon.call("create_room", {"name": "r", "deck": DECK})) == "not_in_lobby"
        assert error_code(await anon.call("create_room", {"name": " ", "deck": DECK})) == "invalid_payload"

        mia = await joined(clients, peer_url, MIA)
        assert error_code(await mia.call("join_lobby", SAM)) == "identity_mismatch"
        assert error_code(await mia.call("leave_lobby", {"id": 2})) == "forbidden"
        assert error_code(await mia.call("join_room", {"id": 99})) == "room_not_found"
        assert error_code(await mia.call("leave_room", {"id": 99})) == "room_not_found"
        (made,) = await mia.call("create_room", {"name": "R", "deck": {"name": "D", "flashcard": [{"id": "c", "problem": 1, "solution": 2}]}})
        assert made["ok"] is True and made["room"]["deck"]["numProblems"] == 1
        assert error_code(await mia.call("create_room", {"name": "R2", "deck": DECK})) == "already_in_room"
        assert error_code(await mia.call("join_room", {"id": 99})) == "room_not_found"

        sam = await joined(clients, peer_url, SAM)
        assert error_code(await sam.call("leave_room", {"id": made["room"]["id"]})) == "not_in_room"

        # Without an ack, a failure comes back as `rejected`.
        sam.emit("join_room", {"id": 12345})
        (rejected,) = await sam.next_event("rejected")
        assert (rejected["event"], rejected["code"]) == ("join_room", "room_not_found")


async def test_players_in_joining_order_and_answers_never_shown(peer_url: str) -> None:
    async with open_clients("node") as clients:
        host = await joined(clients, peer_url, MIA)
        (made,) = await host.call("create_room", {"name": "R", "deck": DECK})
        players = [await joined(clients, peer_url, {"id": f"p{n}"}) for n in range(2)]
        for p in players:
            (reply,) = await p.call("join_room", {"id": made["room"]["id"]})
            assert reply["ok"] is True
        (rooms,) = await host.next_event("updaterooms", where=lambda args: len(args[0][0]["players"]) == 2)
        assert [p["id"] for p in rooms[0]["players"]] == ["p0", "p1"]
        assert "3/4" not in repr(host.events)


@pytest.mark.parametrize("peer", ["node", "pysocketio"])
async def test_limits_from_flags(peer: str) -> None:
    opener = open_node_peer if peer == "node" else open_pysocketio_peer
    async with opener("--max-rooms", "1", "--max-players", "1") as url, open_clients("node") as clients:
        host = await joined(clients, url, MIA)
        (made,) = await host.call("create_room", {"name": "R", "deck": DECK})
        assert made["room"]["max_players"] == 1
        sam = await joined(clients, url, SAM)
        assert error_code(await sam.call("create_room", {"name": "R2", "deck": DECK})) == "too_many_rooms"
        assert (await sam.call("join_room", {"id": 1}))[0]["ok"] is True
        third = await joined(clients, url, {"id": 3})
        assert error_code(await third.call("join_room", {"id": 1})) == "room_full"


@pytest.mark.parametrize("peer", ["node", "pysocketio"])
async def test_rate_limit_comes_first(peer: str) -> None:
    opener = open_node_peer if peer == "node" else open_pysocketio_peer
    async with opener("--command-rate", "0.001", "--command-burst", "3") as url, open_clients("node") as clients:
        sock = clients.connect(url)
        codes = [error_code(await sock.call("join_room", "bad")) for _ in range(4)]
        assert codes == ["invalid_payload"] * 3 + ["rate_limited"]


async def test_unknown_namespace_is_refused(peer_url: str) -> None:
    async with open_clients("node") as clients:
        sock = clients.connect(peer_url, "/nope")
        with pytest.raises(ConnectRefused, match="Invalid namespace"):
            await sock.wait_connected()


async def test_takeover_across_namespaces_keeps_the_host_seat(peer_url: str) -> None:
    async with open_clients("node") as clients:
        old, token = await joined_with_token(clients, peer_url, MIA, namespace="/")
        (made,) = await old.call("create_room", {"name": "R", "deck": DECK})
        new = clients.connect(peer_url, "/lobby")
        (reply,) = await new.call("join_lobby", {"id": 1, "username": "mia2", "token": token})
        assert SEAT_TOKEN.fullmatch(reply.pop("token")) and reply == {
            "ok": True, "user": {**MIA, "username": "mia2"}, "room": made["room"]["id"]
        }
        (replaced,) = await old.next_event("replaced")
        assert isinstance(replaced["reason"], str)
        assert await old.next_event("disconnect") == ["server disconnect"]
        (rooms,) = await new.next_event("updaterooms", where=lambda args: args[0] and args[0][0]["host"]["username"] == "mia2")
        assert rooms[0]["id"] == made["room"]["id"]


async def test_a_held_id_needs_its_seat_token(peer_url: str) -> None:
    """race.md "Identity": without the seat's token a second connection gets
    identity_taken and the first stays; with it, it takes over; every join issues
    a new token and the previous one stops working."""
    async with open_clients("node") as clients:
        first, token = await joined_with_token(clients, peer_url, SAM)
        other = clients.connect(peer_url, "/lobby")
        assert error_code(await other.call("join_lobby", SAM)) == "identity_taken"
        assert error_code(await other.call("join_lobby", {**SAM, "token": "not-the-token"})) == "identity_taken"
        assert error_code(await other.call("join_lobby", {**SAM, "token": 7})) == "invalid_payload"
        assert error_code(await other.call("create_room", {"name": "R", "deck": DECK, "host": SAM})) == "identity_taken"
        # nothing changed: the first connection still speaks for sam, unreplaced
        (rooms,) = await first.call("join_room", {"id": 99})
        assert rooms["error"]["code"] == "room_not_found"
        assert "replaced" not in first.names()

        (reply,) = await other.call("join_lobby", {**SAM, "token": token})
        assert reply["ok"] is True and reply["user"] == SAM
        new_token = reply["token"]
        assert SEAT_TOKEN.fullmatch(new_token) and new_token != token
        (replaced,) = await first.next_event("replaced")
        assert isinstance(replaced["reason"], str)
        assert await first.next_event("disconnect") == ["server disconnect"]

        # the old token stopped working; the new one takes the seat (create_room's host too)
        third = clients.connect(peer_url, "/")
        assert error_code(await third.call("join_lobby", {**SAM, "token": token})) == "identity_taken"
        (made,) = await third.call("create_room", {"name": "R", "deck": DECK, "host": {**SAM, "token": new_token}})
        assert made["ok"] is True and SEAT_TOKEN.fullmatch(made["token"])
        await other.next_event("replaced")

        # an id nobody holds is free, token or not
        (free,) = await clients.connect(peer_url, "/").call("join_lobby", {"id": "newcomer", "token": token})
        assert free["ok"] is True


async def test_host_disconnect_closes_the_room(peer_url: str) -> None:
    async with open_clients("node") as clients:
        host = await joined(clients, peer_url, MIA)
        sam = await joined(clients, peer_url, SAM)
        (made,) = await host.call("create_room", {"name": "R", "deck": DECK})
        await sam.call("join_room", {"id": made["room"]["id"]})
        await host.disconnect()
        assert await sam.next_event("roomclosed") == [{"id": made["room"]["id"], "reason": "host_disconnected"}]
        assert await sam.next_event("updaterooms", where=lambda args: args[0] == []) == [[]]


# --- the race (race.md) -------------------------------------------------------------

RACE_DECK = {
    "name": "Mixed",
    "flashcards": [
        {"id": 1, "problem": "1/2+1/4", "answer": "3/4"},
        {"id": 2, "problem": "Capital of France", "answer": "Paris"},
        {"id": 3, "problem": "2+2", "answer": 4},
    ],
}
ANSWERS = ("3/4", "Paris", 4)
ANN = {"id": "ann", "username": "ann", "auth_level": "student"}


async def race_room(clients: Clients, url: str, *players: dict[str, Any]) -> tuple[ClientSocket, list[ClientSocket], int]:
    """A host (mia) with a room of RACE_DECK, and these players seated in it."""
    host = await joined(clients, url, MIA)
    (made,) = await host.call("create_room", {"name": "Race", "deck": RACE_DECK})
    room_id = made["room"]["id"]
    socks = []
    for user in players:
        sock = await joined(clients, url, user)
        (reply,) = await sock.call("join_room", {"id": room_id})
        assert reply["ok"] is True, reply
        socks.append(sock)
    return host, socks, room_id


def room_in(rooms: list[dict[str, Any]], room_id: int) -> dict[str, Any] | None:
    return next((r for r in rooms if r["id"] == room_id), None)


def has_state(room_id: int, state: str) -> Any:
    return lambda args: (room := room_in(args[0], room_id)) is not None and room["state"] == state


async def test_a_whole_race(peer_url: str) -> None:
    async with open_clients("node") as clients:
        host, (sam, ann), room_id = await race_room(clients, peer_url, SAM, ANN)

        (sync,) = await sam.call("time_sync", {"t0": 12.5})
        assert sync["ok"] is True and sync["t0"] == 12.5 and isinstance(sync["server_ms"], int)

        (started,) = await host.call("start_race", {"id": room_id, "countdown": 1})
        assert started["ok"] is True and started["race_id"] == 1
        race_id, start_at, end_at = started["race_id"], started["start_at"], started["end_at"]
        assert end_at == start_at + 3_600_000  # no time limit: capped at an hour
        assert start_at - sync["server_ms"] >= 1000
        for sock in (host, sam, ann):
            (racestart,) = await sock.next_event("racestart")
            assert racestart["id"] == room_id and racestart["race_id"] == race_id
            assert (racestart["start_at"], racestart["end_at"]) == (start_at, end_at)
            assert racestart["start_at"] - racestart["server_ms"] == 1000
            assert racestart["cards"] == [{"index": i, "problem": c["problem"]} for i, c in enumerate(RACE_DECK["flashcards"])]
            assert racestart["players"] == [{"id": 2, "username": "sam"}, {"id": "ann", "username": "ann"}]
        (rooms,) = await host.next_event("updaterooms", where=has_state(room_id, "countdown"))
        assert room_in(rooms, room_id)["locked"] is True  # type: ignore[index]

        await sam.next_event("updaterooms", where=has_state(room_id, "racing"))  # race_not_started: the next test

        assert error_code(await sam.call("answer", {"id": room_id, "race_id": race_id, "card": 1, "answer": "x"})) == "wrong_card"
        assert error_code(await sam.call("answer", {"id": room_id, "race_id": 7, "card": 0, "answer": "x"})) == "not_racing"
        assert error_code(await host.call("answer", {"id": room_id, "race_id": race_id, "card": 0, "answer": "x"})) == "not_racing"
        replies = [(await sam.call("answer", {"id": room_id, "race_id": race_id, "card": i, "answer": given}))[0]
                   for i, given in enumerate([" 0.75 ", "  PARIS ", "4.0"])]  # fmt: skip
        assert replies == [
            {"ok": True, "card": 0, "correct": True, "next": 1},
            {"ok": True, "card": 1, "correct": True, "next": 2},
            {"ok": True, "card": 2, "correct": True, "next": None},
        ]
        (progress,) = await ann.next_event("raceprogress", where=lambda a: a[0]["players"][0]["done"])
        assert progress["players"][0] == {
            "id": 2, "username": "sam", "answered": 3, "correct": 3, "done": True,
            "time_ms": progress["players"][0]["time_ms"], "connected": True,
        }  # fmt: skip
        assert progress["players"][1]["answered"] == 0 and progress["players"][1]["time_ms"] is None
        (wrong,) = await ann.call("answer", {"id": room_id, "race_id": race_id, "card": 0, "answer": "1/2"})
        assert wrong == {"ok": True, "card": 0, "correct": False, "next": 1}  # wrong, and on to the next card
        await ann.call("answer", {"id": room_id, "race_id": race_id, "card": 1, "answer": "paris"})
        (last,) = await ann.call("answer", {"id": room_id, "race_id": race_id, "card": 2, "answer": "8/2"})
        assert last == {"ok": True, "card": 2, "correct": True, "next": None}

        overs = {name: (await sock.next_event("raceover"))[0] for name, sock in (("host", host), ("sam", sam), ("ann", ann))}
        over = overs["sam"]
        assert over["reason"] == "all_done" and over["race_id"] == race_id and over["id"] == room_id
        assert [(r["place"], r["id"], r["correct"], r["answered"], r["left"]) for r in over["ranking"]] == [
            (1, 2, 3, 3, False), (2, "ann", 2, 3, False)]  # fmt: skip
        assert [c["answer"] for c in over["cards"]] == list(ANSWERS)
        assert overs["host"]["mine"] == []
        assert [(m["index"], m["given"], m["correct"]) for m in over["mine"]] == [(0, " 0.75 ", True), (1, "  PARIS ", True), (2, "4.0", True)]
        assert [m["correct"] for m in overs["ann"]["mine"]] == [False, True, True]
        assert over["ranking"][0]["time_ms"] == over["mine"][-1]["ms"]
        # Nothing before raceover carried an answer (the problems cannot contain them here).
        for sock in (host, sam, ann):
            before = sock.names().index("raceover")
            assert not any("Paris" in repr(e.args) for e in sock.events[:before])

        assert error_code(await sam.call("answer", {"id": room_id, "race_id": race_id, "card": 2, "answer": "4"})) == "race_over"
        assert error_code(await host.call("end_race", {"id": room_id})) == "not_racing"
        (results,) = await host.call("race_results", {"id": room_id})
        assert results["ok"] is True
        assert {k: v for k, v in results["results"].items() if k != "answers"} == {k: v for k, v in over.items() if k != "mine"}
        assert [(a["id"], len(a["mine"])) for a in results["results"]["answers"]] == [(2, 3), ("ann", 3)]
        (rooms,) = await host.next_event("updaterooms", where=has_state(room_id, "finished"))
        assert room_in(rooms, room_id)["locked"] is True  # type: ignore[index]

        # Locked after the race until the host unlocks; a kicked user is banned.
        zoe = await joined(clients, peer_url, {"id": "zoe", "username": "zoe"})
        assert error_code(await zoe.call("join_room", {"id": room_id})) == "room_locked"
        assert (await host.call("lock_room", {"id": room_id, "locked": False}))[0] == {"ok": True}
        assert (await zoe.call("join_room", {"id": room_id}))[0]["ok"] is True
        assert (await host.call("kick_player", {"id": room_id, "user": "zoe"}))[0] == {"ok": True}
        assert await zoe.next_event("kicked") == [{"id": room_id}]
        assert error_code(await zoe.call("join_room", {"id": room_id})) == "banned"

        # The rematch: straight to racing with countdown 0; the host ends it.
        (again,) = await host.call("start_race", {"id": room_id, "countdown": 0, "time_limit": 60})
        assert again["race_id"] == 2 and again["end_at"] == again["start_at"] + 60_000
        (ok,) = await sam.call("answer", {"id": room_id, "race_id": 2, "card": 0, "answer": "3/4"})
        assert ok["correct"] is True
        assert (await host.call("end_race", {"id": room_id}))[0] == {"ok": True}
        (over2,) = await ann.next_event("raceover", where=lambda a: a[0]["race_id"] == 2)
        assert over2["reason"] == "host_ended"
        # ann never answered: last, after sam.
        assert [(r["place"], r["id"]) for r in over2["ranking"]] == [(1, 2), (2, "ann")]
        (first,) = await host.call("race_results", {"id": room_id, "race_id": 1})
        assert first["results"]["race_id"] == 1


async def test_race_errors_in_contract_order(peer_url: str) -> None:
    async with open_clients("node") as clients:
        anon = clients.connect(peer_url, "/")
        assert error_code(await anon.call("start_race", {"id": 1, "countdown": 11})) == "invalid_payload"
        assert error_code(await anon.call("start_race", {"id": 1})) == "not_in_lobby"
        assert error_code(await anon.call("answer", {"id": 1, "race_id": 1, "card": 0, "answer": "x" * 101})) == "invalid_payload"
        assert error_code(await anon.call("answer", {"id": 1, "race_id": 1, "card": 0, "answer": True})) == "invalid_payload"
        assert error_code(await anon.call("time_sync", {"t0": "now"})) == "invalid_payload"
        assert (await anon.call("time_sync", {"t0": 0}))[0]["ok"] is True  # anyone may sync

        host = await joined(clients, peer_url, MIA)
        for bad in ({"countdown": -1}, {"countdown": "3"}, {"time_limit": 9}, {"time_limit": 3601}, {"shuffle": 1}, {"late_join": "yes"}):
            assert error_code(await host.call("start_race", {"id": 1, **bad})) == "invalid_payload", bad
        assert error_code(await host.call("start_race", {"id": 99})) == "room_not_found"
        (made,) = await host.call("create_room", {"name": "R", "deck": RACE_DECK})
        room_id = made["room"]["id"]
        assert error_code(await host.call("start_race", {"id": room_id})) == "no_players"
        assert error_code(await host.call("end_race", {"id": room_id})) == "not_racing"
        assert error_code(await host.call("race_results", {"id": room_id})) == "race_not_found"
        assert error_code(await host.call("kick_player", {"id": room_id, "user": 2})) == "not_in_room"
        assert error_code(await host.call("lock_room", {"id": room_id, "locked": "yes"})) == "invalid_payload"

        sam = await joined(clients, peer_url, SAM)
        assert error_code(await sam.call("answer", {"id": room_id, "race_id": 1, "card": 0, "answer": "3/4"})) == "not_racing"
        await sam.call("join_room", {"id": room_id})
        for command, payload in (("start_race", {"id": room_id}), ("end_race", {"id": room_id}),
                                 ("race_results", {"id": room_id}), ("kick_player", {"id": room_id, "user": 2}),
                                 ("lock_room", {"id": room_id, "locked": True})):  # fmt: skip
            assert error_code(await sam.call(command, payload)) == "not_host", command

        (started,) = await host.call("start_race", {"id": room_id, "countdown": 10, "late_join": True})
        assert started["ok"] is True
        assert error_code(await host.call("start_race", {"id": room_id})) == "race_in_progress"
        assert error_code(await host.call("race_results", {"id": room_id})) == "race_in_progress"
        assert error_code(await host.call("race_results", {"id": room_id, "race_id": 1})) == "race_in_progress"
        assert error_code(await host.call("race_results", {"id": room_id, "race_id": 5})) == "race_not_found"
        assert error_code(await sam.call("answer", {"id": room_id, "race_id": 1, "card": 0, "answer": "3/4"})) == "race_not_started"

        # late_join: the room stays open and a newcomer gets racestate at card 0.
        ann = await joined(clients, peer_url, ANN)
        assert (await ann.call("join_room", {"id": room_id}))[0]["ok"] is True
        (state,) = await ann.next_event("racestate")
        assert (state["race_id"], state["state"], state["next"], state["end_at"]) == (1, "countdown", 0, started["end_at"])
        assert [p["id"] for p in state["progress"]] == [2, "ann"]
        assert "answer" not in repr(state["cards"])

        # Without late_join and unlocked, a join during the race is race_in_progress;
        # locked comes first.
        assert (await host.call("end_race", {"id": room_id}))[0]["ok"] is True
        await sam.next_event("raceover")
        assert error_code(await sam.call("answer", {"id": room_id, "race_id": 1, "card": 0, "answer": "3/4"})) == "race_over"
        (again,) = await host.call("start_race", {"id": room_id, "countdown": 10})
        zoe = await joined(clients, peer_url, {"id": "zoe"})
        assert error_code(await zoe.call("join_room", {"id": room_id})) == "room_locked"
        await host.call("lock_room", {"id": room_id, "locked": False})
        assert error_code(await zoe.call("join_room", {"id": room_id})) == "race_in_progress"
        assert error_code(await host.call("race_results", {"id": room_id, "race_id": 9})) == "race_not_found"

        # The host leaving mid-race: raceover (host_left) first, then roomclosed.
        await host.call("leave_room", {"id": room_id})
        (over,) = await sam.next_event("raceover", where=lambda a: a[0]["race_id"] == again["race_id"])
        assert over["reason"] == "host_left"
        await sam.next_event("roomclosed")
        names = sam.names()
        assert len(names) - 1 - names[::-1].index("raceover") < len(names) - 1 - names[::-1].index("roomclosed")


MATCHING = [
    # (expected, given, correct)
    ("3/4", "0.75", True),
    ("4", "8/2", True),
    ("4", 4, True),
    (4, "4.0", True),
    ("0.1", 0.1, True),
    ("Paris", "  paris ", True),
    ("Straße", "STRASSE", True),
    ("full", "ｆｕｌｌ", True),
    ("New York", "new   york", True),
    ("1e999999999", "1E999999999", True),
    ("1e30", "1e+30", False),
    ("1/3", "0.333", False),
    ("2", "3", False),
]


async def test_the_matching_rule(peer_url: str) -> None:
    deck = {"name": "Rule", "flashcards": [{"id": i, "problem": f"q{i}", "answer": e} for i, (e, _, _) in enumerate(MATCHING)]}
    async with open_clients("node") as clients:
        host = await joined(clients, peer_url, MIA)
        (made,) = await host.call("create_room", {"name": "R", "deck": deck})
        sam = await joined(clients, peer_url, SAM)
        await sam.call("join_room", {"id": made["room"]["id"]})
        (started,) = await host.call("start_race", {"id": made["room"]["id"], "countdown": 0})
        got = []
        for i, (_, given, _) in enumerate(MATCHING):
            (reply,) = await sam.call("answer", {"id": made["room"]["id"], "race_id": started["race_id"], "card": i, "answer": given})
            got.append(reply["correct"])
        assert got == [correct for _, _, correct in MATCHING]


async def test_unlisted_rooms_joined_by_code(peer_url: str) -> None:
    """What the race benchmark leans on to seat thousands of players without sending
    every client every list: unlisted rooms, codes, and roomupdated for members."""
    async with open_clients("node") as clients:
        watcher = await joined(clients, peer_url, {"id": "w"})
        host = await joined(clients, peer_url, MIA)
        (made,) = await host.call("create_room", {"name": "Hidden", "deck": DECK, "listed": False})
        room = made["room"]
        assert (await host.next_event("roomupdated"))[0]["room"]["id"] == room["id"]
        sam = await joined(clients, peer_url, SAM)
        assert error_code(await sam.call("join_room", {"id": room["id"]})) == "room_not_found"
        assert error_code(await sam.call("join_room", {"code": "ZZZZZZ"})) == "room_not_found"
        assert error_code(await sam.call("join_room", {"code": ""})) == "invalid_payload"
        assert error_code(await sam.call("join_room", {"code": room["code"], "id": room["id"]})) == "invalid_payload"
        (reply,) = await sam.call("join_room", {"code": room["code"].lower()})
        assert reply["ok"] is True and reply["room"]["players"] == [{**SAM, "connected": True}]
        for sock in (host, sam):
            (update,) = await sock.next_event("roomupdated", where=lambda a: a[0]["room"]["players"])
            assert update["room"]["code"] == room["code"]
        assert (await sam.call("join_room", {"id": room["id"]}))[0]["ok"] is True  # a member's own room
        # A private deck makes an unlisted room too; a listed room shows in the lists.
        ann = await joined(clients, peer_url, ANN)
        (private,) = await ann.call("create_room", {"name": "P", "deck": {**DECK, "private": True}})
        zoe = await joined(clients, peer_url, {"id": "zoe"})
        (listed,) = await zoe.call("create_room", {"name": "Open", "deck": DECK})
        (rooms,) = await watcher.next_event("updaterooms", where=lambda a: a[0])
        assert [r["id"] for r in rooms] == [listed["room"]["id"]]
        assert all(r["name"] not in ("Hidden", "P") for e in watcher.received("updaterooms") for r in e[0])
        assert private["room"]["id"] not in [r["id"] for r in rooms]


async def test_ranking_shares_places_and_a_leaver_stays(peer_url: str) -> None:
    """Equal on correct, time and answered share a place; a player who leaves mid-race
    stays in the ranking with `left: true` and gets no raceover."""
    async with open_clients("node") as clients:
        zoe_user = {"id": "zoe", "username": "zoe"}
        host, (sam, ann, zoe), room_id = await race_room(clients, peer_url, SAM, ANN, zoe_user)
        (started,) = await host.call("start_race", {"id": room_id, "countdown": 0})
        for card, given in enumerate(("0.75", "paris")):
            (reply,) = await zoe.call("answer", {"id": room_id, "race_id": started["race_id"], "card": card, "answer": given})
            assert reply["correct"] is True
        assert (await zoe.call("leave_room", {"id": room_id}))[0] == {"ok": True}
        (reply,) = await sam.call("answer", {"id": room_id, "race_id": started["race_id"], "card": 0, "answer": "3/4"})
        assert reply["correct"] is True
        assert error_code(await zoe.call("answer", {"id": room_id, "race_id": started["race_id"], "card": 2, "answer": 4})) in (
            "not_racing", "room_not_found")  # fmt: skip
        await host.call("end_race", {"id": room_id})
        (over,) = await host.next_event("raceover")
        # zoe answered most correctly, then left; ann never answered: last.
        assert [(r["place"], r["id"], r["left"]) for r in over["ranking"]] == [(1, "zoe", True), (2, 2, False), (3, "ann", False)]
        await ann.next_event("raceover")
        assert "raceover" not in zoe.names()

        # A rematch where nobody answers: everyone shares first place.
        (again,) = await host.call("start_race", {"id": room_id, "countdown": 0})
        await host.call("end_race", {"id": room_id})
        (over,) = await host.next_event("raceover", where=lambda a: a[0]["race_id"] == again["race_id"])
        assert [(r["place"], r["answered"], r["time_ms"]) for r in over["ranking"]] == [(1, 0, None), (1, 0, None)]


# --- seats that outlive a connection (race.md) ------------------------------------

GRACE = "2"  # seconds: the peers' --reconnect-grace here


def shows_connected(user_id: str, expected: bool) -> Any:
    def check(args: list[Any]) -> bool:
        room = args[0]["room"]
        return any(p["id"] == user_id and p["connected"] is expected for p in [room["host"], *room["players"]])
    return check


def progress_shows(user_id: str, expected: bool) -> Any:
    def check(args: list[Any]) -> bool:
        return any(p["id"] == user_id and p["connected"] is expected for p in args[0]["players"])
    return check


@pytest.fixture(params=["node", "pysocketio"])
async def grace_peer_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    opener = open_node_peer if request.param == "node" else open_pysocketio_peer
    async with opener("--reconnect-grace", GRACE, "--command-rate", "0") as url:
        yield url


async def test_a_dropped_player_comes_back_with_the_token(grace_peer_url: str) -> None:
    async with open_clients("python") as clients, trio.open_nursery() as nursery:
        host = await joined(clients, grace_peer_url, MIA)
        (made,) = await host.call("create_room", {"name": "R", "deck": RACE_DECK})
        room_id = made["room"]["id"]
        pia = await start_killable(nursery, grace_peer_url, "pia", "websocket", str(room_id), ANSWERS[0])
        assert await pia.line() == {"ready": True}
        (start,) = await host.call("start_race", {"id": room_id, "countdown": 0})
        said = await pia.line()
        assert said["ack"] == {"ok": True, "card": 0, "correct": True, "next": 1}

        await pia.kill()
        await host.next_event("roomupdated", where=shows_connected("pia", False))
        await host.next_event("raceprogress", where=progress_shows("pia", False))

        back = clients.connect(grace_peer_url, "/lobby")
        assert error_code(await back.call("join_lobby", {"id": "pia"})) == "identity_taken"
        (reply,) = await back.call("join_lobby", {"id": "pia", "token": said["token"]})
        assert reply["ok"] is True and reply["room"] == room_id
        (state,) = await back.next_event("racestate")
        assert (state["race_id"], state["next"]) == (start["race_id"], 1)
        await host.next_event("roomupdated", where=shows_connected("pia", True))
        for card, given in enumerate(ANSWERS[1:], start=1):
            (ack,) = await back.call("answer", {"id": room_id, "race_id": start["race_id"], "card": card, "answer": given})
            assert ack["correct"] is True
        (over,) = await back.next_event("raceover")
        assert over["reason"] == "all_done" and over["ranking"][0]["correct"] == 3


async def test_a_host_who_does_not_come_back_closes_the_room(grace_peer_url: str) -> None:
    async with open_clients("python") as clients, trio.open_nursery() as nursery:
        host = await start_killable(nursery, grace_peer_url, "teacher", "websocket", "host", json.dumps(RACE_DECK))
        made = await host.line()
        sam = await joined(clients, grace_peer_url, SAM)
        (joined_room,) = await sam.call("join_room", {"id": made["room"]})
        assert joined_room["ok"] is True
        await host.say("start")
        assert (await host.line())["ack"]["ok"] is True
        await sam.next_event("racestart")

        await host.kill()
        await sam.next_event("roomupdated", where=shows_connected("teacher", False))
        with trio.fail_after(15):  # the grace (2 s), then the room closes
            (over,) = await sam.next_event("raceover")
            assert over["reason"] == "host_disconnected"
            assert await sam.next_event("roomclosed") == [{"id": made["room"], "reason": "host_disconnected"}]
